"""Specification of the SRNN DVAE (§4): shapes of both heads and both inference variants, the
data/feature mapping, the one-step API the VEM uses, scheduled sampling, gradients."""

import pytest
import torch
from torch import nn

from model.srnn import LOG_EPS, SRNN, mlp

B, T, Z, H = 3, 6, 2, 8


def make_srnn(head="gaussian", x_dim=4, backward_g=False, dense=(8,), seed=0, increments=False,
              velocity=False) -> SRNN:
    """Tiny SRNN; ``backward_g`` selects the backward-LSTM inference network (dim_RNN_g > 0)."""
    torch.manual_seed(seed)
    dense = list(dense)
    return SRNN(x_dim=x_dim, z_dim=Z, dense_x_h=dense, dim_RNN_h=H, num_RNN_h=1, dense_hz_z=dense,
                dense_hz_x=dense, dense_gz_z=dense, dense_hx_g=dense if backward_g else [],
                dim_RNN_g=5 if backward_g else 0, head=head, increments=increments, velocity=velocity)


def make_x(head="gaussian", x_dim=4, seed=1) -> torch.Tensor:
    """(B, T, x_dim) data: boxes-like coordinates in [0, 1] or power spectra (>= 0, some silent bins)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(B, T, x_dim, generator=gen)
    if head == "is":
        x = x**4 * (torch.rand(B, T, x_dim, generator=gen) > 0.1)
    return x


VARIANTS = [pytest.param(head, x_dim, g, id=f"{head}-D{x_dim}-{'backward_lstm' if g else 'h_x'}")
            for head, x_dim in (("gaussian", 4), ("is", 513)) for g in (False, True)]


@pytest.mark.parametrize(("head", "x_dim", "backward_g"), VARIANTS)
def test_forward_shapes(head, x_dim, backward_g):
    model = make_srnn(head, x_dim, backward_g)
    fwd = model(make_x(head, x_dim))
    assert len(fwd["out"]) == (2 if head == "gaussian" else 1)
    for out in fwd["out"]:
        assert out.shape == (B, T, x_dim)
    for key in ("z", "z_mean", "z_logvar", "p_mean", "p_logvar"):
        assert fwd[key].shape == (B, T, Z), key
    total, recon, kl = model.loss(make_x(head, x_dim), fwd, beta=1.0)
    assert total.shape == recon.shape == kl.shape == ()
    assert torch.isfinite(total) and kl >= 0


@pytest.mark.parametrize(("head", "x_dim", "backward_g"), VARIANTS)
def test_encode_reconstruct_and_step_shapes(head, x_dim, backward_g):
    model = make_srnn(head, x_dim, backward_g)
    x = make_x(head, x_dim)
    assert model.encode(x).shape == (B, T, Z)
    rec = model.reconstruct(x)
    params, state = model.step(None, torch.zeros(B, Z))
    params, state = model.step(x[:, 0], torch.zeros(B, Z), state)
    assert len(rec) == len(params) == (2 if head == "gaussian" else 1)
    assert all(r.shape == (B, T, x_dim) for r in rec)
    assert all(p.shape == (B, x_dim) for p in params)
    assert all((v > 0).all() for v in (rec[1:] if head == "gaussian" else rec))  # variances


def test_inference_input_without_dim_rnn_g_is_h_and_x():
    """No dim_RNN_g: g_t = [h_t, x_t], so the inference MLP reads H + D + Z values and there is no g LSTM."""
    model = make_srnn(backward_g=False)
    assert model.rnn_g is None
    assert model.mlp_gz_z[0].in_features == H + 4 + Z


def test_inference_with_dim_rnn_g_is_a_backward_lstm():
    model = make_srnn(backward_g=True)
    assert isinstance(model.rnn_g, nn.LSTM) and model.rnn_g.hidden_size == 5
    assert model.mlp_gz_z[0].in_features == 5 + Z


@pytest.mark.parametrize("backward_g", [False, True])
def test_posterior_sees_the_future_only_with_the_backward_lstm(backward_g):
    """Changing the last frame moves z_1 only when g_t summarises x_{t:T} (backward LSTM)."""
    model = make_srnn(backward_g=backward_g)
    x = make_x()
    x2 = x.clone()
    x2[:, -1] += 0.5
    z, z2 = model.encode(x, sample=False), model.encode(x2, sample=False)
    past_unchanged = torch.allclose(z[:, :-1], z2[:, :-1])
    assert past_unchanged == (not backward_g)
    assert not torch.allclose(z[:, -1], z2[:, -1])


def test_empty_dense_lists_are_identity():
    layers, out_dim = mlp(5, [], "tanh", 0.0)
    assert isinstance(layers, nn.Identity) and out_dim == 5
    model = make_srnn(dense=())
    assert isinstance(model.mlp_x_h, nn.Identity) and model.rnn_h.input_size == 4
    assert model.gen_out.in_features == H + Z
    assert model(make_x())["z"].shape == (B, T, Z)


def test_mlp_layers():
    layers, out_dim = mlp(5, [7, 3], "relu", 0.2)
    kinds = [type(m) for m in layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout] and out_dim == 3
    assert layers(torch.zeros(2, 5)).shape == (2, 3)


def test_unknown_head_is_rejected():
    with pytest.raises(ValueError, match="head"):
        make_srnn(head="laplace")


def test_features_and_data_mapping():
    """Inputs are standardised (log-power for IS); decoder outputs are mapped back to data space."""
    mean, std = torch.tensor([0.5, 0.4, 0.6, 0.7]), torch.tensor([0.1, 0.2, 0.1, 0.3])
    gauss = make_srnn()
    gauss.set_feature_stats(mean, std)
    x = torch.tensor([0.6, 0.0, 0.6, 1.0])
    assert torch.allclose(gauss.features(x), torch.tensor([1.0, -2.0, 0.0, 1.0]))
    m, var = gauss.to_data((torch.ones(4), torch.zeros(4)))   # feature mean 1, log-variance 0
    assert torch.allclose(m, mean + std) and torch.allclose(var, std**2)

    is_model = make_srnn("is", x_dim=2)
    is_model.set_feature_stats(torch.tensor([-1.0, 0.0]), torch.tensor([2.0, 1.0]))
    power = torch.tensor([1.0, 0.0])                           # a silent bin stays finite
    feat = is_model.features(power)
    assert torch.allclose(feat, torch.tensor([0.5, torch.log(torch.tensor(LOG_EPS)).item()]))
    (v,) = is_model.to_data((torch.tensor([0.5, 1.0]),))
    assert torch.allclose(v, torch.exp(torch.tensor([0.0, 1.0])))


@pytest.mark.parametrize("head", ["gaussian", "is"])
def test_step_reproduces_the_teacher_forced_sequence(head):
    """Running (4.1)+(4.3) one step at a time on x_{t-1} gives the same decoder output as the
    whole-sequence pass (the VEM relies on this)."""
    model = make_srnn(head, x_dim=4, backward_g=True)
    x = make_x(head)
    z = model.encode(x, sample=False)
    expected = model.reconstruct(x)
    state, steps = None, []
    for t in range(T):
        params, state = model.step(x[:, t - 1] if t else None, z[:, t], state)
        steps.append(params)
    for i, ref in enumerate(expected):
        assert torch.allclose(torch.stack([p[i] for p in steps], 1), ref, atol=1e-5)


def test_encode_is_deterministic_with_the_posterior_mean_and_random_when_sampling():
    model = make_srnn()
    x = make_x()
    assert torch.equal(model.encode(x, sample=False), model.encode(x, sample=False))
    assert not torch.equal(model.encode(x), model.encode(x))


def test_scheduled_sampling_at_zero_is_teacher_forcing():
    model = make_srnn()
    x = make_x()
    teacher = model(x, ss_prob=0.0, sample_z=False)
    h = model.deterministic(x)
    assert torch.allclose(teacher["out"][0], model.generate(h, model.inference(x, h, sample=False)[0])[0])


@pytest.mark.parametrize(("head", "backward_g", "increments"),
                         [("gaussian", False, False), ("gaussian", True, False), ("gaussian", False, True),
                          ("is", True, False)])
def test_step_by_step_pass_without_sampling_equals_the_whole_sequence_pass(head, backward_g, increments):
    """The step-by-step recurrence (used for scheduled sampling) fed the true x is the teacher-forced pass."""
    model = make_srnn(head, backward_g=backward_g, increments=increments)
    x = make_x(head)
    whole, steps = model(x, sample_z=False), model.unroll(x, ss_prob=0.0, sample_z=False)
    for a, b in zip(whole["out"], steps["out"]):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(model.loss(x, whole, 1.0)[0], model.loss(x, steps, 1.0)[0], atol=1e-5)


@pytest.mark.parametrize("increments", [False, True])
def test_scheduled_sampling_at_one_with_z_given_is_a_free_running_decode(increments):
    """§4: x̂_{t-1} is the decoder output of step t-1 of the same pass, so with probability 1 and z given the
    training recurrence is exactly the generative model run on its own outputs (the VEM's regime)."""
    model = make_srnn(increments=increments)
    x = make_x()
    z = torch.randn(B, T, Z, generator=torch.Generator().manual_seed(3))
    driven = model(x, ss_prob=1.0, z=z)
    state, x_prev, free = None, None, []
    for t in range(T):
        (mean, _), state = model.step(x_prev, z[:, t], state)
        free.append(mean)
        x_prev = mean
    free = torch.stack(free, 1)
    assert torch.allclose(driven["x_in"], free, atol=1e-5)
    anchor, scale = model.output_frame(driven["x_in"])
    assert torch.allclose(model.to_data(driven["out"], anchor, scale)[0], free, atol=1e-5)
    assert not torch.allclose(free, model.reconstruct(x)[0], atol=1e-3)  # not the teacher-forced answer


def test_scheduled_sampling_mixes_true_and_own_inputs():
    model = make_srnn()
    x = make_x()
    torch.manual_seed(0)
    half = model(x, ss_prob=0.5)
    is_true = (half["x_in"] == x).all(-1)
    assert half["out"][0].shape == (B, T, 4) and torch.isfinite(half["out"][0]).all()
    assert is_true.any() and (~is_true).any()


def test_increments_anchor_the_mean_at_the_previous_input():
    """increments: data mean = x_{t-1} + delta_std * out (frame 1: feat_mean + feat_std * out), and the
    recurrence / encoder inputs carry the standardised increment."""
    model = make_srnn(increments=True)
    model.set_feature_stats(torch.full((4,), 0.5), torch.full((4,), 0.2), torch.full((4,), 0.01))
    assert model.rnn_h.input_size == 8 and model.mlp_gz_z[0].in_features == H + 8 + Z
    x = make_x()
    anchor, scale = model.output_frame(x)
    assert torch.equal(anchor[:, 1:], x[:, :-1]) and torch.allclose(anchor[:, 0], torch.full((B, 4), 0.5))
    assert torch.allclose(scale[:, 1:], torch.full((B, T - 1, 4), 0.01))
    assert torch.allclose(scale[:, 0], torch.tensor(0.2))
    feats = model.input_features_seq(x)
    assert torch.allclose(feats[:, 1:, 4:], (x[:, 1:] - x[:, :-1]) / 0.01)
    assert torch.equal(feats[:, 0, 4:], torch.zeros(B, 4))
    with pytest.raises(ValueError, match="Gaussian"):
        make_srnn("is", increments=True)


def test_the_velocity_anchor_extrapolates_the_inputs_at_constant_velocity():
    """velocity: frame t > 2 is anchored at 2 x_{t-1} - x_{t-2} (frame 2 at x_1, frame 1 as without increments),
    in the whole-sequence frame and in the one-step API alike; so a decoder that outputs 0 free-runs in a
    straight line."""
    model = make_srnn(increments=True, velocity=True)
    model.set_feature_stats(torch.full((4,), 0.5), torch.full((4,), 0.2), torch.full((4,), 0.01))
    x = make_x()
    anchor, scale = model.output_frame(x)
    assert torch.allclose(anchor[:, 2:], 2 * x[:, 1:-1] - x[:, :-2]) and torch.equal(anchor[:, 1], x[:, 0])
    assert torch.allclose(scale[:, 1:], torch.full((B, T - 1, 4), 0.01))
    with torch.no_grad():
        model.gen_out.weight.zero_()
        model.gen_out.bias.zero_()
        z = torch.randn(B, T, Z)
        state, track = None, [x[:, 0], x[:, 0] + 0.003]
        for t in range(1, T):
            (mean, _), state = model.step(track[t - 1], z[:, t], state)
            if t >= 2:
                track.append(mean)
        line = x[:, :1] + 0.003 * torch.arange(T)[None, :, None]
        torch.testing.assert_close(torch.stack(track, 1), line, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="increments"):
        make_srnn(velocity=True)


@pytest.mark.parametrize("increments", [False, True])
def test_one_step_prediction_is_causal(increments):
    """predict(): frame t depends on x_{<t} only (no encoder)."""
    model = make_srnn(increments=increments)
    x = make_x()
    x2 = x.clone()
    x2[:, 3] += 0.5
    a, b = model.predict(x)[0], model.predict(x2)[0]
    assert torch.equal(a[:, :4], b[:, :4]) and not torch.allclose(a[:, 4:], b[:, 4:])


def test_log_variances_are_bounded_so_extreme_inputs_stay_finite():
    model = make_srnn()
    with torch.no_grad():
        for layer in (model.gen_logvar, model.inf_logvar, model.prior_logvar):
            layer.bias.fill_(1e4)
    x = make_x() * 1e6
    fwd = model(x)
    assert all(torch.isfinite(t).all() for t in (*fwd["out"], fwd["z"], fwd["p_logvar"]))
    assert torch.isfinite(model.to_data(fwd["out"])[1]).all() and (model.to_data(fwd["out"])[1] > 0).all()
    assert torch.isfinite(model.loss(x, fwd, 1.0)[0])


@pytest.mark.parametrize(("head", "backward_g"), [("gaussian", False), ("is", True)])
def test_gradients_reach_every_parameter(head, backward_g):
    model = make_srnn(head, x_dim=6, backward_g=backward_g)
    x = make_x(head, 6)
    total, _, _ = model.loss(x, model(x, ss_prob=0.5), beta=1.0)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_loss_weights_the_kl_by_beta_and_the_warmup():
    model = make_srnn()
    x = make_x()
    fwd = model(x)
    total, recon, kl = model.loss(x, fwd, beta=0.5, kl_weight=0.4)
    assert torch.allclose(total, recon + 0.2 * kl)
    assert torch.allclose(model.loss(x, fwd, beta=0.5, kl_weight=0.0)[0], recon)


def test_gap_masks_are_single_runs_of_the_asked_length_after_two_frames():
    from model.srnn import gap_mask
    gaps = gap_mask(500, 60, 0.5, (8, 15), torch.Generator().manual_seed(0))
    lengths = gaps.sum(1)
    assert 0.4 < (lengths > 0).float().mean() < 0.6                     # about half the sequences
    assert lengths[lengths > 0].min() >= 8 and lengths.max() <= 15
    assert not gaps[:, :2].any()                                          # two frames of history first
    starts = gaps.int().diff(dim=1).clamp_min(0).sum(1)                   # one run per sequence at most
    assert starts.max() <= 1


def test_a_gap_runs_the_generative_model_on_its_own_outputs_with_a_zero_kl():
    """Inside a gap the frame is a missed target: z_t from the prior mean (no sampling), the recurrence
    driven by x̂_t, no KL; outside it, teacher forcing as without gaps."""
    model = make_srnn(increments=True)
    x = make_x()
    gaps = torch.zeros(B, T, dtype=torch.bool)
    gaps[0, 2:5] = True
    fwd = model(x, sample_z=False, gaps=gaps)
    plain = model(x, sample_z=False)
    assert torch.allclose(fwd["out"][0][1:, :], plain["out"][0][1:, :], atol=1e-5)   # other sequences unchanged
    assert torch.allclose(fwd["out"][0][0, :2], plain["out"][0][0, :2], atol=1e-5)   # before the gap, too
    assert torch.allclose(fwd["z_mean"][0, 2:5], fwd["p_mean"][0, 2:5], atol=1e-6)
    assert torch.allclose(fwd["z_logvar"][0, 2:5], fwd["p_logvar"][0, 2:5], atol=1e-6)
    assert torch.allclose(fwd["x_in"][0, 2:5], model.to_data(fwd["out"], *model.output_frame(fwd["x_in"]))[0][0, 2:5])
    assert torch.equal(fwd["x_in"][0, 5:], x[0, 5:])
    # the step-by-step generative model, fed x until the gap then its own means with prior-mean z
    state, x_prev, z_prev = None, None, torch.zeros(1, Z)
    for t in range(5):
        h = model._h_step(x_prev, None if state is None else state[1], None if state is None else state[0], 1, x)[0]
        if t < 2:
            z_t = model.posterior_step(torch.cat([h, model.input_features(x[:1, t], x_prev)], -1), z_prev, False)[0]
        else:
            z_t = model.prior_mean(model.mlp_hz_z(torch.cat([h, z_prev], -1)))
        (mean, _), state = model.step(x_prev, z_t, state)
        x_prev, z_prev = (x[:1, t] if t < 2 else mean), z_t
    assert torch.allclose(mean, fwd["x_in"][:1, 4], atol=1e-5)


def test_gaps_need_the_causal_encoder():
    model = make_srnn(backward_g=True)
    with pytest.raises(ValueError, match="causal encoder"):
        model(make_x(), gaps=torch.ones(B, T, dtype=torch.bool))
