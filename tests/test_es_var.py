"""The variance of MixDVAE-MOT's E-S prediction (``[VEM] dvae_es_var``): "model" is the decoder's
sigma^2_theta(h_t, z_t) (the paper); "fixed" is var_scale x delta_std^2 per coordinate on every frame, so the
posterior variances no longer depend on z (the means still do, through the increments d_t)."""

from __future__ import annotations

import pytest
import torch

from model.fast_srnn import FastSRNN
from model.vem_mot import SRNNDynamics, VEMSettings
from tests.test_es_modes import random_walk_posterior
from tests.test_vem_mot import shuffle, tiny_srnn, track, walkers

T, D, M = 10, 4, 3


def inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    prec = torch.rand(T, D, M, generator=gen) * 1e3
    prec[3:7] = 0.0                                                   # a gap
    x = 0.3 + 0.4 * torch.rand(T, D, M, generator=gen)
    z = torch.randn(T, 3, M, generator=gen)
    return prec, x, z


def run(model, es_mode, es_var, prec, x, z, var_scale=2.0):
    with torch.no_grad():
        return FastSRNN(model, var_scale, es_mode, es_var).filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z)


def test_fixed_variance_is_var_scale_times_the_training_increments_variance_on_every_frame():
    model = tiny_srnn(1, increments=True)
    model.delta_std.copy_(torch.tensor([0.01, 0.02, 0.03, 0.04]))
    prec, x, z = inputs()
    prec[1:] = 0.0                                                    # nothing fused after frame 1
    _, v = run(model, "propagate", "fixed", prec, x, z, var_scale=3.0)
    steps = torch.arange(1, T, dtype=torch.float32)[:, None, None]
    expected = v[0] + steps * (3.0 * model.delta_std.square())[None, :, None]
    torch.testing.assert_close(v[1:], expected, rtol=1e-5, atol=1e-12)


def test_fixed_variance_does_not_depend_on_z_and_the_model_variance_does():
    model = tiny_srnn(1, increments=True)
    prec, x, z = inputs(1)
    other = z + 1.5
    fixed = [run(model, "smoother", "fixed", prec, x, zz) for zz in (z, other)]
    torch.testing.assert_close(fixed[0][1], fixed[1][1])
    assert not torch.allclose(fixed[0][0], fixed[1][0])                # the increments still follow z
    learned = [run(model, "smoother", "model", prec, x, zz)[1] for zz in (z, other)]
    assert not torch.allclose(learned[0], learned[1])


def test_fixed_smoother_is_the_exact_random_walk_posterior_with_the_dvae_drift():
    """The smoother with d_t held fixed and q = var_scale delta_std^2 is the exact posterior of
    s_t = s_{t-1} + d_t + N(0, q), observed with precision prec_t (per coordinate, by a dense solve); d_t are
    the forward pass's increments mu_t - m_{t-1}, recorded from its steps."""
    model = tiny_srnn(1, increments=True)
    prec, x, z = inputs(2)
    fast = FastSRNN(model, 2.0, "smoother", "fixed")
    steps = []

    def spy(*args, **kwargs):
        out = FastSRNN._filter_step(fast, *args, **kwargs)
        steps.append((args[0], out[2]))                               # (m_{t-1}, mu_t)
        return out

    fast._step = spy
    with torch.no_grad():
        m_s, v_s = fast.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z)
    drift = torch.stack([torch.zeros(D, M)] + [mu - m_prev for m_prev, mu in steps]).double()
    q = 2.0 * model.delta_std.double() ** 2                           # var_scale x delta_std^2, per coordinate
    for d in range(D):
        for j in range(M):
            exact_m, exact_v = random_walk_posterior(
                x[0, d, j].double(), torch.tensor(1e-5, dtype=torch.float64), drift[:, d, j],
                q[d].expand(T), x[:, d, j].double(), prec[:, d, j].double())
            torch.testing.assert_close(m_s[:, d, j].double(), exact_m, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(v_s[:, d, j].double(), exact_v, atol=1e-9, rtol=1e-3)


def test_fixed_variance_fast_and_plain_paths_agree():
    m = 0.3 + 0.4 * torch.rand(T, D, M, generator=torch.Generator().manual_seed(3))
    prec, _, _ = inputs(3)
    out = []
    for fast in (True, False):
        dyn = SRNNDynamics(tiny_srnn(1, increments=True), z_mode="mean", var_scale=3.0, fast=fast,
                           es_mode="smoother", es_var="fixed")
        z, _ = dyn.e_z(m, with_loss=False)
        out.append(dyn.e_s(prec, prec * m, m[0], torch.full((D, M), 1e-5), z))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0][1], out[1][1], atol=1e-9, rtol=1e-4)


def test_an_unknown_es_var_is_refused():
    with pytest.raises(ValueError, match="es_var"):
        FastSRNN(tiny_srnn(increments=True), es_var="learned")


@pytest.mark.parametrize("es_mode, es_var", [("smoother", "fixed"), ("propagate", "adaptive")])
def test_the_vem_tracks_clean_separated_targets_with_the_fixed_and_the_adaptive_variance(es_mode, es_var):
    gt = walkers()
    settings = VEMSettings(n_iter=4, init_iter=3, init_subseq_len=10)
    dyn = SRNNDynamics(tiny_srnn(increments=True), z_mode="mean", es_mode=es_mode, es_var=es_var)
    result = track(shuffle(gt), gt[:, 0], dyn, settings)
    assert torch.isfinite(result.tracks).all()
    assert (result.tracks - torch.as_tensor(gt, dtype=torch.float32)).abs().max() < 5.0
