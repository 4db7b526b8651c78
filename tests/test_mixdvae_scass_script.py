"""mixdvae_scass.py end to end on tiny data, and its answers to bad inputs (docs/method.md §6–§8).

Everything is built in a temporary directory: two tiny SRNN checkpoints (untrained: the
script's plumbing is under test here, not the separation quality), two 0.5 s mixtures of a
"flute" (harmonic tone) and a "speech" (modulated noise) at 8 kHz, and NMF training audio.
The bad-input runs are independent subprocesses, started two at a time.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_ini_overridden, write_tiny_scass
import soundfile as sf

from utils.checkpoint import build_srnn, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
FS = 8000
STFT_SECTION = {"wlen_sec": 0.032, "hop_percent": 0.25, "fs": FS, "zp_percent": 0, "trim": False}
NUM_FREQS = 129          # wlen 256 -> F = 129
SEQ_LEN = 64             # (64 - 1) * 64 samples = 0.5 s: enough frames for ESTOI
NETWORK = dict(name="SRNN", x_dim=NUM_FREQS, z_dim=4, activation="tanh", dense_x_h=[16], dim_RNN_h=16, num_RNN_h=1,
               dense_hx_g=[16], dim_RNN_g=16, num_RNN_g=1, dense_gz_z=[8], dense_hz_x=[16], dense_hz_z=[8],
               dropout_p=0.0)
NUM_MIX = 2
LENGTH = (SEQ_LEN - 1) * 64


def flute(rng, n):
    t = np.arange(n) / FS
    f0 = rng.uniform(300, 600)
    return sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in (1, 2, 3)).astype(np.float32) * 0.3


def speech(rng, n):
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / FS + rng.uniform(0, 6))
    return (rng.normal(0, 0.2, n) * envelope).astype(np.float32)


def write_ini(path: Path, root: Path, **overrides) -> Path:
    """A complete INI for the tiny setup; ``overrides`` maps "Section.key" -> value (None = delete)."""
    sections = {
        "User": {"task_name": "SC-ASS", "save_root": str(root / "out"), "logger_type": 3, "print_model": False,
                 "data_dir": str(root / "mixtures")},
        "Network": {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in NETWORK.items()},
        "STFT": dict(STFT_SECTION),
        "VEM": {"N_iter_total": 3, "num_source": 2, "num_freqency": NUM_FREQS, "ratio_v_theta_x": 0.03,
                "es_power": "sample", "z_mode": "sample", "save_all_iters": True},
        "Training": {"use_cuda": False, "finetune": False, "lr": 0.001, "beta": 0.01,
                     "saved_dvae_s1": str(root / "flute.pt"), "saved_dvae_s2": str(root / "speech.pt"),
                     "seed": 0, "num_threads": 1},
        "DataFrame": {"batch_size": 1, "sequence_len": SEQ_LEN},
        "Eval": {"baselines": "nmf,ibm,mixture", "metrics": "si_sdr,pesq,estoi,sdr,sir,sar,rmse",
                 "num_audio_examples": 1},
        "NMF": {"train_dir_s1": str(root / "train_flute"), "train_dir_s2": str(root / "train_speech"),
                "n_components": 4, "iterations": 10, "iterations_separation": 10, "max_frames": 500,
                "cache_file": str(root / "cache" / "nmf.npz")},
    }
    return write_ini_overridden(path, sections, overrides)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scass")
    return write_tiny_scass(root, NETWORK, STFT_SECTION, flute, speech, NUM_MIX, LENGTH)


def run(ini: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "mixdvae_scass.py", str(ini), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2, one stderr line starting with 'error:', no traceback, naming ``words``."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_end_to_end_writes_every_output(setup, tmp_path):
    ini = write_ini(tmp_path / "run.ini", setup, **{"User.save_root": str(tmp_path / "out")})
    proc = run(ini)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "out").glob("SC-ASS_MixDVAE_*")
    names = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")}
    expected = {"run.ini", "log.txt", "metrics_per_item.csv", "summary.json", "summary.txt",
                "metric_per_iteration.csv", "figures/si_sdr_per_iteration.png", "figures/mix_00000_spectrograms.png",
                "audio/mix_00000_mixture.wav"}
    for src in ("s1_flute", "s2_speech"):   # references and the 3 methods' estimates
        expected |= {f"audio/mix_00000_{src}_{kind}.wav" for kind in ("reference", "mixdvae", "nmf", "ibm")}
    assert expected <= names, expected - names
    assert not any("mix_00001" in n for n in names)              # num_audio_examples = 1
    assert not any(Path(n).name.startswith(".") for n in names)   # no temporary files left
    wav, fs = sf.read(run_dir / "audio" / "mix_00000_s1_flute_mixdvae.wav")
    assert fs == FS and wav.shape == (LENGTH,)                    # the references' length

    rows = pd.read_csv(run_dir / "metrics_per_item.csv")
    assert list(rows["method"]) == ["MixDVAE", "NMF", "Mixture", "IBM"] * NUM_MIX
    metrics = ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar", "rmse")
    for col in [f"s{n}_{m}{i}" for n in (1, 2) for m in metrics for i in ("", "_i")]:
        assert col in rows, col
    assert np.allclose(rows[rows["method"] == "Mixture"]["s1_si_sdr_i"], 0)
    assert rows[["s1_si_sdr", "s2_sdr", "s1_estoi"]].notna().all().all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["methods"]) == {"MixDVAE", "NMF", "Mixture", "IBM"}
    provenance = summary["provenance"]
    assert {"seed", "git_commit", "versions", "config_sha256", "machine", "device"} <= set(provenance)
    assert provenance["versions"]["torch"] != "absent" and provenance["device"] == "cpu"
    assert list(pd.read_csv(run_dir / "metric_per_iteration.csv")["iteration"]) == [1, 2, 3]
    table = (run_dir / "summary.txt").read_text()
    for word in ("MixDVAE", "NMF", "Mixture", "IBM", "SI-SDR", "PESQ", "ESTOI", "SDR", "SIR", "SAR", "SI-SDRi"):
        assert word in table
    assert table.strip().splitlines()[-1] in proc.stdout          # the same table is printed
    assert "run directory" in (run_dir / "log.txt").read_text()
    assert (setup / "cache" / "nmf.npz").is_file()                # NMF dictionaries cached


def make_bad_inputs(setup: Path, tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """case -> (INI, words the one-line error must contain)."""
    out = {"User.save_root": str(tmp / "out")}
    cases = {}

    def case(name, words, **overrides):
        cases[name] = (write_ini(tmp / f"{name}.ini", setup, **out, **overrides), words)

    case("network_mismatch", ("z_dim", "flute.pt"), **{"Network.z_dim": 8})
    case("stft_mismatch", ("hop_percent",), **{"STFT.hop_percent": 0.5})
    case("num_freqency_vs_stft", ("num_freqency",), **{"VEM.num_freqency": 257})
    net = dict(NETWORK, x_dim=65)
    save_checkpoint(tmp / "small.pt", build_srnn(net, "is"), net, STFT_SECTION)
    case("num_freqency_vs_checkpoint", ("num_freqency", "small.pt", "x_dim"),
         **{"Training.saved_dvae_s2": str(tmp / "small.pt")})
    broken = tmp / "broken_flute"
    broken.mkdir()
    (broken / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    case("unreadable_audio", ("broken.wav",), **{"NMF.train_dir_s1": str(broken),
                                                  "NMF.cache_file": str(tmp / "a.npz")})
    silent = tmp / "silent"
    silent.mkdir()
    sf.write(silent / "zero.wav", np.zeros(FS, dtype=np.float32), FS)
    case("silent_source_dir", ("silent", str(silent)), **{"NMF.train_dir_s2": str(silent),
                                                          "NMF.cache_file": str(tmp / "b.npz")})
    mixes = tmp / "mixtures"
    mixes.mkdir()
    (mixes / "mix_00000.npz").write_bytes(b"not a zip")
    case("unreadable_mixture", ("mix_00000.npz",), **{"User.data_dir": str(mixes)})
    return cases


@pytest.fixture(scope="module")
def bad_runs(setup, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    cases = make_bad_inputs(setup, tmp)
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(zip(cases, pool.map(run, [ini for ini, _ in cases.values()])))
    return {name: (procs[name], words) for name, (_, words) in cases.items()}, tmp / "out"


@pytest.mark.parametrize("case", ["network_mismatch", "stft_mismatch", "num_freqency_vs_stft",
                                  "num_freqency_vs_checkpoint", "unreadable_audio", "silent_source_dir",
                                  "unreadable_mixture"])
def test_bad_input_exits_2_with_one_line_naming_it(bad_runs, case):
    runs, out = bad_runs
    proc, words = runs[case]
    assert_user_error(proc, *words)
    # refused at validation, or (bad NMF training audio, read once the run started) its run directory removed
    assert not out.exists() or not any(out.iterdir())


def test_resampled_stereo_training_audio_is_accepted_with_a_notice(setup, tmp_path):
    stereo = tmp_path / "stereo_flute"
    stereo.mkdir()
    rng = np.random.default_rng(1)
    sf.write(stereo / "a.wav", np.stack([flute(rng, 11025), flute(rng, 11025)], axis=1), 11025)
    ini = write_ini(tmp_path / "run.ini", setup, **{
        "User.save_root": str(tmp_path / "out"), "NMF.train_dir_s1": str(stereo),
        "NMF.cache_file": str(tmp_path / "nmf.npz"), "Eval.baselines": "nmf", "Eval.metrics": "si_sdr",
        "Eval.num_audio_examples": 0, "VEM.N_iter_total": 1, "VEM.save_all_iters": False})
    proc = run(ini)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "out").glob("SC-ASS_*")
    log = (run_dir / "log.txt").read_text()
    assert "resampled from 11025 Hz to 8000 Hz" in log and "folded to mono" in log
    assert set(pd.read_csv(run_dir / "metrics_per_item.csv")["method"]) == {"MixDVAE", "NMF"}


def test_set_overrides_and_print_config(setup, tmp_path):
    ini = write_ini(tmp_path / "run.ini", setup, **{"User.save_root": str(tmp_path / "out")})
    proc = run(ini, "--set", "VEM.ratio_v_theta_x=0.02", "--print-config")
    assert proc.returncode == 0 and "ratio_v_theta_x = 0.02" in proc.stdout, proc.stderr
    assert_user_error(run(ini, "--set", "VEM.ratio_v_theta=0.02"), "ratio_v_theta", "did you mean ratio_v_theta_x?")
    assert_user_error(run(ini, "--set", "VEM.ratio_v_theta_x=-1"), "(--set)", "ratio_v_theta_x")
    assert not (tmp_path / "out").exists()


def test_output_mean_is_the_default_and_wiener_estimates_add_up_to_the_mixture(setup, tmp_path):
    """``[VEM] output``: absent and ``mean`` give the same run (the paper's output); ``wiener`` writes estimates
    whose sum is the mixture (the masks sum to one; the iSTFT is linear)."""
    short = {"Eval.baselines": "", "Eval.metrics": "si_sdr,rmse", "VEM.save_all_iters": False}
    per_item = {}
    for output in (None, "mean", "wiener"):
        out = tmp_path / f"out_{output}"
        ini = write_ini(tmp_path / f"{output}.ini", setup, **short,
                        **{"User.save_root": str(out), "VEM.output": output})
        proc = run(ini)
        assert proc.returncode == 0, proc.stderr
        (run_dir,) = out.glob("SC-ASS_*")
        per_item[output] = pd.read_csv(run_dir / "metrics_per_item.csv")
        assert json.loads((run_dir / "summary.json").read_text())["settings"]["output"] == (output or "mean")
    pd.testing.assert_frame_equal(per_item[None], per_item["mean"])
    assert not per_item["wiener"].equals(per_item["mean"])
    audio = run_dir / "audio"
    estimates = sum(sf.read(audio / f"mix_00000_{src}_mixdvae.wav")[0] for src in ("s1_flute", "s2_speech"))
    mixture = sf.read(audio / "mix_00000_mixture.wav")[0]
    assert abs(estimates - mixture).max() < 1e-4 * abs(mixture).max()
