"""``[VEM] dvae_es_var = adaptive``: the E-S prediction variance k delta_std^2 with a k per sequence, re-estimated
after every E-S pass from the pass's filter corrections (model/covariance_matching.py)."""

from __future__ import annotations

import pytest
import torch

import model.covariance_matching as cm
from model.fast_srnn import FastSRNN
from model.fusion import fuse_gaussians
from model.vem_mot import SRNNDynamics
from tests.test_es_var import D, M, T, inputs
from tests.test_vem_mot import tiny_srnn


def random_walk_filter(matching: cm.CovarianceMatching, x: torch.Tensor, prec: torch.Tensor) -> None:
    """One filter pass of s_t = s_{t-1} + N(0, q) observed as x_t with precision prec_t, feeding ``matching``."""
    base = torch.ones(1, 1)
    q = base * matching.start_pass(x.shape[2], x)
    m, var = x[0], torch.full_like(x[0], 1e-6)
    for t in range(1, x.shape[0]):
        prior = var + q
        m_new, var_new = fuse_gaussians(prec[t], prec[t] * x[t], m, prior)
        matching.observe(m, prior, var, m_new, var_new, base)
        m, var = m_new, var_new
    matching.finish()


def simulated(k_true: torch.Tensor, obs_var: float, steps: int = 400, seed: int = 0):
    """Random walks with variance k_true (per sequence, base 1) seen with noise obs_var: (x, prec), (T, 1, M)."""
    gen = torch.Generator().manual_seed(seed)
    walk = torch.cumsum(torch.randn(steps, 1, k_true.numel(), generator=gen) * k_true.sqrt(), dim=0)
    x = walk + torch.randn(walk.shape, generator=gen) * obs_var ** 0.5
    return x, torch.full_like(x, 1.0 / obs_var)


def test_without_the_prior_the_estimate_finds_each_sequences_walk_variance(monkeypatch):
    monkeypatch.setattr(cm, "PRIOR_GAIN", 0.0)
    monkeypatch.setattr(cm, "K_RANGE", (1e-3, 1e3))
    k_true = torch.tensor([0.2, 1.0, 5.0])
    x, prec = simulated(k_true, obs_var=1.0)
    matching = cm.CovarianceMatching(k0=1.0, carry=True)
    for _ in range(15):                                   # the estimate is a fixed point: iterate the passes
        random_walk_filter(matching, x, prec)
    torch.testing.assert_close(matching.k[0], k_true, rtol=0.3, atol=0.0)


def test_the_prior_pulls_towards_k0_and_the_estimate_stays_in_its_range():
    k_true = torch.tensor([0.2, 50.0])
    x, prec = simulated(k_true, obs_var=1.0, steps=60)
    matching = cm.CovarianceMatching(k0=1.0, carry=True)
    for _ in range(10):
        random_walk_filter(matching, x, prec)
    k = matching.k[0]
    assert 0.25 <= k[0] < 1.0 and 1.0 < k[1] <= 4.0       # towards the truth, never beyond K_RANGE x k0


def test_frames_without_observations_add_nothing_and_unobserved_sequences_keep_their_k():
    matching = cm.CovarianceMatching(k0=2.0, carry=True)
    x, prec = simulated(torch.tensor([1.0, 1.0]), obs_var=0.5, steps=30)
    prec[:, :, 1] = 0.0                                   # sequence 1 is never observed
    random_walk_filter(matching, x, prec)
    assert matching.k[0, 1] == 2.0 and matching.k[0, 0] != 2.0
    gapped = prec.clone()
    gapped[10:20, :, 0] = 0.0
    first = cm.CovarianceMatching(k0=2.0, carry=True)
    random_walk_filter(first, x[:, :, :1], gapped[:, :, :1])
    assert torch.isfinite(first.k).all()


def test_select_keeps_the_sequences_that_go_on_and_reset_forgets():
    matching = cm.CovarianceMatching(k0=1.0, carry=True)
    matching.k = torch.tensor([[0.5, 1.5, 3.0]])
    matching.select(torch.tensor([0, 2]))
    torch.testing.assert_close(matching.k, torch.tensor([[0.5, 3.0]]))
    like = torch.zeros(1)
    torch.testing.assert_close(matching.start_pass(2, like), torch.tensor([[0.5, 3.0]]))
    torch.testing.assert_close(matching.start_pass(5, like), torch.ones(1, 5))  # another batch size starts at k0
    matching.reset()
    assert matching.k is None


def test_the_first_pass_is_the_fixed_variance_and_the_next_one_differs():
    model = tiny_srnn(1, increments=True)
    prec, x, z = inputs(4)
    start = (x[0], torch.full((D, M), 1e-5))
    with torch.no_grad():
        fixed = FastSRNN(model, 2.0, "propagate", "fixed").filter(prec, prec * x, *start, z)
        adaptive = FastSRNN(model, 2.0, "propagate", "adaptive")
        first = adaptive.filter(prec, prec * x, *start, z)
        second = adaptive.filter(prec, prec * x, *start, z)
    torch.testing.assert_close(first[0], fixed[0])
    torch.testing.assert_close(first[1], fixed[1])
    assert adaptive.matching.k.shape == (1, M) and not torch.allclose(second[1], first[1])


@pytest.mark.parametrize("es_mode", ["propagate", "smoother"])
def test_adaptive_fast_and_plain_paths_agree(es_mode):
    m = 0.3 + 0.4 * torch.rand(T, D, M, generator=torch.Generator().manual_seed(5))
    prec, _, _ = inputs(5)
    out = []
    for fast in (True, False):
        dyn = SRNNDynamics(tiny_srnn(1, increments=True), z_mode="mean", var_scale=1.5, fast=fast,
                           es_mode=es_mode, es_var="adaptive")
        z, _ = dyn.e_z(m, with_loss=False)
        for _ in range(3):                                # k is carried from pass to pass
            result = dyn.e_s(prec, prec * m, m[0], torch.full((D, M), 1e-5), z)
        out.append((result, dyn.fast.matching.k))
    torch.testing.assert_close(out[0][0][0], out[1][0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0][0][1], out[1][0][1], atol=1e-9, rtol=1e-4)
    torch.testing.assert_close(out[0][1], out[1][1], rtol=1e-4, atol=1e-6)


def test_a_new_batch_starts_from_k0():
    dyn = SRNNDynamics(tiny_srnn(1, increments=True), es_mode="propagate", es_var="adaptive", var_scale=1.5)
    dyn.fast.matching.k = torch.full((1, M), 3.0)
    assert dyn.for_batch() is dyn and dyn.fast.matching.k is None



def test_fine_tuning_keeps_each_sequences_k_across_its_weight_updates():
    m = 0.3 + 0.4 * torch.rand(T, D, M, generator=torch.Generator().manual_seed(6))
    prec, _, _ = inputs(6)
    dyn = SRNNDynamics(tiny_srnn(1, increments=True), z_mode="mean", finetune=True, lr=1e-3, var_scale=1.5,
                       es_mode="propagate", es_var="adaptive").for_batch()
    z, _ = dyn.e_z(m)
    dyn.e_s(prec, prec * m, m[0], torch.full((D, M), 1e-5), z)
    k = dyn.fast.matching.k.clone()
    dyn.e_z(m)                                            # one Adam step rebuilds the fused network
    assert dyn.fast.matching.k is not None
    torch.testing.assert_close(dyn.fast.matching.k, k)
