"""The MOT DVAE variants beyond the reference (§4): increments, denoising pre-training, the non-causal
encoder — each trains end to end and loads back as itself."""

import math

import pandas as pd
import torch

from data.trajectory_dataset import add_box_noise
from tests.conftest import run_script, tiny_mot_sections, write_ini
from utils.checkpoint import load_dvae


def test_box_noise_is_per_sequence_and_scales_with_the_box():
    x = torch.tensor([0.1, 0.2, 0.2, 0.6]).repeat(500, 30, 1)          # width 0.1, height 0.4
    noisy = add_box_noise(x, 0.06, torch.Generator().manual_seed(0))
    err = noisy - x
    std = err.std(dim=1)                                               # per sequence and coordinate
    assert torch.allclose((std[:, 1] / std[:, 0]).median(), torch.tensor(4.0), rtol=0.1)
    ratio = std[:, 0] / 0.1
    assert ratio.max() < 0.06 * 1.4 and ratio.min() < 0.01             # U(0, max) per sequence: some near clean
    assert torch.equal(add_box_noise(x, 0.0), x)


def test_denoising_noncausal_increments_pretraining_runs_and_reloads(tmp_path, mot_data):
    sections = tiny_mot_sections(mot_data, tmp_path / "runs")
    sections["Network"].update(increments=True, dim_RNN_g=6, dense_hx_g=[8])
    sections["Training"].update(input_noise=0.05, n_epochs=4, lr=0.003, ss_start=2, ss_end=6)
    ini = write_ini(tmp_path / "variant.ini", sections)
    proc = run_script("train_dvae_single.py", ini, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    losses = pd.read_csv(run_dir / "loss.csv")
    assert losses.drop(columns="epoch").map(float).apply(lambda c: c.map(math.isfinite)).all().all()
    assert losses["val_total"].iloc[1] < losses["val_total"].iloc[0]          # teacher-forced epochs
    assert losses["val_recon_px"].iloc[-1] < losses["val_recon_px"].iloc[0]  # schedule-independent error
    model, ckpt = load_dvae(run_dir / "best.pt")
    assert model.increments and model.rnn_g is not None and ckpt["network"]["increments"] is True
    assert (model.delta_std < model.feat_std).all()                    # increments are smaller than positions

