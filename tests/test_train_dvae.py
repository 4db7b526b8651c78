"""End-to-end pre-training (``train_dvae_single.py``, §4) on tiny data: the run directory, the
validation loss going down, self-describing checkpoints, and resuming a run."""

import configparser
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from data.trajectory_dataset import TrajectoryDataset
from model.schedules import kl_weight, ss_probability
from tests.conftest import run_script, tiny_mot_sections, write_ini
from train_dvae_single import mot_recon_px
from utils.checkpoint import check_matches, load_dvae, read_checkpoint
from utils.config import load_config
from utils.config_keys import TRAIN, TRAIN_AUDIO
from utils.errors import UserError

SCRIPT = "train_dvae_single.py"
RUN_FILES = {"best.pt", "latest.pt", "loss.csv", "loss.png", "log.txt", "summary.json"}


def train(ini):
    """Run the script on ``ini``; return (process, the single run directory under save_root)."""
    proc = run_script(SCRIPT, ini, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (run_dir,) = Path(read_ini(ini)["User"]["save_root"]).iterdir()
    return proc, run_dir


def read_ini(path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return {name: dict(parser[name]) for name in parser.sections()}


# ----------------------------------------------------------------- MOT
@pytest.fixture(scope="module")
def mot_run(tmp_path_factory, mot_data):
    """6 epochs on 200 sequences of 20 frames: KL warm-up over epoch 0, scheduled sampling 0 -> 1 over 1..3."""
    root = tmp_path_factory.mktemp("mot_run")
    ini = write_ini(root / "mot.ini", tiny_mot_sections(mot_data, root / "runs"))
    proc, run_dir = train(ini)
    return ini, proc, run_dir, pd.read_csv(run_dir / "loss.csv")


def test_mot_run_writes_the_run_directory(mot_run):
    ini, proc, run_dir, losses = mot_run
    assert run_dir.name.startswith("MOT_SRNN_")
    assert RUN_FILES | {ini.name} <= {p.name for p in run_dir.iterdir()}
    kept = load_config(run_dir / ini.name, TRAIN)                  # the effective INI: the same configuration
    assert kept.values == load_config(ini, TRAIN).values
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 6 and summary["provenance"]["config_sha256"] == kept.digest()
    assert {"seed", "git_commit", "versions", "machine", "device"} <= set(summary["provenance"])
    assert list(losses["epoch"]) == list(range(6))
    assert list(losses["kl_weight"]) == [kl_weight(e, 1) for e in range(6)] == [0, 1, 1, 1, 1, 1]
    assert list(losses["ss_prob"]) == [ss_probability(e, 1, 3) for e in range(6)] == [0, 0, 0.5, 1, 1, 1]
    log = (run_dir / "log.txt").read_text()
    console = [line for line in proc.stdout.splitlines() if line.strip()]
    assert any(line.startswith("epoch    5") for line in console)
    assert all(line in log for line in console)                 # the log file has the console's lines


def test_mot_validation_loss_drops(mot_run):
    losses = mot_run[3]
    first, last = losses.iloc[0], losses.iloc[-1]
    assert last["val_total"] < first["val_total"]
    assert last["val_recon_px"] < 0.8 * first["val_recon_px"]   # teacher-forced error, schedule-independent


def test_mot_checkpoint_is_self_describing(mot_run, mot_data):
    ini, _, run_dir, losses = mot_run
    model, ckpt = load_dvae(run_dir / "best.pt")                # no INI needed to rebuild it
    assert model.head == "gaussian" and not model.training
    assert ckpt["network"] == load_config(ini, TRAIN)["Network"]
    assert ckpt["epoch"] >= 3                                   # best is only taken once the schedules settle
    # weights and input statistics are all there: the logged validation error is reproduced
    val = DataLoader(TrajectoryDataset(mot_data / "val", 20), batch_size=32)
    logged = losses.loc[losses["epoch"] == ckpt["epoch"], "val_recon_px"].item()
    assert mot_recon_px(model, val) == pytest.approx(logged, rel=1e-3)


def test_mot_checkpoint_refuses_a_different_network(mot_run):
    path = mot_run[2] / "best.pt"
    ckpt = read_checkpoint(path)
    with pytest.raises(UserError, match=r"\[Network\] z_dim = 2 but the INI says 3"):
        check_matches(ckpt, path, {**ckpt["network"], "z_dim": 3})
    with pytest.raises(UserError, match=r"\[Network\] dense_hz_x = \[8\] but vem.ini says \[16\]"):
        load_dvae(path, {**ckpt["network"], "dense_hz_x": [16]}, where="vem.ini")
    with pytest.raises(UserError, match="'gaussian' head, this task needs 'is'"):
        load_dvae(path, head="is")


# ----------------------------------------------------------------- resume
def test_resume_continues_the_run(mot_run, tmp_path):
    """continue_train on (a copy of) the finished 6-epoch run with n_epochs 8 adds epochs 6 and 7 to it."""
    ini, _, finished, _ = mot_run
    run_dir = shutil.copytree(finished, tmp_path / "runs" / finished.name)
    sections = read_ini(ini)
    sections["User"]["save_root"] = tmp_path / "runs"
    sections["Training"].update(n_epochs=8, continue_train=True, resume_dir=run_dir)
    proc, same_dir = train(write_ini(tmp_path / "resume.ini", sections))
    assert same_dir == run_dir                                   # no new run directory
    assert list(pd.read_csv(run_dir / "loss.csv")["epoch"]) == list(range(8))
    resumed = f"resumed from {run_dir / 'latest.pt'} (epoch 5)"
    assert resumed in proc.stdout and resumed in (run_dir / "log.txt").read_text()
    assert "epoch    5" not in proc.stdout and "epoch    6" in proc.stdout
    assert read_checkpoint(run_dir / "latest.pt")["epoch"] == 7


def test_warm_start_with_free_running_gaps(mot_run, tmp_path):
    """init_from starts from the finished run's weights and feature statistics (its validation error, not a
    random network's, at epoch 0); gap_prob trains through free-running gaps; a different [Network] is
    refused with the key and the INI named."""
    ini, _, finished, losses = mot_run
    sections = read_ini(ini)
    sections["User"]["save_root"] = tmp_path / "runs"
    sections["Training"].update(n_epochs=2, ss_start=0, ss_end=0, kl_warmup=False, gap_prob=1.0, gap_min=3,
                                gap_max=6, init_from=finished / "best.pt")
    proc, run_dir = train(write_ini(tmp_path / "warm.ini", sections))
    assert f"weights and feature statistics from {finished / 'best.pt'}" in proc.stdout
    warm = pd.read_csv(run_dir / "loss.csv")
    assert warm["val_recon_px"].iloc[0] < 0.8 * losses["val_recon_px"].iloc[0]
    start, _ = load_dvae(finished / "best.pt")
    model, _ = load_dvae(run_dir / "best.pt")
    assert (model.feat_mean == start.feat_mean).all() and (model.delta_std == start.delta_std).all()
    sections["Network"]["z_dim"] = 3
    proc = run_script(SCRIPT, write_ini(tmp_path / "other.ini", sections), timeout=300)
    assert proc.returncode == 2
    assert "[Training] init_from" in proc.stderr and "z_dim" in proc.stderr


def test_stats_from_takes_only_the_feature_statistics_and_the_velocity_anchor_trains(mot_run, tmp_path):
    """stats_from: a new network (another [Network], here the velocity anchor) with the finished run's input and
    increment scales, so the two can be chosen between per sequence; with init_from as well it is refused."""
    ini, _, finished, _ = mot_run
    sections = read_ini(ini)
    sections["User"]["save_root"] = tmp_path / "runs"
    sections["Network"].update(increments=True, velocity=True)
    sections["Training"].update(n_epochs=1, stats_from=finished / "best.pt")
    proc, run_dir = train(write_ini(tmp_path / "stats.ini", sections))
    assert f"feature statistics from {finished / 'best.pt'}" in proc.stdout
    start, _ = load_dvae(finished / "best.pt")
    model, ckpt = load_dvae(run_dir / "best.pt")
    assert model.velocity and ckpt["network"]["velocity"] is True
    for name in ("feat_mean", "feat_std", "delta_std"):
        assert torch.equal(getattr(model, name), getattr(start, name))
    assert not torch.equal(model.gen_out.weight, start.gen_out.weight)
    sections["Training"]["init_from"] = finished / "best.pt"
    proc = run_script(SCRIPT, write_ini(tmp_path / "both.ini", sections), timeout=300)
    assert proc.returncode == 2 and "stats_from" in proc.stderr
    sections["Training"]["init_from"] = ""
    sections["Network"]["increments"] = False
    proc = run_script(SCRIPT, write_ini(tmp_path / "novel.ini", sections), timeout=300)
    assert proc.returncode == 2 and "[Network] velocity" in proc.stderr


# ----------------------------------------------------------------- SC-ASS
FS = 16000


def write_tones(directory, count, rng):
    """1.5 s harmonic tones (f0 220 or 330 Hz, 5 partials) with a slow amplitude envelope and a little noise."""
    directory.mkdir(parents=True)
    t = np.arange(int(1.5 * FS)) / FS
    for i in range(count):
        f0 = (220.0, 330.0)[i % 2]
        envelope = 0.3 + np.sin(2 * np.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 2 * np.pi)) ** 2
        x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6)) * envelope
        sf.write(directory / f"tone_{i}.wav", (0.1 * x + 0.003 * rng.standard_normal(t.size)).astype(np.float32), FS)


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    """4 epochs on 6 train / 2 val tone files; STFT of 256 samples (F = 129), backward-LSTM inference.

    The schedules are off so that the validation losses of all epochs are comparable."""
    root = tmp_path_factory.mktemp("audio_run")
    rng = np.random.default_rng(0)
    write_tones(root / "train", 6, rng)
    write_tones(root / "val", 2, rng)
    sections = tiny_mot_sections(root, root / "runs")
    sections["User"]["task_name"] = "SC-ASS"
    sections["STFT"] = {"wlen_sec": 0.016, "hop_percent": 0.25, "fs": FS, "zp_percent": 0, "trim": True}
    sections["Network"].update(x_dim=129, z_dim=4, dense_x_h=[16], dim_RNN_h=16, dense_hx_g=[16], dim_RNN_g=8,
                               dense_hz_x=[32])
    sections["Training"].update(beta=0.01, n_epochs=4, kl_warmup=False, schedule_sampling=False)
    sections["DataFrame"]["batch_size"] = 16
    ini = write_ini(root / "audio.ini", sections)
    proc, run_dir = train(ini)
    return ini, proc, run_dir, pd.read_csv(run_dir / "loss.csv")


def test_audio_run_writes_the_run_directory_and_its_loss_drops(audio_run):
    ini, proc, run_dir, losses = audio_run
    assert run_dir.name.startswith("SC-ASS_SRNN_")
    assert RUN_FILES | {ini.name} <= {p.name for p in run_dir.iterdir()}
    assert "data: 108 training / 36 validation sequences of 20 frames" in proc.stdout   # 18 tiles per file
    assert list(losses["epoch"]) == [0, 1, 2, 3]
    assert losses["val_total"].iloc[-1] < 0.9 * losses["val_total"].iloc[0]


def test_audio_checkpoint_carries_the_stft(audio_run):
    ini, _, run_dir, _ = audio_run
    model, ckpt = load_dvae(run_dir / "best.pt", head="is")
    assert model.x_dim == 129 and model.rnn_g is not None
    assert ckpt["stft"] == load_config(ini, TRAIN_AUDIO)["STFT"]
    with pytest.raises(UserError, match=r"\[STFT\] wlen_sec = 0.016 but the INI says 0.064"):
        load_dvae(run_dir / "best.pt", stft={**ckpt["stft"], "wlen_sec": 0.064})


def test_audio_warm_start_with_interference(audio_run, tmp_path):
    """[Training] interference_dir: the run logs its pool, trains and validates on corrupted inputs (the validation
    loss against the clean target is higher than the clean run's at the same weights), and bad keys exit 2."""
    ini, _, run_dir, losses = audio_run
    sections = read_ini(ini)
    rng = np.random.default_rng(1)
    write_tones(tmp_path / "other", 3, rng)
    sections["User"]["save_root"] = str(tmp_path / "runs")
    sections["Training"].update(init_from=str(run_dir / "best.pt"), n_epochs=1, lr=1e-8,
                                interference_dir=str(tmp_path / "other"), interference_snr="-5, 0",
                                interference_prob=1.0)
    proc, new_dir = train(write_ini(tmp_path / "intf.ini", sections))
    assert "interference: 54 sequences of" in proc.stdout
    assert "-5 to 0 dB below the source, on 100% of them" in proc.stdout
    corrupted = pd.read_csv(new_dir / "loss.csv")["val_recon"].iloc[0]
    assert corrupted > 1.05 * losses["val_recon"].min()         # same weights (lr ~ 0), noisier input
    for key, value, message in (("interference_snr", "loud", "expected 'low, high'"),
                                ("interference_snr", "5, 0", "low 5.0 > high 0.0"),
                                ("interference_dir", str(tmp_path / "nowhere"), "is not a directory")):
        bad = {**sections, "Training": {**sections["Training"], key: value},
               "User": {**sections["User"], "save_root": str(tmp_path / f"runs_{len(message)}")}}
        bad_proc = run_script(SCRIPT, write_ini(tmp_path / "bad.ini", bad), timeout=120)
        assert bad_proc.returncode == 2 and message in bad_proc.stderr
        assert not (tmp_path / f"runs_{len(message)}").exists()
