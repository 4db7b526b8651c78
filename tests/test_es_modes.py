"""E-S variants of MixDVAE-MOT beyond the paper (``[VEM] dvae_es``): the paper's filter, a filter whose prior
variance also carries Var(s_{t-1}) ("propagate"), and that filter followed by an RTS backward pass
("smoother"), and that smoother with the recurrence driven by the means E-Z saw ("iterated"). The
increments DVAE's mean is mu_theta = s_{t-1} + d_t, so with d_t held fixed the model is a
random walk with drift, whose exact posterior the tests compute by a dense solve."""

from __future__ import annotations

import pytest
import torch

from model.fast_srnn import FastSRNN
from model.fusion import fuse_gaussians, rts_identity_backward
from model.vem_mot import SRNNDynamics, VEMSettings
from tests.test_vem_mot import shuffle, tiny_srnn, track, walkers

torch.set_default_dtype(torch.float32)


def random_walk_posterior(prior0, var0, drift, q, y, r):
    """Exact marginals of s_1 ~ N(prior0, var0), s_t = s_{t-1} + drift_t + N(0, q_t), y_t ~ N(s_t, 1/r_t)
    (1-D, float64) by building the tridiagonal precision matrix and solving it."""
    T = y.shape[0]
    prec = torch.zeros(T, T, dtype=torch.float64)
    rhs = torch.zeros(T, dtype=torch.float64)
    prec[0, 0] += 1 / var0
    rhs[0] += prior0 / var0
    for t in range(1, T):                       # -(s_t - s_{t-1} - d_t)^2 / (2 q_t)
        a = 1 / q[t]
        prec[t, t] += a
        prec[t - 1, t - 1] += a
        prec[t, t - 1] -= a
        prec[t - 1, t] -= a
        rhs[t] += a * drift[t]
        rhs[t - 1] -= a * drift[t]
    prec += torch.diag(r)
    rhs += r * y
    cov = torch.linalg.inv(prec)
    return cov @ rhs, torch.diagonal(cov)


def test_rts_backward_gives_the_exact_random_walk_posterior():
    gen = torch.Generator().manual_seed(0)
    T = 15
    drift = torch.randn(T, generator=gen, dtype=torch.float64)
    q = 0.1 + torch.rand(T, generator=gen, dtype=torch.float64)
    y = torch.cumsum(drift, 0) + torch.randn(T, generator=gen, dtype=torch.float64)
    r = torch.rand(T, generator=gen, dtype=torch.float64) * 2
    r[5:8] = 0.0                                                     # missing observations
    prior0, var0 = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)
    means, variances, mus, ps = [], [], [], []
    for t in range(T):                                              # the "propagate" forward filter
        mu, p = (prior0, var0) if t == 0 else (means[-1] + drift[t], variances[-1] + q[t])
        m, v = fuse_gaussians(r[t], r[t] * y[t], mu, p)
        means.append(m), variances.append(v), mus.append(mu), ps.append(p)
    m_s, v_s = rts_identity_backward(torch.stack(means), torch.stack(variances), torch.stack(mus), torch.stack(ps))
    exact_m, exact_v = random_walk_posterior(prior0, var0, drift, q, y, r)
    torch.testing.assert_close(m_s, exact_m, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(v_s, exact_v, atol=1e-10, rtol=1e-9)
    assert torch.equal(m_s[-1], means[-1])                          # the last frame is the filter's


def filtered(es_mode, prec, z, var_scale=2.0):
    model = tiny_srnn(1, increments=True)
    T, D, M = prec.shape
    gen = torch.Generator().manual_seed(3)
    x = 0.3 + 0.4 * torch.rand(T, D, M, generator=gen)
    start = x[0]
    with torch.no_grad():
        return FastSRNN(model, var_scale, es_mode).filter(prec, prec * x, start, torch.full((D, M), 1e-5), z)


def test_without_observations_propagate_accumulates_the_filter_variances():
    """With no observation after frame 1 nothing is fused: the means are the DVAE's free run in every mode,
    the filter's variance is var_scale sigma^2_theta,t and propagate's is its running sum."""
    T, D, M = 8, 4, 5
    prec = torch.zeros(T, D, M)
    prec[0] = 1e4
    z = torch.randn(T, 3, M, generator=torch.Generator().manual_seed(4))
    m_f, v_f = filtered("filter", prec, z)
    m_p, v_p = filtered("propagate", prec, z)
    torch.testing.assert_close(m_p, m_f)
    torch.testing.assert_close(v_p[1:], v_p[0] + torch.cumsum(v_f[1:], 0), rtol=1e-5, atol=1e-12)


def test_smoother_ends_on_the_filter_and_lets_the_future_move_the_past():
    T, D, M = 10, 4, 3
    gen = torch.Generator().manual_seed(5)
    prec = torch.rand(T, D, M, generator=gen) * 1e3
    z = torch.randn(T, 3, M, generator=gen)
    m_p, v_p = filtered("propagate", prec, z)
    m_s, v_s = filtered("smoother", prec, z)
    torch.testing.assert_close(m_s[-1], m_p[-1])
    assert (v_s <= v_p * (1 + 1e-5)).all()                            # smoothing never adds uncertainty
    assert not torch.allclose(m_s[:-1], m_p[:-1])


def test_propagate_and_smoother_need_an_increments_dvae():
    with pytest.raises(ValueError, match="increments"):
        FastSRNN(tiny_srnn(), es_mode="smoother")
    with pytest.raises(ValueError, match="es_mode"):
        FastSRNN(tiny_srnn(increments=True), es_mode="backward")


def test_iterated_driven_by_the_smoothers_own_forward_means_is_the_smoother():
    """The "smoother" pass drives h_t by its forward (filtered) means; "iterated" given exactly those means
    as the drive reproduces it. Any other drive changes the increments d_t and so the tracks."""
    T, D, M = 10, 4, 3
    gen = torch.Generator().manual_seed(6)
    prec = torch.rand(T, D, M, generator=gen) * 1e3
    prec[3:7] = 0.0                                                   # a gap
    z = torch.randn(T, 3, M, generator=gen)
    x = 0.3 + 0.4 * torch.rand(T, D, M, generator=gen)
    model = tiny_srnn(1, increments=True)
    with torch.no_grad():
        smoother = FastSRNN(model, 2.0, "smoother")
        m_s, v_s = smoother.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z)
        forward = FastSRNN(model, 2.0, "propagate")                   # the smoother's forward pass, alone
        forward.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z)
        m_fwd, h_fwd = forward.last
        iterated = FastSRNN(model, 2.0, "iterated")
        m_i, v_i = iterated.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z, drive_h=h_fwd)
        torch.testing.assert_close(m_i, m_s)
        torch.testing.assert_close(v_i, v_s)
        h_other = model.deterministic((m_fwd + 0.05).permute(2, 0, 1)).permute(1, 2, 0)
        m_o, _ = iterated.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z, drive_h=h_other)
        assert not torch.allclose(m_o[3:7], m_s[3:7])
        with pytest.raises(ValueError, match="drive_h"):
            iterated.filter(prec, prec * x, x[0], torch.full((D, M), 1e-5), z)


def constant_velocity_posterior(prior0, var0, drift, q, y, r):
    """Exact marginals of s_1 ~ N(prior0, var0), s_2 = s_1 + drift + N(0, q), s_t = 2 s_{t-1} - s_{t-2} + drift +
    N(0, q) (t > 2), y_t ~ N(s_t, 1/r_t) (1-D, float64), from the dense precision matrix."""
    T = y.shape[0]
    prec = torch.diag(r.clone())
    rhs = r * y
    prec[0, 0] += 1 / var0
    rhs[0] += prior0 / var0
    for t in range(1, T):
        c = torch.zeros(T, dtype=torch.float64)
        c[t], c[t - 1] = 1.0, -1.0
        if t > 1:
            c[t - 1], c[t - 2] = -2.0, 1.0
        prec += torch.outer(c, c) / q
        rhs += c * drift / q
    cov = torch.linalg.inv(prec)
    return cov @ rhs, torch.diagonal(cov)


def test_the_velocity_anchor_smoother_gives_the_exact_constant_velocity_posterior():
    """A velocity-anchored DVAE whose decoder mean is a constant (d_t = drift) is a linear-Gaussian system: the
    smoother's marginals are exact, and the last frame of "propagate" (a filter) is the smoother's."""
    model = tiny_srnn(1, increments=True, velocity=True)
    with torch.no_grad():
        model.gen_out.weight.zero_()
        model.gen_out.bias.fill_(0.3)                                  # d = 0.3 delta_std on every coordinate
    T, D, M = 14, 4, 3
    gen = torch.Generator().manual_seed(8)
    prec = (torch.rand(T, D, M, generator=gen) * 4e4).double()
    prec[5:10, :, :2] = 0.0                                            # a gap
    y = 0.4 + torch.cumsum(0.004 * torch.rand(T, D, M, generator=gen), 0).double()
    start_var = torch.full((D, M), 1e-5)
    z = torch.randn(T, 3, M, generator=gen)
    out = {}
    for es_mode in ("propagate", "smoother"):
        fast = FastSRNN(model, 2.0, es_mode, "fixed")
        out[es_mode] = fast.filter(prec.float(), (prec * y).float(), y[0].float(), start_var, z)
    q = fast.fixed_var[:, 0].double()
    drift = 0.3 * model.delta_std.double()
    for d in range(D):
        for j in range(M):
            exact_m, exact_v = constant_velocity_posterior(y[0, d, j], start_var[d, j].double(), drift[d], q[d],
                                                           y[:, d, j], prec[:, d, j])
            torch.testing.assert_close(out["smoother"][0][:, d, j].double(), exact_m, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(out["smoother"][1][:, d, j].double(), exact_v, atol=1e-12, rtol=1e-3)
            torch.testing.assert_close(out["propagate"][0][-1, d, j].double(), exact_m[-1], atol=1e-6, rtol=1e-5)


def test_a_velocity_anchor_with_a_variance_carrying_es_needs_the_fast_path():
    with pytest.raises(ValueError, match="fast path"):
        SRNNDynamics(tiny_srnn(1, increments=True, velocity=True), es_mode="smoother", fast=False)
    SRNNDynamics(tiny_srnn(1, increments=True, velocity=True), es_mode="filter", fast=False)


@pytest.mark.parametrize(("es_mode", "velocity"), [("iterated", False), ("filter", True)])
def test_fast_and_plain_paths_agree(es_mode, velocity):
    """SRNNDynamics: E-Z records the means it saw, E-S "iterated" drives h_t with them, in both paths; the
    velocity anchor is the same in both."""
    T, D, M = 9, 4, 4
    gen = torch.Generator().manual_seed(7)
    m = 0.3 + 0.4 * torch.rand(T, D, M, generator=gen)
    prec = torch.rand(T, D, M, generator=gen) * 1e3
    prec[2:6, :, :2] = 0.0
    out = []
    for fast in (True, False):
        dyn = SRNNDynamics(tiny_srnn(1, increments=True, velocity=velocity), z_mode="mean", var_scale=3.0, fast=fast,
                           es_mode=es_mode)
        z, _ = dyn.e_z(m, with_loss=False)
        out.append(dyn.e_s(prec, prec * m, m[0], torch.full((D, M), 1e-5), z))
    torch.testing.assert_close(out[0][0], out[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[0][1], out[1][1], atol=1e-9, rtol=1e-4)


@pytest.mark.parametrize("es_mode", ["propagate", "smoother", "iterated"])
def test_the_vem_tracks_clean_separated_targets_with_every_es_mode(es_mode):
    gt = walkers()
    det = shuffle(gt)
    settings = VEMSettings(n_iter=4, init_iter=3, init_subseq_len=10)
    result = track(det, gt[:, 0], SRNNDynamics(tiny_srnn(increments=True), z_mode="mean", es_mode=es_mode), settings)
    assert torch.isfinite(result.tracks).all()
    assert (result.tracks - torch.as_tensor(gt, dtype=torch.float32)).abs().max() < 5.0


def test_the_two_state_smoother_stays_finite_at_extreme_precisions():
    """Observations of precision 1e30 (the previous state known exactly, so the predicted 2 x 2 covariance is
    singular) and a run of missed frames: finite means on the observations, finite positive variances."""
    model = tiny_srnn(1, increments=True, velocity=True)
    T, D, M = 9, 4, 3
    gen = torch.Generator().manual_seed(9)
    x = 0.3 + 0.4 * torch.rand(T, D, M, generator=gen)
    prec = torch.full((T, D, M), 1e30)
    prec[4:6] = 0.0
    with torch.no_grad():
        m, v = FastSRNN(model, 0.3, "smoother", "fixed").filter(prec, prec * x, x[0], torch.full((D, M), 1e-5),
                                                                torch.randn(T, 3, M, generator=gen))
    assert torch.isfinite(m).all() and torch.isfinite(v).all() and (v > 0).all()
    keep = torch.ones(T, dtype=torch.bool)
    keep[4:6] = False
    torch.testing.assert_close(m[keep], x[keep], atol=1e-6, rtol=1e-6)
