"""The MOT VEM (docs/method.md §5) and KF-VEM (§7) as a specification: hand cases, properties, toys whose
answer is known, and bad inputs (empty frames, clutter, missing/degenerate boxes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.kf_vem import KalmanDynamics, kalman_smoother
from model.srnn import SRNN
from model.fast_srnn import FastSRNN
from model.fusion import fuse_gaussians
from model.vem_mot import (MISSING_VAR, SRNNDynamics, VEMSettings, e_w,
                           observation_information, observation_variance, run_vem, update_observation_variance)
from utils.mot_eval import mota_idf1

torch.set_num_threads(1)

QUICK = VEMSettings(n_iter=4, init_iter=3, init_subseq_len=10, save_all_iters=True)


def tiny_srnn(seed=0, activation="tanh", dense=(8,), layers=1, increments=False, backward_g=False,
              velocity=False) -> SRNN:
    """An untrained SRNN with box-like feature statistics (its predictions are poor, its variance wide)."""
    torch.manual_seed(seed)
    d = list(dense)
    model = SRNN(x_dim=4, z_dim=3, dense_x_h=d, dim_RNN_h=6, num_RNN_h=layers, dense_hz_z=d, dense_hz_x=d,
                 dense_gz_z=d + [5] if d else [], activation=activation, increments=increments, velocity=velocity,
                 dense_hx_g=d if backward_g else [], dim_RNN_g=5 if backward_g else 0).eval()
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]),
                            torch.tensor([0.01, 0.005, 0.01, 0.006]))
    return model


def boxes(x, y, w=60.0, h=160.0):
    """(..., 4) boxes with top-left corners (x, y), pixels."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    return np.stack([x, y, x + w, y + h], -1)


def walkers(B=3, T=24, N=3, seed=0):
    """Well separated constant-velocity targets (pixels), (B, T, N, 4)."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(100, 300, (B, 1, N)) + 500.0 * np.arange(N)
    y0 = rng.uniform(200, 600, (B, 1, N))
    vx, vy = rng.uniform(-4, 4, (B, 1, N)), rng.uniform(-2, 2, (B, 1, N))
    t = np.arange(T)[None, :, None]
    return boxes(x0 + vx * t, y0 + vy * t)


def shuffle(det, seed=0):
    """Random detection order for t >= 1 (identity lives only in init / gt)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(det.shape[:3]), axis=-1)
    order[:, 0] = np.arange(det.shape[2])
    return np.take_along_axis(det, order[..., None], axis=2)


def track(det, init, dynamics, settings=QUICK, mask=None):
    det = torch.as_tensor(det, dtype=torch.float32)
    return run_vem(det, mask, torch.as_tensor(init, dtype=torch.float32), dynamics, settings)


# ----------------------------------------------------------------------------- (5.1), (5.4) hand cases


def test_fusion_is_the_1d_gaussian_product():
    # prior N(0, 4) x observation N(2, 1): var = 1 / (1 + 1/4) = 0.8, mean = 0.8 (2 / 1 + 0 / 4) = 1.6
    m, v = fuse_gaussians(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.0), torch.tensor(4.0))
    assert float(v) == pytest.approx(0.8) and float(m) == pytest.approx(1.6)
    # two detections of one source add their precisions and informations (information form)
    m, v = fuse_gaussians(torch.tensor(1.0 + 4.0), torch.tensor(2.0 * 1.0 + 3.0 * 4.0), torch.tensor(0.0),
                          torch.tensor(1e30))
    assert float(v) == pytest.approx(0.2) and float(m) == pytest.approx((2 + 12) / 5)


def test_observation_variance_scales_with_box_size_and_missing_is_finite():
    obs = torch.tensor([[10.0, 20.0, 40.0, 120.0], [0.0, 0.0, 0.0, 0.0]]).T[None, :, :, None]   # (1, 4, 2, 1)
    mask = torch.tensor([[[True], [False]]])
    phi = observation_variance(obs, mask, std_ratio=0.1)
    np.testing.assert_allclose(phi[0, :, 0, 0], [3.0**2, 10.0**2, 3.0**2, 10.0**2], rtol=1e-6)   # w 30, h 100
    assert torch.all(phi[0, :, 1, 0] == MISSING_VAR)


def test_first_frame_is_pinned_start_fused_with_detections():
    """E-S at t = 1: prior N(init, 1e-5) fused with the assigned detection, by the closed form."""
    model = tiny_srnn()
    start, pinned = torch.full((4, 2), 0.3), torch.full((4, 2), 1e-5)
    prec = torch.zeros(5, 4, 2)
    info = torch.zeros(5, 4, 2)
    prec[0], info[0] = 1e5, 1e5 * 0.31                                  # one detection at 0.31, var 1e-5
    m, v = SRNNDynamics(model).e_s(prec, info, start, pinned, torch.zeros(5, 3, 2))
    np.testing.assert_allclose(m[0], 0.305, atol=1e-6)
    np.testing.assert_allclose(v[0], 5e-6, rtol=1e-4)


# ----------------------------------------------------------------------------- (5.2)


def test_eta_sums_to_one_over_sources_and_clutter_and_is_zero_when_missing():
    gen = torch.Generator().manual_seed(0)
    T, K, N, B = 5, 4, 3, 2
    obs = torch.rand(T, 4, K, B, generator=gen)
    mask = torch.rand(T, K, B, generator=gen) > 0.3
    obs = torch.where(mask[:, None], obs, torch.zeros_like(obs))
    phi = torch.where(mask[:, None], torch.rand(T, 4, K, B, generator=gen) * 1e-3 + 1e-4, torch.ones(1))
    m, var = torch.rand(T, 4, N, B, generator=gen), torch.rand(T, 4, N, B, generator=gen) * 1e-3
    for clutter in (None, -5.0):
        eta = e_w(obs, phi, mask, m, var, temperature=0.5, clutter_logprob=clutter)
        assert eta.shape == (T, K, N + (clutter is not None), B)
        assert torch.all(eta >= 0) and torch.isfinite(eta).all()
        np.testing.assert_allclose(eta.sum(2)[mask], 1.0, rtol=1e-5)
        assert torch.all(eta.sum(2)[~mask] == 0)


def test_eta_prefers_the_nearest_source_and_clutter_takes_outliers():
    # one frame, sources at 0.2 and 0.6 (all coordinates), detections at 0.21, 0.59 and a far 0.95
    obs = torch.tensor([0.21, 0.59, 0.95])[None, None, :, None].expand(1, 4, 3, 1)
    phi = torch.full_like(obs, 1e-4)
    m = torch.tensor([0.2, 0.6])[None, None, :, None].expand(1, 4, 2, 1)
    mask = torch.ones(1, 3, 1, dtype=torch.bool)
    eta = e_w(obs, phi, mask, m, torch.full_like(m, 1e-6), temperature=1.0, clutter_logprob=-50.0)[0, :, :, 0]
    assert eta[0, 0] > 0.99 and eta[1, 1] > 0.99 and eta[2, 2] > 0.99
    # without a clutter class the outlier goes to the nearest source
    eta = e_w(obs, phi, mask, m, torch.full_like(m, 1e-6), temperature=1.0)[0, :, :, 0]
    assert eta[2, 1] > 0.99


def test_observation_information_ignores_missing_detections_exactly():
    obs = torch.tensor([[0.3, 0.0]]).expand(4, 2)[None, :, :, None].contiguous()      # second one missing
    phi = torch.tensor([[1e-4, MISSING_VAR]]).expand(4, 2)[None, :, :, None].contiguous()
    eta = torch.tensor([[[[0.25], [0.75]], [[0.0], [0.0]]]])                            # (T, K, N, B)
    prec, info = observation_information(eta, obs, phi)
    np.testing.assert_allclose(prec[0, :, :, 0], [[0.25e4, 0.75e4]] * 4, rtol=1e-6)
    np.testing.assert_allclose(info[0, :, :, 0], [[0.25e4 * 0.3, 0.75e4 * 0.3]] * 4, rtol=1e-6)


# ----------------------------------------------------------------------------- the fast SRNN path


def reference_filter(model, prec, info, start, start_var, z):
    """E-S (5.4) written with the SRNN's public one-step API, frames-first (M, T, D)."""
    means, variances, m_prev, state = [], [], None, None
    for t in range(prec.shape[1]):
        (mu, v), state = model.step(m_prev, z[:, t], state)
        if t == 0:
            mu, v = start, start_var
        m_prev, var = fuse_gaussians(prec[:, t], info[:, t], mu, v)
        means.append(m_prev)
        variances.append(var)
    return torch.stack(means, 1), torch.stack(variances, 1)


@pytest.mark.parametrize(("activation", "dense", "layers", "increments", "backward_g", "velocity"),
                         [("tanh", (8,), 1, False, False, False), ("relu", (), 2, False, False, False),
                          ("tanh", (8, 6), 1, False, False, False), ("tanh", (8,), 1, True, False, False),
                          ("relu", (), 2, True, False, False), ("tanh", (8,), 1, False, True, False),
                          ("tanh", (8,), 1, True, True, False), ("tanh", (8,), 1, True, False, True),
                          ("relu", (), 2, True, False, True)])
def test_fast_srnn_equals_the_srnn_api(activation, dense, layers, increments, backward_g, velocity):
    """The fused evaluation gives the SRNN's own values, for the reference network, increments, the velocity
    anchor and the non-causal (backward-LSTM) encoder."""
    model = tiny_srnn(1, activation, dense, layers, increments, backward_g, velocity)
    gen = torch.Generator().manual_seed(2)
    M, T = 5, 9
    x = 0.3 + 0.4 * torch.rand(M, T, 4, generator=gen)
    prec = torch.rand(M, T, 4, generator=gen) * 1e3
    z = torch.randn(M, T, 3, generator=gen)
    def tm(a):                                                          # (M, T, .) -> (T, ., M)
        return a.permute(1, 2, 0).contiguous()

    fast = FastSRNN(model)
    tol = 20 if increments else 1          # increments divide differences by delta_std ~ 0.005: rounding x 200
    with torch.no_grad():
        ref_m, ref_v = reference_filter(model, prec, prec * x, x[:, 0], torch.full((M, 4), 1e-5), z)
        m, v = fast.filter(tm(prec), tm(prec * x), x[:, 0].T, torch.full((4, M), 1e-5), tm(z))
        torch.testing.assert_close(m, tm(ref_m), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(v, tm(ref_v), atol=1e-9, rtol=1e-4)
        # encoder with the posterior mean; the h of the filter pass is reused and equals (4.1) on m
        h = model.deterministic(ref_m)
        z_ref, _, logvar_ref = model.inference(ref_m, h, sample=False)
        enc = fast.encode(m, sample=False)
        torch.testing.assert_close(enc["h"], tm(h), atol=tol * 1e-6, rtol=tol * 1e-5)
        other = ref_m + 0.01 * torch.randn(ref_m.shape, generator=gen)      # not the cached pass: computed afresh
        torch.testing.assert_close(fast.encode(tm(other), sample=False)["h"], tm(model.deterministic(other)),
                                   atol=tol * 1e-6, rtol=tol * 1e-5)
        torch.testing.assert_close(enc["z"], tm(z_ref), atol=tol * 1e-5, rtol=tol * 1e-4)
        torch.testing.assert_close(enc["z_logvar"], tm(logvar_ref), atol=tol * 1e-5, rtol=tol * 1e-4)
        # the DVAE loss (4.5) of x = m for that encoder pass
        z_ref, z_mean, z_logvar = model.inference(ref_m, h, sample=False)
        p_mean, p_logvar = model.prior(h, z_ref)
        fwd = {"out": model.generate(h, z_ref), "z_mean": z_mean, "z_logvar": z_logvar, "p_mean": p_mean,
               "p_logvar": p_logvar, "x_in": ref_m}
        torch.testing.assert_close(fast.loss(m, enc, beta=0.7), model.loss(ref_m, fwd, beta=0.7)[0],
                                   atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- whole VEM: toys with known answers


@pytest.mark.parametrize("kind", ["dvae", "kalman"])
def test_clean_separated_detections_give_ground_truth_tracks(kind):
    gt = walkers()
    det = shuffle(gt)
    dynamics = SRNNDynamics(tiny_srnn()) if kind == "dvae" else KalmanDynamics()
    result = track(det, gt[:, 0], dynamics)
    assert result.tracks.shape == gt.shape
    np.testing.assert_allclose(result.tracks.numpy(), gt, atol=1.0)        # the prior pulls a little
    assert mota_idf1(gt, result.tracks) == (1.0, 1.0)
    assert result.iter_tracks.shape == (QUICK.n_iter + 1, *gt.shape)
    assert set(result.elbo) == {"assignment_entropy", "expected_loglik", "gaussian_entropy", "dvae_loss"}
    assert all(v.shape == (QUICK.n_iter, gt.shape[0]) for v in result.elbo.values())
    assert torch.isfinite(result.elbo["expected_loglik"]).all()


def crossing(T=30, missing=()):
    """Two pedestrians walking towards each other on the same line, crossing at frame 15 (pixels)."""
    t = np.arange(T)
    gt = np.stack([boxes(200 + 20.0 * t, 500.0), boxes(800 - 20.0 * t, 500.0)], 1)[None]      # (1, T, 2, 4)
    det = gt + np.random.default_rng(3).normal(0, 1.0, gt.shape)
    for f, k in missing:
        det[0, f, k] = np.nan
    return gt, shuffle(det, seed=4)


def test_kf_vem_keeps_identities_through_a_crossing():
    """The boxes pass through each other; a proximity tracker could swap them, constant velocity does not.
    Soft assignments (small tau) let the smoother's velocity carry each source through the crossing."""
    gt, det = crossing(missing=[(14, 0), (15, 1), (16, 0)])
    settings = VEMSettings(n_iter=20, init_iter=10, init_subseq_len=10, temperature=0.001)
    result = track(det, det[:, 0], KalmanDynamics(accel_std_ratio=0.005), settings)
    mota, idf1 = mota_idf1(gt, result.tracks)
    assert idf1 == 1.0 and mota == 1.0
    assert np.abs(result.tracks.numpy() - gt).max() < 10.0


def test_kalman_smoother_interpolates_a_missing_frame_on_a_line():
    # positions 0, 1, 2, _, 4 observed precisely: the smoother puts frame 3 at 3
    obs = torch.tensor([0.0, 1.0, 2.0, 0.0, 4.0], dtype=torch.float64)
    prec = torch.tensor([1e6, 1e6, 1e6, 0.0, 1e6])[:, None, None]
    mean, var = kalman_smoother(prec, (prec[:, 0, 0] * obs)[:, None, None], torch.zeros(1, 1), torch.full((1, 1), 1e-5),
                                torch.full((1, 1), 1e-3), torch.ones(1, 1))
    np.testing.assert_allclose(mean[:, 0, 0], [0, 1, 2, 3, 4], atol=1e-3)
    assert var[3, 0, 0] > var[2, 0, 0]


# ----------------------------------------------------------------------------- bad inputs


def test_frame_without_detections_fewer_and_degenerate_boxes_stay_finite():
    gt = walkers(B=2, T=20, N=3)
    det = shuffle(gt.copy())
    det[:, 7] = np.nan                                                 # a frame with no detection at all
    det[0, 10, 1] = np.nan                                             # fewer detections than sources
    det[1, 12, 0] = [50.0, 50.0, 50.0, 90.0]                           # zero width
    det[1, 13, 2] = [90.0, 90.0, 50.0, 50.0]                           # inverted
    for dynamics in (SRNNDynamics(tiny_srnn()), KalmanDynamics()):
        result = track(det, gt[:, 0], dynamics)
        assert torch.isfinite(result.tracks).all() and torch.isfinite(result.var).all()
        assert torch.all(result.eta[:, 7] == 0)
        assert torch.all(result.eta[1, 12, 0] == 0) and torch.all(result.eta[1, 13, 2] == 0)
    # the degenerate boxes are skipped exactly like missing ones
    det_nan = det.copy()
    det_nan[1, 12, 0] = det_nan[1, 13, 2] = np.nan
    a, b = track(det, gt[:, 0], KalmanDynamics()), track(det_nan, gt[:, 0], KalmanDynamics())
    torch.testing.assert_close(a.tracks, b.tracks)


def test_more_detections_than_sources_with_a_clutter_class():
    gt = walkers(B=2, T=20, N=2)
    rng = np.random.default_rng(5)
    clutter = boxes(rng.uniform(0, 1800, (2, 20, 2)), rng.uniform(0, 900, (2, 20, 2)))
    det = shuffle(np.concatenate([gt, clutter], 2))                     # K = 4 > N = 2
    init = gt[:, 0]
    settings = VEMSettings(n_iter=5, init_iter=3, init_subseq_len=10, clutter_logprob=-20.0, temperature=1.0)
    result = track(det, init, KalmanDynamics(), settings)
    assert result.eta.shape == (2, 20, 4, 3)
    assert mota_idf1(gt, result.tracks) == (1.0, 1.0)
    is_clutter = np.isin(det[..., 0], clutter[..., 0])
    assert (result.eta[..., 2].numpy()[is_clutter] > 0.99).all()


def test_update_phi_and_image_size_normalisation_run_and_agree_on_clean_data():
    gt = walkers(B=2, T=16, N=3)
    det = shuffle(gt)
    settings = VEMSettings(n_iter=3, init_iter=2, init_subseq_len=8, update_phi=True, normalize="image_size")
    result = run_vem(torch.tensor(det, dtype=torch.float32), None, torch.tensor(gt[:, 0], dtype=torch.float32),
                     KalmanDynamics(), settings, image_size=torch.tensor([[1920.0, 1080.0]] * 2))
    np.testing.assert_allclose(result.tracks.numpy(), gt, atol=0.1)
    obs = torch.rand(3, 4, 2, 1)
    mask = torch.tensor([[[True], [False]]] * 3)
    m = torch.rand(3, 4, 1, 1)
    phi = torch.full((3, 4, 2, 1), 1e-3)
    eta = torch.tensor([[[[1.0]], [[0.0]]]] * 3)
    new = update_observation_variance(eta, obs, mask, m, torch.full_like(m, 1e-6), phi)
    np.testing.assert_allclose(new[:, :, 0], ((obs[:, :, 0] - m[:, :, 0]) ** 2 + 1e-6).clamp_min(1e-8), rtol=1e-5)
    assert torch.all(new[:, :, 1] == 1e-3)                             # missing: unchanged


def test_finetuning_works_on_a_copy_and_never_leaks_across_batches():
    model = tiny_srnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gt = walkers(B=2, T=12, N=2)
    dynamics = SRNNDynamics(model, finetune=True, lr=0.01)
    settings = VEMSettings(n_iter=3, init_iter=1, init_subseq_len=12)
    torch.manual_seed(0)
    first = track(gt, gt[:, 0], dynamics, settings)
    torch.manual_seed(0)
    second = track(gt, gt[:, 0], dynamics, settings)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    torch.testing.assert_close(first.tracks, second.tracks)
    assert torch.isfinite(first.elbo["dvae_loss"]).all()


def test_kalman_filter_mode_is_causal_and_smoother_is_not():
    """KF-VEM filter: the estimate at frame t uses observations up to t only; the smoother looks ahead."""
    T, D, M = 12, 4, 3
    gen = torch.Generator().manual_seed(0)
    prec = torch.full((T, D, M), 100.0)
    info = prec * torch.randn(T, D, M, generator=gen)
    start, start_var = info[0] / prec[0], torch.full((D, M), 1e-2)
    std = torch.full((D, M), 0.1)
    later = info.clone()
    later[8:] += 5.0                                                 # change every observation from frame 8 on
    f_a, _ = kalman_smoother(prec, info, start, start_var, std, std, smooth=False)
    f_b, _ = kalman_smoother(prec, later, start, start_var, std, std, smooth=False)
    s_a, _ = kalman_smoother(prec, info, start, start_var, std, std)
    s_b, _ = kalman_smoother(prec, later, start, start_var, std, std)
    assert torch.equal(f_a[:8], f_b[:8]) and not torch.allclose(f_a[8:], f_b[8:])
    assert not torch.allclose(s_a[:8], s_b[:8])
    assert torch.allclose(f_a[-1], s_a[-1], atol=1e-5)               # both end on the same last-frame posterior


@pytest.mark.parametrize(("dynamics", "causal"),
                         [(lambda: SRNNDynamics(tiny_srnn(increments=True), z_mode="mean"), True),
                          (lambda: SRNNDynamics(tiny_srnn(increments=True, backward_g=True), z_mode="mean"), False),
                          (lambda: KalmanDynamics(smooth=False), True), (lambda: KalmanDynamics(smooth=True), False)],
                         ids=["mixdvae-causal", "mixdvae-noncausal", "kf-filter", "kf-smoother"])
def test_tracks_before_a_change_of_the_future_detections_move_only_when_non_causal(dynamics, causal):
    """§4/§7: with the reference encoder g_t = [h_t, x_t] MixDVAE is a learned filter — shifting every detection
    from frame 16 on leaves frames 0..15 unchanged, as for the KF-VEM filter; a backward inference RNN (like
    the RTS smoother) lets the future move the past."""
    gt = walkers(B=2, T=24)
    det = shuffle(gt)
    later = det.copy()
    later[:, 16:] += 25.0
    settings = VEMSettings(n_iter=3, init_iter=2, init_subseq_len=8)
    a, b = track(det, gt[:, 0], dynamics(), settings).tracks, track(later, gt[:, 0], dynamics(), settings).tracks
    moved = (a[:, :16] - b[:, :16]).abs().max().item()
    assert (moved == 0.0) if causal else (moved > 1e-3), moved
    assert (a[:, 16:] - b[:, 16:]).abs().max() > 1.0


# ----------------------------------------------------------------------------- convergence stopping


@pytest.mark.parametrize("kind", ["dvae", "kalman"])
def test_converged_samples_leave_the_batch_without_changing_any_result(kind):
    """With a tolerance, samples converge after different numbers of iterations and are dropped from the
    batch; every sample's tracks, eta, per-iteration tracks and ELBO terms equal those it gets alone
    (deterministic z), a finished sample's per-iteration rows stay constant, and tol = 0 runs every
    iteration."""
    gt = walkers(B=4, T=20)
    noise = np.random.default_rng(1).normal(0, 3.0, gt.shape) * np.array([1, 5, 10, 20])[:, None, None, None]
    det = shuffle(gt + noise)                                          # noisier samples take longer

    def dynamics():
        return SRNNDynamics(tiny_srnn(), z_mode="mean") if kind == "dvae" else KalmanDynamics()

    settings = VEMSettings(n_iter=12, init_iter=4, init_subseq_len=7, tol=1e-4, temperature=0.001,
                           save_all_iters=True)
    batched = track(det, gt[:, 0], dynamics(), settings)
    assert batched.iterations.shape == (4,) and len(set(batched.iterations.tolist())) > 1
    for b in range(4):
        alone = track(det[b:b + 1], gt[b:b + 1, 0], dynamics(), settings)
        assert int(alone.iterations[0]) == int(batched.iterations[b])
        torch.testing.assert_close(alone.tracks[0], batched.tracks[b], atol=1e-3, rtol=1e-5)
        torch.testing.assert_close(alone.eta[0], batched.eta[b], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(alone.iter_tracks[:, 0], batched.iter_tracks[:, b], atol=1e-3, rtol=1e-5)
        stop = int(batched.iterations[b])
        assert (batched.iter_tracks[stop:, b] == batched.iter_tracks[stop, b]).all()
        for k, v in batched.elbo.items():
            if k != "dvae_loss":                                       # a batch mean, not per sample
                torch.testing.assert_close(alone.elbo[k][:, 0], v[:, b], atol=1e-2, rtol=1e-4)
    fixed = track(det, gt[:, 0], dynamics(), replace(settings, tol=0.0))
    assert (fixed.iterations == 12).all()


@pytest.mark.parametrize("kind", ["dvae", "kalman"])
def test_dvae_loss_every_k_computes_it_at_one_every_kth_and_the_last_and_carries_it_between(kind):
    """[VEM] dvae_loss_every = k: the ELBO's DVAE-loss term (one extra DVAE pass) is computed at iterations 1, k,
    2k, ... and the last, with the values a run that computes it every iteration has there, and carried
    forward in between; the other terms and the tracks do not change."""
    gt = walkers(B=3, T=20)
    det = shuffle(gt + np.random.default_rng(2).normal(0, 4.0, gt.shape) * np.array([1, 5, 10])[:, None, None, None])

    def dynamics():
        return SRNNDynamics(tiny_srnn(), z_mode="mean") if kind == "dvae" else KalmanDynamics()

    settings = VEMSettings(n_iter=5, init_iter=0, init_subseq_len=20, temperature=0.001, save_all_iters=True,
                           dvae_loss_every=1)
    every = track(det, gt[:, 0], dynamics(), settings)
    sparse = track(det, gt[:, 0], dynamics(), replace(settings, dvae_loss_every=2))
    loss = every.elbo["dvae_loss"]
    for k, v in every.elbo.items():
        assert sparse.elbo[k].shape == (5, 3)
        if k != "dvae_loss":
            torch.testing.assert_close(sparse.elbo[k], v)
    torch.testing.assert_close(sparse.tracks, every.tracks)
    torch.testing.assert_close(sparse.iter_tracks, every.iter_tracks)
    if kind == "kalman":                                               # no DVAE: no loss at any iteration
        assert loss.isnan().all() and sparse.elbo["dvae_loss"].isnan().all()
        return
    assert (loss[1:3] != loss[0:2]).all()                              # the loss still moves: a wrong row shows
    computed, carried = [0, 1, 3, 4], [0, 1, 1, 3, 4]                  # iterations 1, 2, 4, 5; 3 carries 2
    torch.testing.assert_close(sparse.elbo["dvae_loss"][computed], loss[computed])
    torch.testing.assert_close(sparse.elbo["dvae_loss"], loss[carried])


@pytest.mark.parametrize("backward_g", [False, True])
def test_fast_srnn_samples_z_with_the_posterior_moments(backward_g):
    """With sample=True, z_1 of many copies of one sequence has the posterior mean and variance of (4.4),
    and the moments of z_T match those of SRNN.inference's own samples (the causal and the backward-LSTM
    encoder)."""
    model = tiny_srnn(3, increments=True, backward_g=backward_g)
    M, T = 20000, 6
    x = (0.3 + 0.4 * torch.rand(1, T, 4, generator=torch.Generator().manual_seed(5))).expand(M, T, 4)
    m = x.permute(1, 2, 0).contiguous()
    torch.manual_seed(0)
    with torch.no_grad():
        enc = FastSRNN(model).encode(m, sample=True)
        z_ref = model.inference(x, model.deterministic(x), sample=True)[0]
    z, mean, std = enc["z"], enc["z_mean"], torch.exp(0.5 * enc["z_logvar"])
    torch.testing.assert_close(z[0].mean(1), mean[0, :, 0], atol=4 * std[0, :, 0].max() / M**0.5, rtol=0)
    torch.testing.assert_close(z[0].std(1), std[0, :, 0], atol=0, rtol=0.05)
    torch.testing.assert_close(z[-1].mean(1), z_ref[:, -1].mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(z[-1].std(1), z_ref[:, -1].std(0), atol=0, rtol=0.05)
