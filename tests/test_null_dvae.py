"""The null ablation of a MOT DVAE (``tools/null_dvae.py``): the same checkpoint with a zero decoder-mean output,
so that a velocity-anchored DVAE predicts constant velocity and an increments DVAE a random walk, whatever its
recurrence and z say. A row with it measures MixDVAE's E-S and noise model with nothing learned in the prediction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.fast_srnn import FastSRNN
from model.srnn import SRNN
from tools.null_dvae import null_dvae
from utils.checkpoint import load_dvae, save_checkpoint
from utils.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
NETWORK = dict(name="SRNN", x_dim=4, z_dim=3, activation="tanh", dense_x_h=[8], dim_RNN_h=6, num_RNN_h=1,
               dense_hx_g=[], dim_RNN_g=0, num_RNN_g=1, dense_gz_z=[8], dense_hz_x=[8], dense_hz_z=[8],
               dropout_p=0.0, increments=True, velocity=True)


def checkpoint(path: Path, **network) -> Path:
    """An untrained (random-weight) DVAE with box-like statistics, saved at ``path``."""
    net = {**NETWORK, **network}
    torch.manual_seed(0)
    model = SRNN(**{k: v for k, v in net.items() if k != "name"}).eval()
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]),
                            torch.tensor([0.01, 0.005, 0.01, 0.006]))
    save_checkpoint(path, model, net, epoch=7)
    return path


def sequences(B=5, T=12) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return 0.4 + torch.cumsum(0.01 * torch.randn(B, T, 4, generator=gen), 1)


def test_the_null_of_a_velocity_dvae_predicts_constant_velocity_whatever_z(tmp_path):
    src = checkpoint(tmp_path / "vel.pt")
    assert null_dvae(src, tmp_path / "null.pt").startswith("constant velocity")
    model, ckpt = load_dvae(tmp_path / "null.pt", head="gaussian")
    original, _ = load_dvae(src, head="gaussian")
    x = sequences()
    for sample in (False, True):                                        # posterior mean z, and a sample
        mean, _ = model.reconstruct(x, sample=sample)
        torch.testing.assert_close(mean[:, 2:], 2 * x[:, 1:-1] - x[:, :-2], atol=1e-7, rtol=0)
        torch.testing.assert_close(mean[:, 1], x[:, 0], atol=1e-7, rtol=0)         # frame 2: no velocity yet
    assert not torch.allclose(original.reconstruct(x)[0][:, 2:], 2 * x[:, 1:-1] - x[:, :-2], atol=1e-4)
    torch.testing.assert_close(model.reconstruct(x)[1], original.reconstruct(x)[1], atol=0, rtol=0)  # variance kept
    assert ckpt["null_of"] == str(src) and ckpt["epoch"] == 7 and ckpt["network"] == NETWORK


def test_the_null_keeps_every_other_weight(tmp_path):
    src = checkpoint(tmp_path / "vel.pt")
    null_dvae(src, tmp_path / "null.pt")
    before, after = load_dvae(src)[0].state_dict(), load_dvae(tmp_path / "null.pt")[0].state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"gen_out.weight", "gen_out.bias"}
    assert not after["gen_out.weight"].any() and not after["gen_out.bias"].any()


def test_the_null_e_s_does_not_depend_on_z(tmp_path):
    """With the fixed E-S variance the null's smoother is a constant-velocity Kalman smoother: the latents, which
    the VEM's E-Z draws, change nothing."""
    null_dvae(checkpoint(tmp_path / "vel.pt"), tmp_path / "null.pt")
    model = load_dvae(tmp_path / "null.pt")[0]
    T, D, M = 10, 4, 3
    gen = torch.Generator().manual_seed(2)
    prec = torch.rand(T, D, M, generator=gen) * 4e4
    prec[4:7, :, 0] = 0.0                                               # a gap
    y = 0.4 + torch.cumsum(0.004 * torch.rand(T, D, M, generator=gen), 0)
    fast = FastSRNN(model, 0.3, "smoother", "fixed")
    runs = [fast.filter(prec, prec * y, y[0], torch.full((D, M), 1e-5), torch.randn(T, 3, M, generator=gen))
            for _ in range(2)]
    torch.testing.assert_close(runs[0][0], runs[1][0], atol=0, rtol=0)
    torch.testing.assert_close(runs[0][1], runs[1][1], atol=0, rtol=0)


def test_the_null_of_an_increments_dvae_is_a_random_walk(tmp_path):
    src = checkpoint(tmp_path / "inc.pt", velocity=False)
    assert null_dvae(src, tmp_path / "null.pt").startswith("a random walk")
    x = sequences()
    mean, _ = load_dvae(tmp_path / "null.pt")[0].reconstruct(x)
    torch.testing.assert_close(mean[:, 1:], x[:, :-1], atol=1e-7, rtol=0)


def test_a_dvae_without_increments_has_no_null(tmp_path):
    src = checkpoint(tmp_path / "ref.pt", increments=False, velocity=False)
    with pytest.raises(UserError, match="needs an increments DVAE"):
        null_dvae(src, tmp_path / "null.pt")
    assert not (tmp_path / "null.pt").exists()


def test_the_command_refuses_to_overwrite_its_source_with_one_line(tmp_path):
    src = checkpoint(tmp_path / "vel.pt")
    before = src.read_bytes()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "null_dvae.py"), str(src), str(src)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    assert "must not overwrite" in proc.stderr
    assert src.read_bytes() == before
