"""Scaling out with torchrun (utils/distributed.py; README "Scaling out") on CPU with gloo, 2 processes.

Every run goes through ``python -m torch.distributed.run`` (torchrun) in a subprocess, with a c10d
rendezvous on a free localhost port, as a user would start it:

- pre-training: 2 processes give the loss curve of 1 process with the same global batch, and a run
  resumed under torchrun continues it the same way on 1 and 2 processes;
- evaluation (mixdvae_mot.py, mixdvae_scass.py): 2 processes write the run directory of one plain
  ``python`` run, apart from timings;
- a rank whose shard fails stops the job with the one-line error and leaves no run directory.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import REPO, SCRIPT_ENV, run_script, tiny_mot_sections, write_ini
from utils.distributed import Ranks

LOSS_COLUMNS = ["epoch", "kl_weight", "ss_prob", "train_total", "train_recon", "train_kl", "val_total", "val_recon",
                "val_kl", "val_recon_px"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def torchrun(nproc: int, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=NPROC ARGS`` from the repo root, rendezvous on a free localhost port."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
           "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{free_port()}", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, env=SCRIPT_ENV, capture_output=True, text=True, timeout=timeout)


def only_run_dir(root: Path) -> Path:
    (run_dir,) = [p for p in Path(root).iterdir() if p.is_dir()]
    return run_dir


# ----------------------------------------------------------------- unit level
def test_one_rank_is_a_no_op():
    ranks = Ranks()
    assert ranks.main and ranks.shard(list(range(5))) == [0, 1, 2, 3, 4]
    assert ranks.broadcast("x") == "x" and ranks.all_gather(3) == [3]
    assert list(ranks.all_sum([1.5, 2])) == [1.5, 2.0]
    torch.manual_seed(0)
    expected = torch.randn(4, 3)
    torch.manual_seed(0)
    with ranks.global_batch_noise(4):
        assert torch.equal(torch.randn(4, 3), expected)


def test_batches_are_dealt_round_robin():
    batches = list(range(7))
    shards = [Ranks(r, 3).shard(batches) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]


def test_global_batch_noise_gives_each_rank_its_rows_of_the_global_draw():
    torch.manual_seed(3)
    global_z, global_u = torch.randn(6, 2), torch.rand(6, 5)
    global_like = torch.randn_like(torch.zeros(6, 4))
    gen_draw = torch.randn((6, 3), generator=torch.Generator().manual_seed(9))
    for rank in range(2):
        torch.manual_seed(3)
        with Ranks(rank, 2).global_batch_noise(3):
            z, u = torch.randn(3, 2), torch.rand(3, 5)
            like = torch.randn_like(torch.zeros(3, 4))
            other = torch.randn(4, 1)                       # not batch-major: untouched
            g = torch.randn((3, 3), generator=torch.Generator().manual_seed(9))
        assert torch.equal(z, global_z[rank::2]) and torch.equal(u, global_u[rank::2])
        assert torch.equal(like, global_like[rank::2]) and torch.equal(g, gen_draw[rank::2])
        assert other.shape == (4, 1)


# ----------------------------------------------------------------- pre-training
@pytest.fixture(scope="module")
def pretrain_runs(tmp_path_factory, mot_data):
    """The tiny MOT pre-training (KL warm-up, scheduled sampling 0 -> 1, input noise) for 4 epochs under
    torchrun with 1 and 2 processes, global batch 32 (200 / 50 sequences: both split evenly)."""
    root = tmp_path_factory.mktemp("ddp_train")
    runs = {}
    for nproc in (1, 2):
        sections = tiny_mot_sections(mot_data, root / f"p{nproc}")
        sections["Training"].update(n_epochs=4, input_noise=0.05)
        ini = write_ini(root / f"p{nproc}.ini", sections)
        proc = torchrun(nproc, "train_dvae_single.py", ini)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[nproc] = (ini, sections, proc, only_run_dir(root / f"p{nproc}"))
    return root, runs


def test_two_processes_give_the_loss_curve_of_one(pretrain_runs):
    _, runs = pretrain_runs
    one, two = (pd.read_csv(runs[p][3] / "loss.csv")[LOSS_COLUMNS] for p in (1, 2))
    assert list(two["epoch"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(two.to_numpy(), one.to_numpy(), rtol=1e-4, atol=1e-6)
    w1, w2 = (torch.load(runs[p][3] / "latest.pt", weights_only=False)["model"] for p in (1, 2))
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5)


def test_only_rank_0_logs_and_writes(pretrain_runs):
    _, runs = pretrain_runs
    _, _, proc, run_dir = runs[2]
    assert {p.name for p in run_dir.iterdir()} >= {"best.pt", "latest.pt", "loss.csv", "loss.png", "log.txt"}
    log = (run_dir / "log.txt").read_text()
    assert "device: rank 0 of 2: CPU" in log and "device: rank 1 of 2: CPU" in log
    assert sum(line.startswith("epoch    3") for line in proc.stdout.splitlines()) == 1   # one console, rank 0's
    assert len(pd.read_csv(run_dir / "loss.csv")) == 4


def test_resume_under_torchrun_continues_alike_on_one_and_two_processes(pretrain_runs):
    root, runs = pretrain_runs
    curves = {}
    for nproc in (1, 2):
        resumed = root / f"resume{nproc}"
        shutil.copytree(runs[2][3], resumed)            # the same 4-epoch checkpoint for both
        sections = runs[2][1]
        sections["Training"].update(n_epochs=6, continue_train=True, resume_dir=resumed)
        ini = write_ini(root / f"resume{nproc}.ini", sections)
        proc = torchrun(nproc, "train_dvae_single.py", ini)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "resumed from" in proc.stdout
        curves[nproc] = pd.read_csv(resumed / "loss.csv")[LOSS_COLUMNS]
    assert list(curves[2]["epoch"]) == list(range(6))
    before = pd.read_csv(runs[2][3] / "loss.csv")[LOSS_COLUMNS]
    np.testing.assert_allclose(curves[2].to_numpy()[:4], before.to_numpy(), rtol=1e-6)
    # every rank resumed the weights and Adam state: the continuation is the one-process one
    np.testing.assert_allclose(curves[2].to_numpy(), curves[1].to_numpy(), rtol=1e-4, atol=1e-6)


def test_a_batch_that_does_not_split_is_refused(pretrain_runs, mot_data):
    root, _ = pretrain_runs
    sections = tiny_mot_sections(mot_data, root / "odd")
    sections["DataFrame"]["batch_size"] = 33
    proc = torchrun(2, "train_dvae_single.py", write_ini(root / "odd.ini", sections))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {root / 'odd.ini'} [DataFrame] batch_size: the global batch of 33 does not split "
                      "evenly across 2 ranks; use a multiple of 2"]
    assert "exitcode  : 2" in proc.stderr
    assert not (root / "odd").exists() or not any((root / "odd").iterdir())


# ----------------------------------------------------------------- evaluation
def same_run_directories(one: Path, two: Path, summary: str) -> None:
    """Every file of ``one`` in ``two`` with the same content, apart from log.txt, the timings, the INI
    copy (its save_root differs) and the wav headers' timestamps."""
    def files(run_dir):
        return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()
                      and p.suffix != ".ini")

    assert files(one) == files(two)
    for name in files(one):
        if name == "log.txt":
            continue
        if name == summary:
            a, b = (json.loads((d / name).read_text()) for d in (one, two))
            # provenance records the command (torchrun or not), the INI (its save_root differs) and the times
            prov = [d.pop("provenance") for d in (a, b)]
            assert prov[0]["seed"] == prov[1]["seed"] and prov[0]["git_commit"] == prov[1]["git_commit"]
            for d in (a, b):
                d.pop("seconds", None)
                d.pop("timing", None)
            assert a == b
        elif name.endswith(".wav"):                   # the header's PEAK chunk holds a timestamp
            import soundfile as sf

            (a, fs_a), (b, fs_b) = sf.read(one / name), sf.read(two / name)
            assert fs_a == fs_b and np.array_equal(a, b), name
        else:
            assert (one / name).read_bytes() == (two / name).read_bytes(), name


@pytest.fixture(scope="module")
def mot_eval(tmp_path_factory):
    """A tiny untrained SRNN and 6 synthetic 3-target samples in batches of 2: rank 0 tracks batches 0 and 2,
    rank 1 batch 1. Tracked by one plain process and by torchrun with 2 processes."""
    from data import mot_tracking_data_generation as gen
    from model.srnn import SRNN
    from tests.test_mixdvae_mot_script import NETWORK, write_ini as mot_ini
    from utils.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("ddp_mot")
    torch.manual_seed(0)
    model = SRNN(**{k: v for k, v in NETWORK.items() if k != "name"}).eval()
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]))
    save_checkpoint(root / "dvae.pt", model, NETWORK, epoch=0)
    samples = gen.synthetic_samples(6, seq_len=20, num_targets=3, miss_prob=0.2, crossing_fraction=0.5,
                                    rng=np.random.default_rng(0))
    gen.prepare_out_dir(root / "syn", overwrite=False)
    gen.write_dataset(root / "syn", samples, [f"s{i}" for i in range(6)], {})

    def ini(name, data_dir, **overrides):
        return mot_ini(root / f"{name}.ini", root, data_dir, **{"User.save_root": str(root / name),
                                                                   "DataFrame.batch_size": 2,
                                                                   "Eval.num_plot_samples": 3, **overrides})

    one = run_script("mixdvae_mot.py", ini("one", root / "syn"), timeout=300)
    two = torchrun(2, "mixdvae_mot.py", ini("two", root / "syn"))
    return root, ini, samples, one, two


def test_two_processes_track_like_one(mot_eval):
    root, _, _, one, two = mot_eval
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    same_run_directories(only_run_dir(root / "one"), only_run_dir(root / "two"), "summary.json")
    log = (only_run_dir(root / "two") / "log.txt").read_text()
    assert "device: rank 1 of 2: CPU" in log


def test_a_failing_rank_stops_the_job_with_one_line_and_no_run_directory(mot_eval):
    """Sample s3 (batch 1: rank 1's) has boxes that overflow the VEM's float32 variances."""
    from data import mot_tracking_data_generation as gen

    root, ini, samples, _, _ = mot_eval
    bad = [dict(s) for s in samples]
    bad[3]["det"] = bad[3]["det"].copy()
    bad[3]["det"][4:] = [1e30, 1e30, 2e30, 2e30]
    bad[3]["image_size"] = np.zeros(2)
    gen.prepare_out_dir(root / "bad_data", overwrite=False)
    gen.write_dataset(root / "bad_data", bad, [f"s{i}" for i in range(6)], {})
    proc = torchrun(2, "mixdvae_mot.py", ini("bad", root / "bad_data"))
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "non-finite tracks for sample s3" in errors[0], proc.stderr[-3000:]
    assert "exitcode  : 2" in proc.stderr
    assert list((root / "bad").glob("*")) == []                 # the run directory was removed


@pytest.fixture(scope="module")
def scass_eval(tmp_path_factory):
    """Two tiny untrained DVAEs and 4 synthetic mixtures in batches of 1 (ranks 0, 1, 0, 1), the first 2
    written as audio examples; separated by one plain process and by torchrun with 2 processes."""
    from tests.conftest import write_tiny_scass
    from tests.test_mixdvae_scass_script import LENGTH, NETWORK, STFT_SECTION, flute, speech
    from tests.test_mixdvae_scass_script import write_ini as scass_ini

    root = write_tiny_scass(tmp_path_factory.mktemp("ddp_scass"), NETWORK, STFT_SECTION, flute, speech, 4, LENGTH)
    runs = {}
    for name, launch in (("one", lambda ini: run_script("mixdvae_scass.py", ini, timeout=300)),
                         ("two", lambda ini: torchrun(2, "mixdvae_scass.py", ini))):
        ini = scass_ini(root / f"{name}.ini", root, **{"User.save_root": str(root / name),
                                                        "Eval.metrics": "si_sdr,sdr,sir,sar,rmse",
                                                        "Eval.num_audio_examples": 2})
        runs[name] = launch(ini)
    return root, runs


def test_two_processes_separate_like_one(scass_eval):
    root, runs = scass_eval
    for proc in runs.values():
        assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = only_run_dir(root / "one"), only_run_dir(root / "two")
    assert (two / "audio" / "mix_00001_s2_speech_mixdvae.wav").is_file()        # rank 1's example
    same_run_directories(one, two, "summary.json")
