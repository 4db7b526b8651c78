"""Answers to bad input: one line ``error: ...`` naming what and where, exit status 2, no
traceback, nothing half-written. One test (or more) per defect of the sweep, named after what it checks.

Defect 7 (audio VEM gain invariance) is covered with the audio VEM, not here.
"""

from __future__ import annotations

import builtins
import fcntl
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import train_dvae_single
from data import mot_tracking_data_generation as gen
from data.mixture_dataset import MixtureDataset
from data.mot_dataset import MOTSampleDataset
from data.scass_mixture_audio_generation import make_mixtures
from data.trajectory_dataset import TrajectoryDataset
from model.kf_vem import KalmanDynamics
from model.sort_tracker import sort_track
from model.srnn import SRNN
from model.vem_mot import VEMSettings, run_vem, valid_detections
from tests.conftest import run_script, tiny_mot_sections, write_ini
from utils.audio_io import load_audio
from utils.checkpoint import load_dvae, save_checkpoint
from utils.config import Key, load_config
from utils.config_keys import USER_COMMON
from utils.config_keys_mot import VEM_MOT
from utils.errors import UserError
from utils.mot_io import load_mot_txt, repair_boxes, write_tracks
from utils.output_dir import default_mode
from utils.run_dir import check_output_root, make_run_dir
from utils.stft import STFT

FS = 16000
MOT_NETWORK = dict(name="SRNN", x_dim=4, z_dim=2, activation="tanh", dense_x_h=[4], dim_RNN_h=6, num_RNN_h=1,
                   dense_hx_g=[], dim_RNN_g=0, num_RNN_g=1, dense_gz_z=[8], dense_hz_x=[8], dense_hz_z=[8],
                   dropout_p=0.0)


def assert_clear_error(proc, *fragments):
    """Exit 2, one ``error:`` line holding every fragment, no traceback."""
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def tone(seconds, freq=440.0, amplitude=0.5):
    t = np.arange(int(round(seconds * FS))) / FS
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, x, fs=FS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, fs, subtype="FLOAT")
    return path


def audio_train_sections(root: Path) -> dict:
    sections = tiny_mot_sections(root, root / "runs")
    sections["User"]["task_name"] = "SC-ASS"
    sections["STFT"] = {"wlen_sec": 0.016, "hop_percent": 0.25, "fs": FS, "zp_percent": 0, "trim": True}
    sections["Network"].update(x_dim=129, z_dim=2, dense_x_h=[8], dim_RNN_h=8, dense_hz_x=[8])
    sections["Training"].update(n_epochs=1, kl_warmup=False, schedule_sampling=False)
    sections["DataFrame"].update(batch_size=8, sequence_len=10)
    return sections


# ============================================================================ defect 1: generators
@pytest.fixture
def audio_sources(tmp_path):
    for i in range(2):
        write_wav(tmp_path / "s1" / f"f{i}.wav", tone(1.0, 500 + 100 * i))
        write_wav(tmp_path / "s2" / f"s{i}.wav", (0.3 * np.random.default_rng(i).normal(size=FS)).astype(np.float32))
    return tmp_path / "s1", tmp_path / "s2"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failed_mixture_generation_leaves_the_existing_set_untouched(tmp_path, audio_sources):
    s1_dir, s2_dir = audio_sources
    out = tmp_path / "mix"
    args = ["data/scass_mixture_audio_generation.py", "--s2-dir", s2_dir, "--out", out, "--num", 3,
            "--sequence-len", 10, "--wav"]
    assert run_script(*args, "--s1-dir", s1_dir).returncode == 0
    before = snapshot(out)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "not_audio.wav").write_text("this is not a wav file\n")
    proc = run_script(*args, "--s1-dir", broken, "--overwrite")
    assert_clear_error(proc, "not_audio.wav")
    assert snapshot(out) == before                                   # no new mix_00000.npz next to old ones
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "mix", "s1", "s2"]   # no temporary left


def test_generators_refuse_to_replace_a_set_without_overwrite(tmp_path, audio_sources):
    s1_dir, s2_dir = audio_sources
    make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=2, sequence_len=10)
    with pytest.raises(UserError, match="already holds a data set.*--overwrite"):
        make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=1, sequence_len=10)
    make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=1, sequence_len=10, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "mix").iterdir()) == ["metadata.csv", "mix_00000.npz"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="does not write \\(notes.txt\\)"):
        make_mixtures(s1_dir, s2_dir, tmp_path / "mine", num=1, sequence_len=10, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    traj = ["data/mot_generate_synthetic_data.py", "--out", tmp_path / "traj", "--num-train", 5, "--num-val", 2,
            "--seq-len", 10]
    assert run_script(*traj).returncode == 0
    assert_clear_error(run_script(*traj), "already holds a data set", "--overwrite")
    assert run_script(*traj, "--overwrite").returncode == 0


def test_generated_files_follow_the_umask(tmp_path, audio_sources):
    s1_dir, s2_dir = audio_sources
    make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=1, sequence_len=10, write_wavs=True)
    files = [p for p in (tmp_path / "mix").rglob("*") if p.is_file()]
    assert len(files) == 5
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == default_mode(), path
    assert stat.S_IMODE((tmp_path / "mix").stat().st_mode) == default_mode(0o777)


# ============================================================================ defect 2: NaN audio
def test_audio_with_nan_samples_is_refused_naming_the_file(tmp_path):
    x = tone(0.5)
    x[100:110] = np.nan
    path = write_wav(tmp_path / "nan.wav", x)
    with pytest.raises(UserError, match=r"nan.wav has 10 non-finite \(NaN or inf\) sample"):
        load_audio(path, FS)


def test_pretraining_on_nan_audio_stops_without_a_run_directory(tmp_path):
    for split in ("train", "val"):
        write_wav(tmp_path / split / "ok.wav", tone(1.0))
    bad = tone(1.0)
    bad[5000] = np.nan
    write_wav(tmp_path / "train" / "bad.wav", bad)
    sections = audio_train_sections(tmp_path)
    sections["STFT"]["trim"] = False
    proc = run_script("train_dvae_single.py", write_ini(tmp_path / "a.ini", sections))
    assert_clear_error(proc, "bad.wav", "non-finite")
    assert not (tmp_path / "runs").exists()


def test_mixture_generator_refuses_nan_audio(tmp_path, audio_sources):
    s1_dir, s2_dir = audio_sources
    x = tone(1.0)
    x[:: 1000] = np.nan
    write_wav(s1_dir / "f0.wav", x)
    write_wav(s1_dir / "f1.wav", x)
    with pytest.raises(UserError, match="non-finite"):
        make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=2, sequence_len=10)
    assert not (tmp_path / "mix").exists()


def test_training_never_saves_a_non_finite_epoch(tmp_path):
    model = SRNN(**{k: v for k, v in MOT_NETWORK.items() if k != "name"})
    train_dvae_single.check_finite(model, np.array([1.0, 2.0]), 3, tmp_path)     # finite: passes
    with pytest.raises(UserError, match="diverged at epoch 3: non-finite losses"):
        train_dvae_single.check_finite(model, np.array([1.0, np.nan]), 3, tmp_path)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(UserError, match="diverged at epoch 4: non-finite weights"):
        train_dvae_single.check_finite(model, np.array([1.0, 2.0]), 4, tmp_path)


# ============================================================================ defect 3: unknown INI keys
def test_unknown_ini_key_is_an_error_suggesting_the_closest_key(tmp_path):
    ini = tmp_path / "vem.ini"
    ini.write_text("[User]\ntask_name = MOT\n[VEM]\nN_iter_totl = 5\n")
    with pytest.raises(UserError, match=r"vem.ini \[VEM\] N_iter_totl: unknown key \(did you mean N_iter_total\?\)"):
        load_config(ini, VEM_MOT)
    ini.write_text("[User]\ntask_name = MOT\n[VEMM]\nN_iter_total = 5\n")
    with pytest.raises(UserError, match=r"\[VEMM\]: unknown section \(did you mean \[VEM\]\?\)"):
        load_config(ini, VEM_MOT)


def test_pretraining_refuses_a_misspelt_epoch_count(tmp_path, mot_data):
    sections = tiny_mot_sections(mot_data, tmp_path / "runs")
    sections["Training"]["n_epoch"] = 3
    proc = run_script("train_dvae_single.py", write_ini(tmp_path / "t.ini", sections))
    assert_clear_error(proc, "[Training] n_epoch: unknown key (did you mean n_epochs?)")
    assert not (tmp_path / "runs").exists()


# ============================================================================ defect 4: unwritable output
def test_save_root_naming_a_file_is_refused_before_any_work(tmp_path, mot_data):
    (tmp_path / "afile").write_text("x")
    sections = tiny_mot_sections(mot_data, tmp_path / "afile" / "runs")
    proc = run_script("train_dvae_single.py", write_ini(tmp_path / "t.ini", sections))
    assert_clear_error(proc, "[User] save_root", "is a file, expected a directory")


def test_unwritable_save_root_is_reported_with_the_reason(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    check_output_root(tmp_path / "new" / "runs", "cfg.ini [User] save_root")          # writable: passes
    monkeypatch.setattr("tempfile.TemporaryFile", refuse)      # what a read-only or immutable folder answers
    with pytest.raises(UserError, match=r"cfg.ini \[User\] save_root: cannot write into .* \(Permission denied\)"):
        check_output_root(tmp_path / "runs", "cfg.ini [User] save_root")


# ============================================================================ defect 5: truncated .npz
def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_npz_is_a_clear_error_in_every_reader(tmp_path, mot_data):
    traj = tmp_path / "traj"
    shutil.copytree(mot_data / "val", traj)
    truncate(traj / "trajectories.npz")
    with pytest.raises(UserError, match="trajectories.npz: truncated or damaged .npz archive"):
        TrajectoryDataset(traj, 20)
    samples = gen.synthetic_samples(1, seq_len=10, num_targets=2, rng=np.random.default_rng(0))
    gen.prepare_out_dir(tmp_path / "mot", overwrite=False)
    gen.write_dataset(tmp_path / "mot", samples, ["s0"], {})
    truncate(tmp_path / "mot" / "s0.npz")
    with pytest.raises(UserError, match="s0.npz: truncated or damaged .npz archive"):
        MOTSampleDataset(tmp_path / "mot")[0]


def test_garbage_npz_is_called_not_an_npz_archive(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(UserError, match="junk.npz: not a .npz archive") as info:
        TrajectoryDataset(tmp_path, 20)
    assert "pickled" not in str(info.value)


# ============================================================================ defect 6: no detection slot
def test_sample_without_detection_slots_is_all_misses():
    det = torch.zeros(2, 8, 0, 4)
    init = torch.tensor([[[10.0, 10.0, 50.0, 150.0], [300.0, 40.0, 340.0, 160.0]]]).expand(2, 2, 4)
    tracks = sort_track(det, torch.zeros(2, 8, 0, dtype=torch.bool), init)
    assert tracks.shape == (2, 8, 2, 4)
    torch.testing.assert_close(tracks, init[:, None].expand(2, 8, 2, 4))   # no observation: stays at init
    kf = run_vem(det, None, init, KalmanDynamics(0.01, 0.1, True), VEMSettings(n_iter=2, init_iter=1,
                                                                                   init_subseq_len=4))
    assert torch.isfinite(kf.tracks).all()


# ============================================================================ defect 8: resume bookkeeping
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mot_data):
    """12 epochs, numbered checkpoints every 3 epochs; schedules settled from epoch 1."""
    root = tmp_path_factory.mktemp("resume")
    sections = tiny_mot_sections(mot_data, root / "runs")
    sections["Training"].update(n_epochs=12, save_frequency=3, ss_start=0, ss_end=0, lr=0.02)
    ini = write_ini(root / "t.ini", sections)
    proc = run_script("train_dvae_single.py", ini, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (root / "runs").iterdir()
    return sections, run_dir


def resume_ini(tmp_path: Path, sections: dict, run_dir: Path, **training) -> Path:
    sections = {k: dict(v) for k, v in sections.items()}
    sections["Training"].update(continue_train=True, resume_dir=run_dir, **training)
    return write_ini(tmp_path / "resume.ini", sections)


def test_resume_from_an_older_epoch_rewrites_loss_csv_and_keeps_the_better_best(finished_run, tmp_path):
    sections, finished = finished_run
    run_dir = shutil.copytree(finished, tmp_path / finished.name)
    best_before = torch.load(run_dir / "best.pt", weights_only=False)
    proc = run_script("train_dvae_single.py", resume_ini(tmp_path, sections, run_dir, which_epoch=5, n_epochs=9),
                      timeout=300)
    assert proc.returncode == 0, proc.stderr
    losses = pd.read_csv(run_dir / "loss.csv")
    assert list(losses["epoch"]) == list(range(9))                         # 0..5 kept, 6..8 new, no duplicate
    best = torch.load(run_dir / "best.pt", weights_only=False)
    new_best = losses.loc[losses["epoch"] >= 6, "val_total"].min()
    assert best["val_loss"] == pytest.approx(min(best_before["val_loss"], new_best), rel=1e-5)
    assert best["val_loss"] <= best_before["val_loss"]                      # never replaced by a worse one


def test_second_concurrent_resume_of_a_run_is_refused(finished_run, tmp_path):
    sections, finished = finished_run
    run_dir = shutil.copytree(finished, tmp_path / finished.name)
    before = snapshot(run_dir)
    with open(run_dir / ".lock", "a+") as held:                            # a first resume is running
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_script("train_dvae_single.py", resume_ini(tmp_path, sections, run_dir, n_epochs=14))
    assert_clear_error(proc, str(run_dir), "in use by another training process")
    assert snapshot(run_dir) == before


# ============================================================================ defect 9: diverging VEM settings
@pytest.mark.parametrize("key, value", [("std_ratio", "1e30"), ("assignment_temperature", "inf"),
                                        ("assignment_temperature", "1e-8")])
def test_vem_values_that_diverge_are_out_of_range(tmp_path, key, value):
    ini = tmp_path / "vem.ini"
    ini.write_text(f"[User]\ntask_name = MOT\ndata_dir = {tmp_path}\n[VEM]\n{key} = {value}\n"
                   f"[Training]\nsaved_dvae = {ini}\n")
    with pytest.raises(UserError, match=rf"\[VEM\] {key}: expected a number in \["):
        load_config(ini, VEM_MOT)


def test_non_finite_tracks_stop_the_run_naming_the_sample(tmp_path):
    import mixdvae_mot

    cfg = load_config(mot_ini(tmp_path, tmp_path), VEM_MOT)
    tracks = torch.zeros(3, 5, 2, 4)
    mixdvae_mot.check_tracks("MixDVAE", tracks, ["a", "b", "c"], cfg)     # finite: passes
    tracks[1, 4, 0, 2] = float("nan")
    with pytest.raises(UserError, match="MixDVAE produced non-finite tracks for sample b"):
        mixdvae_mot.check_tracks("MixDVAE", tracks, ["a", "b", "c"], cfg)


def mot_ini(tmp_path: Path, data_dir: Path, vem: dict | None = None, frame: dict | None = None) -> Path:
    """A tiny mixdvae_mot.py INI on ``data_dir`` (and a tiny untrained checkpoint)."""
    torch.manual_seed(0)
    model = SRNN(**{k: v for k, v in MOT_NETWORK.items() if k != "name"}).eval()
    save_checkpoint(tmp_path / "dvae.pt", model, MOT_NETWORK, epoch=0)
    sections = {"User": {"task_name": "MOT", "save_root": tmp_path / "out", "logger_type": 3, "print_model": False,
                         "data_dir": data_dir},
                "VEM": {"N_iter_total": 2, "num_source": 2, "num_obs": 3, "init_iter_number": 1, "init_subseq_len": 5,
                        **(vem or {})},
                "Training": {"saved_dvae": tmp_path / "dvae.pt", "num_threads": 1},
                "DataFrame": {"batch_size": 4, **(frame or {})},
                "Eval": {"baselines": "kf_vem, sort", "num_plot_samples": 0}}
    return write_ini(tmp_path / "vem.ini", sections)


def test_zero_image_size_with_image_size_normalisation_is_refused(tmp_path):
    samples = gen.synthetic_samples(2, seq_len=10, num_targets=2, rng=np.random.default_rng(0))
    samples[1]["image_size"] = np.array([0, 0])
    gen.prepare_out_dir(tmp_path / "data", overwrite=False)
    gen.write_dataset(tmp_path / "data", samples, ["s0", "s1"], {})
    proc = run_script("mixdvae_mot.py", mot_ini(tmp_path, tmp_path / "data", frame={"normalize": "image_size"}))
    assert_clear_error(proc, "s1.npz: image_size [0.0, 0.0] is not a positive (width, height)")
    assert not (tmp_path / "out").exists()


# ============================================================================ defect 10: NaN trajectories
def test_nan_trajectories_are_counted_and_all_nan_is_refused_without_a_run_directory(tmp_path, mot_data, caplog):
    boxes = np.load(mot_data / "train" / "trajectories.npz")["boxes"][:30].copy()
    boxes[:12, 3, 1] = np.nan
    (tmp_path / "some").mkdir()
    np.savez(tmp_path / "some" / "t.npz", boxes=boxes)
    with caplog.at_level("INFO", logger="data.trajectory_dataset"):
        assert len(TrajectoryDataset(tmp_path / "some", 20)) == 18
    assert "skipped 12 of 30 sequences holding NaN or inf coordinates" in caplog.text
    boxes[:, 0, 0] = np.nan
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        np.savez(tmp_path / split / "t.npz", boxes=boxes)
    proc = run_script("train_dvae_single.py", write_ini(tmp_path / "t.ini", tiny_mot_sections(tmp_path,
                                                                                               tmp_path / "runs")))
    assert_clear_error(proc, "no usable trajectory in", "every sequence holds NaN or inf")
    assert not (tmp_path / "runs").exists()


# ============================================================================ defect 11: checkpoint weights
def test_checkpoint_whose_weights_do_not_match_its_network_names_the_tensor(tmp_path):
    model = SRNN(**{k: v for k, v in MOT_NETWORK.items() if k != "name"})
    save_checkpoint(tmp_path / "ok.pt", model, MOT_NETWORK)
    ckpt = torch.load(tmp_path / "ok.pt", weights_only=False)
    name = next(iter(k for k in ckpt["model"] if k.endswith("weight")))
    missing = {**ckpt, "model": {k: v for k, v in ckpt["model"].items() if k != name}}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(UserError, match=rf"missing.pt' lacks tensor '{name}'"):
        load_dvae(tmp_path / "missing.pt")
    reshaped = {**ckpt, "model": {**ckpt["model"], name: torch.zeros(3, 3)}}
    torch.save(reshaped, tmp_path / "shape.pt")
    with pytest.raises(UserError, match=rf"shape.pt' tensor '{name}' has shape \(3, 3\), its \[Network\] needs"):
        load_dvae(tmp_path / "shape.pt")


# ============================================================================ defect 12: unreadable INI
def test_unreadable_ini_is_reported_as_unreadable(tmp_path, monkeypatch):
    ini = write_ini(tmp_path / "t.ini", {"User": {"task_name": "MOT"}})
    real_open = builtins.open

    def no_permission(file, *args, **kwargs):   # what a non-root user gets for a mode-000 file
        if Path(str(file)) == ini:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_permission)
    with pytest.raises(UserError, match=r"config file '.*t.ini' cannot be read \(Permission denied\)"):
        load_config(ini, [Key("User", "task_name", "str")])


# ============================================================================ defect 13: pre-training notices
def test_pretraining_prints_resample_fold_and_skip_notices(tmp_path):
    write_wav(tmp_path / "train" / "stereo22k.wav", np.stack([tone(1.5), tone(1.5, 660)], axis=1)[::1], fs=22050)
    write_wav(tmp_path / "train" / "mono.wav", tone(1.5))
    write_wav(tmp_path / "train" / "short.wav", tone(0.01))
    write_wav(tmp_path / "val" / "mono.wav", tone(1.5))
    proc = run_script("train_dvae_single.py", write_ini(tmp_path / "a.ini", audio_train_sections(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    for fragment in ("stereo22k.wav: 2 channels folded to mono", "stereo22k.wav: resampled from 22050 Hz to 16000",
                     "skipped 0 silent file(s) and 1 file(s) shorter than 10 frames"):
        assert fragment in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "resampled from 22050 Hz" in (run_dir / "log.txt").read_text()


# ============================================================================ defect 14: NaN in a mixture
def test_mixture_with_nan_samples_is_refused_naming_the_file(tmp_path):
    s = tone(9 * 256 / FS)
    np.savez(tmp_path / "mix_00000.npz", mixture=s, s1=s / 2, s2=s / 2, fs=np.int64(FS))
    s_bad = s.copy()
    s_bad[[5, 50]] = [np.nan, np.inf]
    np.savez(tmp_path / "mix_00001.npz", mixture=s_bad, s1=s / 2, s2=s / 2, fs=np.int64(FS))
    with pytest.raises(UserError, match=r"mix_00001.npz: non-finite \(NaN or inf\) samples \(mixture 2\)"):
        MixtureDataset(tmp_path, STFT(FS, 0.064, 0.25, 0))


# ============================================================================ defect 15: run-directory race
def test_run_directories_started_in_the_same_second_never_collide(tmp_path, monkeypatch):
    ini = load_config(write_ini(tmp_path / "a.ini", {"User": {"task_name": "MOT"}}), USER_COMMON[:1])
    monkeypatch.setattr("time.strftime", lambda fmt: "2026-01-01-00h00m00")
    first = make_run_dir(tmp_path / "runs", "MOT", "x", ini)
    # another process claims the next name between a check and the mkdir: the check must not be trusted
    monkeypatch.setattr(Path, "exists", lambda self: False)
    second = make_run_dir(tmp_path / "runs", "MOT", "x", ini)
    third = make_run_dir(tmp_path / "runs", "MOT", "x", ini)
    assert len({first, second, third}) == 3 and all(p.is_dir() for p in (first, second, third))


# ============================================================================ defect 16: absurd boxes
def test_detection_far_outside_the_image_is_gated_as_missing():
    T = 30
    x = torch.arange(T, dtype=torch.float32)[:, None] * 4.0
    truth = torch.stack([100 + x, 200 + 0 * x, 160 + x, 350 + 0 * x], -1)           # (T, 1, 4), walking right
    det = truth[None].clone()
    det[0, 10:15, 0] = torch.tensor([1e9, 1e9, 1e9 + 60, 1e9 + 150])
    size = torch.tensor([[1920.0, 1080.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_vem(det, None, truth[0][None], KalmanDynamics(0.01, 0.1, True),
                      VEMSettings(n_iter=3, init_iter=2, init_subseq_len=10, std_ratio=0.04), size)
    assert (out.tracks - truth[None]).abs().max() < 20                              # pixels, not 1e9
    assert valid_detections(det, None, size)[0, :, 0].tolist() == [not 10 <= t < 15 for t in range(T)]


# ============================================================================ defect 17: inverted boxes
def test_written_track_boxes_are_never_inverted(tmp_path):
    tracks = np.array([[[10.0, 20.0, 50.0, 80.0], [100.0, 100.0, 90.0, 60.0]]])    # second: x2 < x1, y2 < y1
    write_tracks(tmp_path / "t.txt", tracks)
    table = load_mot_txt(tmp_path / "t.txt")
    assert (table[:, 4] > 0).all() and (table[:, 5] > 0).all()
    fixed, count = repair_boxes(tracks)
    assert count == 1 and fixed[0, 0].tolist() == [10, 20, 50, 80]
    assert fixed[0, 1].tolist() == [94.5, 79.5, 95.5, 80.5]                         # centre kept, 1 px box


# ============================================================================ defect 18: gt column count
def test_gt_with_an_undocumented_column_count_is_refused(tmp_path):
    seq = tmp_path / "SEQ-01"
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},1,10,10,40,90,1,1\n" for f in range(1, 6)))
    (seq / "det" / "det.txt").write_text("".join(f"{f},-1,10,10,40,90,0.9,-1,-1,-1\n" for f in range(1, 6)))
    with pytest.raises(UserError, match=r"gt.txt: 8 columns per line; a MOTChallenge gt.txt has 9 .* or 10"):
        gen.load_sequence(seq, image_size=(640, 480))
    with pytest.raises(UserError, match="--layout mot15 needs 10 gt columns, the file has 8"):
        gen.load_sequence(seq, layout="mot15", image_size=(640, 480))


# ============================================================================ wordings
def test_file_given_for_a_directory_is_called_a_file(tmp_path):
    (tmp_path / "data.txt").write_text("x")
    ini = write_ini(tmp_path / "t.ini", {"User": {"data_dir": tmp_path / "data.txt"}})
    with pytest.raises(UserError, match=r"directory '.*data.txt' is a file"):
        load_config(ini, [Key("User", "data_dir", "dir")])


def test_relative_path_errors_say_they_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("t.ini").write_text("[User]\ndata_dir = missing/dir\n")
    with pytest.raises(UserError, match=rf"relative paths are resolved against the current working directory, "
                                        rf"{tmp_path}"):
        load_config("t.ini", [Key("User", "data_dir", "dir")])
    with pytest.raises(UserError, match="relative paths are resolved against the current working directory"):
        load_config("absent.ini", [])
