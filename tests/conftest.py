"""Shared fixtures: the repo root, a script runner, INI writing, and tiny trajectory data.

Area-specific fixtures live in the test files that use them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from data.mot_generate_synthetic_data import TrajectoryParams, generate_trajectories, save_split

REPO = Path(__file__).resolve().parents[1]
SCRIPT_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

torch.set_num_threads(1)
# Property tests explore the same examples on every run, so a CI failure is reproducible, never flaky.
settings.register_profile("reproducible", derandomize=True)
settings.load_profile("reproducible")


def write_ini(path: Path, sections: dict[str, dict[str, object]]) -> Path:
    """Write ``{section: {key: value}}`` as an INI file; lists become comma-separated values."""
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        for key, value in keys.items():
            text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            lines.append(f"{key} = {text}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def write_ini_overridden(path: Path, sections: dict[str, dict[str, object]], overrides: dict[str, object]) -> Path:
    """``write_ini`` after applying ``{"Section.key": value}`` overrides (None removes the key)."""
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        if value is None:
            sections[section].pop(key, None)
        else:
            sections[section][key] = value
    return write_ini(path, sections)


def run_script(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ARGS`` from the repo root (as a user would run a script), output captured as text."""
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=SCRIPT_ENV, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def mot_data(tmp_path_factory) -> Path:
    """200 train / 50 val synthetic trajectories of 20 frames: ``DIR/train/`` and ``DIR/val/``."""
    root = tmp_path_factory.mktemp("mot_data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 200), ("val", 50)):
        save_split(root / split / "trajectories.npz", generate_trajectories(n, 20, rng), TrajectoryParams(), 0)
    return root


def tiny_mot_sections(data_dir: Path, save_root: Path) -> dict[str, dict[str, object]]:
    """A valid tiny MOT pre-training config on ``data_dir/{train,val}`` (edit, then :func:`write_ini`)."""
    return {
        "User": {"task_name": "MOT", "save_root": save_root, "logger_type": 3, "print_model": False,
                 "train_data_dir": data_dir / "train", "val_data_dir": data_dir / "val"},
        "Network": {"name": "SRNN", "x_dim": 4, "z_dim": 2, "activation": "tanh", "dense_x_h": [8],
                    "dim_RNN_h": 8, "num_RNN_h": 1, "dense_hx_g": [], "dim_RNN_g": 0, "dense_gz_z": [8],
                    "dense_hz_x": [8], "dense_hz_z": [8], "dropout_p": 0},
        "Training": {"use_cuda": False, "beta": 1, "lr": 0.01, "n_epochs": 6, "early_stop_patience": 50,
                     "save_frequency": 100, "kl_warmup": True, "schedule_sampling": True, "ss_start": 1,
                     "ss_end": 3, "seed": 1, "num_threads": 1, "continue_train": False, "resume_dir": "",
                     "which_epoch": "latest"},
        "DataFrame": {"batch_size": 32, "shuffle": True, "sequence_len": 20},
    }


def write_tiny_scass(root: Path, network: dict, stft: dict, make_s1, make_s2, num_mix: int, length: int,
                     mix_dir: str = "mixtures", train_len: int | None = None) -> Path:
    """A tiny separation tree under ``root``: two untrained IS-head DVAEs (flute.pt, speech.pt), ``num_mix``
    mixtures ``make_s1 + make_s2`` of ``length`` samples in ``root/mix_dir`` (npz, 0 dB), and two training wavs
    per source (``train_len`` samples, default one second) in ``root/train_flute`` and ``root/train_speech``.
    ``make_*(rng, n)`` draw from one seeded generator, in that order."""
    import soundfile as sf

    from utils.checkpoint import build_srnn, save_checkpoint

    fs = stft["fs"]
    torch.manual_seed(0)
    for name in ("flute", "speech"):
        save_checkpoint(root / f"{name}.pt", build_srnn(network, "is"), network, stft, epoch=0)
    rng = np.random.default_rng(0)
    (root / mix_dir).mkdir()
    for i in range(num_mix):
        s1, s2 = make_s1(rng, length), make_s2(rng, length)
        np.savez(root / mix_dir / f"mix_{i:05d}.npz", mixture=s1 + s2, s1=s1, s2=s2, fs=np.int64(fs),
                 snr_db=np.float64(0.0))
    for name, make in (("train_flute", make_s1), ("train_speech", make_s2)):
        (root / name).mkdir()
        for i in range(2):
            sf.write(root / name / f"{i}.wav", make(rng, train_len or fs), fs)
    return root
