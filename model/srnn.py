"""The SRNN dynamical VAE (docs/method.md §4): one class, a Gaussian head (tracking) and an
Itakura–Saito head (audio power spectra).

Notation (shapes use B = batch, T = time, D = x_dim, Z = z_dim, H = dim_RNN_h):

- (4.1) ``h_t = LSTM(phi_x(x_{t-1}), h_{t-1})``, x_0 = 0          -> :meth:`SRNN.deterministic`, :meth:`SRNN.step`
- (4.2) ``p(z_t | h_t, z_{t-1}) = N(mu_p, sigma_p^2)``             -> :meth:`SRNN.prior`
- (4.3) ``p(x_t | h_t, z_t)``: Gaussian N(mu, sigma^2) or N_c(0, v)  -> :meth:`SRNN.generate`, :meth:`SRNN.to_data`
- (4.4) ``q(z_t | z_{t-1}, g_t)``, g_t = [h_t, x_t] or backward LSTM -> :meth:`SRNN.inference`
- (4.5) loss = reconstruction + beta * KL                          -> :meth:`SRNN.loss`
- scheduled sampling, step by step (§4)                           -> :meth:`SRNN.unroll`
- free-running gaps (beyond the paper: a missed target's run)      -> :func:`gap_mask`, :meth:`SRNN.unroll`

Inputs are turned into *features* before entering the networks: standardised
coordinates (Gaussian head) or standardised log-power (IS head), with statistics stored
as buffers (saved in the checkpoint). Decoder outputs are mapped back to data space by
:meth:`SRNN.to_data`, so the VEM works in image-normalised coordinates / power.

**Increments** (``increments=True``, Gaussian head only; beyond the reference network): the
recurrence input and the encoder input also carry the standardised increment
``(x_t - x_{t-1}) / delta_std``, and the decoder mean is ``mu_t = x_{t-1} + delta_std * out``
(frame 1: ``feat_mean + feat_std * out`` as without increments). Positions are ~200 increments
wide, so a small network that predicts absolute standardised coordinates has a precision floor of
several pixels; predicting the increment removes it.

**Velocity anchor** (``velocity=True``, needs ``increments``; beyond the reference network): from frame 3 on the
decoder mean is anchored at the constant-velocity extrapolation of the inputs that drove the recurrence,
``mu_t = 2 x_{t-1} - x_{t-2} + delta_std * out`` (frame 2: ``x_1 + delta_std * out``), so the network predicts
the deviation from constant velocity. A small network that must pass the increment through its LSTM cannot
reproduce constant velocity to better than a few pixels (README, Tracking, round 9: 1.6 px clean one-step error
against 0.13 px for constant velocity), and the error doubles when the data's frame rate halves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from model.losses import gaussian_nll, is_divergence, kl_gaussians

HEADS = ("gaussian", "is")
LOG_EPS = 1e-10      # floor for log-power features; power is >= 0
LOGVAR_BOUND = 30.0  # every Gaussian log-variance (prior, posterior, decoder) is clamped to +-this: NaN-safety


def mlp(in_dim: int, sizes: Sequence[int], activation: str, dropout_p: float) -> tuple[nn.Module, int]:
    """Dense layers ``sizes`` with activation and dropout; empty ``sizes`` = identity."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_dim, size), act()]
        if dropout_p > 0:
            layers.append(nn.Dropout(dropout_p))
        in_dim = size
    return (nn.Sequential(*layers) if layers else nn.Identity()), in_dim


def bound_logvar(logvar: Tensor) -> Tensor:
    """Clamp a log-variance to [-LOGVAR_BOUND, LOGVAR_BOUND] so variances are never 0 or inf."""
    return logvar.clamp(-LOGVAR_BOUND, LOGVAR_BOUND)


def gap_mask(batch: int, T: int, prob: float, lengths: tuple[int, int], generator: torch.Generator | None = None
             ) -> Tensor:
    """Free-running gaps for training: each sequence, with probability ``prob``, gets one run of L frames,
    L uniform in ``lengths`` (inclusive), starting uniformly in [2, T - L] (so two frames precede it).

    Shape: -> (batch, T) bool, True inside the gap. L is clipped to T - 2.
    """
    lo, hi = (min(v, T - 2) for v in lengths)
    has = torch.rand(batch, generator=generator) < prob
    length = torch.randint(lo, hi + 1, (batch,), generator=generator)
    start = 2 + (torch.rand(batch, generator=generator) * (T - 2 - length + 1)).long()
    t = torch.arange(T)
    return has[:, None] & (t >= start[:, None]) & (t < (start + length)[:, None])


class SRNN(nn.Module):
    """Stochastic recurrent neural network (Fraccaro et al., 2016) as used by MixDVAE."""

    def __init__(self, x_dim: int, z_dim: int, dense_x_h: Sequence[int], dim_RNN_h: int, num_RNN_h: int,
                 dense_hz_z: Sequence[int], dense_hz_x: Sequence[int], dense_gz_z: Sequence[int],
                 dense_hx_g: Sequence[int] = (), dim_RNN_g: int = 0, num_RNN_g: int = 1,
                 activation: str = "tanh", dropout_p: float = 0.0, head: str = "gaussian",
                 increments: bool = False, velocity: bool = False):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if increments and head != "gaussian":
            raise ValueError("increments = True needs the Gaussian head")
        if velocity and not increments:
            raise ValueError("velocity = True needs increments = True")
        self.x_dim, self.z_dim, self.head, self.increments = x_dim, z_dim, head, increments
        self.velocity = velocity
        self.register_buffer("feat_mean", torch.zeros(x_dim))
        self.register_buffer("feat_std", torch.ones(x_dim))
        self.register_buffer("delta_std", torch.ones(x_dim))
        x_in = 2 * x_dim if increments else x_dim             # features of x (and of its increment)
        # (4.1) deterministic recurrence
        self.mlp_x_h, dx = mlp(x_in, dense_x_h, activation, dropout_p)
        self.rnn_h = nn.LSTM(dx, dim_RNN_h, num_RNN_h, batch_first=True)
        # (4.4) inference network input g_t
        if dim_RNN_g > 0:
            self.mlp_hx_g, dg_in = mlp(dim_RNN_h + x_in, dense_hx_g, activation, dropout_p)
            self.rnn_g: nn.LSTM | None = nn.LSTM(dg_in, dim_RNN_g, num_RNN_g, batch_first=True)
            g_dim = dim_RNN_g
        else:
            self.mlp_hx_g, self.rnn_g, g_dim = nn.Identity(), None, dim_RNN_h + x_in
        self.mlp_gz_z, d = mlp(g_dim + z_dim, dense_gz_z, activation, dropout_p)
        self.inf_mean, self.inf_logvar = nn.Linear(d, z_dim), nn.Linear(d, z_dim)
        # (4.2) prior
        self.mlp_hz_z, d = mlp(dim_RNN_h + z_dim, dense_hz_z, activation, dropout_p)
        self.prior_mean, self.prior_logvar = nn.Linear(d, z_dim), nn.Linear(d, z_dim)
        # (4.3) generation
        self.mlp_hz_x, d = mlp(dim_RNN_h + z_dim, dense_hz_x, activation, dropout_p)
        self.gen_out = nn.Linear(d, x_dim)                     # mean (gaussian) or log-variance (is)
        self.gen_logvar = nn.Linear(d, x_dim) if head == "gaussian" else None

    # ----------------------------------------------------------------- features
    def features(self, x: Tensor) -> Tensor:
        """Standardised data ``x`` (..., D): coordinates, or log-power for the IS head."""
        if self.head == "is":
            x = torch.log(x.clamp_min(0) + LOG_EPS)
        return (x - self.feat_mean) / self.feat_std

    def input_features(self, x: Tensor, x_prev: Tensor | None = None) -> Tensor:
        """Network input features of x_t (..., D): :meth:`features`, and with ``increments`` also the
        standardised increment (x_t - x_prev) / delta_std (zero when ``x_prev`` is None) -> (..., D or 2D)."""
        feat = self.features(x)
        if not self.increments:
            return feat
        inc = torch.zeros_like(x) if x_prev is None else (x - x_prev) / self.delta_std
        return torch.cat([feat, inc], dim=-1)

    def input_features_seq(self, x: Tensor) -> Tensor:
        """:meth:`input_features` of every frame of x (B, T, D), each with its predecessor -> (B, T, D or 2D)."""
        prev = torch.cat([x[:, :1], x[:, :-1]], dim=1) if self.increments else None
        return self.input_features(x, prev)

    def set_feature_stats(self, mean: Tensor, std: Tensor, delta_std: Tensor | None = None) -> None:
        """Store the training-set feature statistics (D,) used by :meth:`features` (and increment std)."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-6))
        if delta_std is not None:
            self.delta_std.copy_(delta_std.clamp_min(1e-8))

    def output_frame(self, x_in: Tensor) -> tuple[Tensor, Tensor]:
        """Where the Gaussian decoder's standardised output lives: data = anchor + scale * out.

        Without increments: (feat_mean, feat_std). With increments, frame t > 1 is anchored at the value
        x_in_{t-1} that drove the recurrence, scale delta_std; frame 1 as without increments. With ``velocity``,
        frame t > 2 is anchored at 2 x_in_{t-1} - x_in_{t-2} instead.
        Shape: x_in (B, T, D) -> anchor, scale broadcastable to (B, T, D).
        """
        if not self.increments:
            return self.feat_mean, self.feat_std
        anchor = torch.cat([self.feat_mean.expand_as(x_in[:, :1]), x_in[:, :-1]], dim=1)
        if self.velocity:
            anchor = torch.cat([anchor[:, :2], anchor[:, 2:] + x_in[:, 1:-1] - x_in[:, :-2]], dim=1)
        scale = torch.cat([self.feat_std.expand_as(x_in[:, :1]), self.delta_std.expand_as(x_in[:, 1:])], dim=1)
        return anchor, scale

    # ----------------------------------------------------------------- (4.1)
    def deterministic(self, x: Tensor) -> Tensor:
        """(4.1) over a whole sequence, driven by ``x`` (B, T, D) -> h (B, T, H); x_0 = 0 (zero LSTM input)."""
        feat = self.mlp_x_h(self.input_features_seq(x))
        feat = torch.cat([torch.zeros_like(feat[:, :1]), feat[:, :-1]], dim=1)
        h, _ = self.rnn_h(feat)
        return h

    def _h_step(self, x_prev: Tensor | None, x_prev2: Tensor | None, state, batch: int, like: Tensor):
        """One step of (4.1): h_t (B, H) and the new LSTM state, from x_{t-1} (None at t = 1)."""
        if x_prev is None:
            feat = like.new_zeros(batch, self.rnn_h.input_size)
        else:
            feat = self.mlp_x_h(self.input_features(x_prev, x_prev2))
        lstm = self.rnn_h
        if lstm.num_layers == 1:     # one cell call: about 30 % faster than a one-step nn.LSTM call on CPU
            h0, c0 = (feat.new_zeros(batch, lstm.hidden_size),) * 2 if state is None else (state[0][0], state[1][0])
            h, c = torch.lstm_cell(feat, (h0, c0), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0,
                                   lstm.bias_hh_l0)
            return h, (h[None], c[None])
        h, state = lstm(feat[:, None], state)
        return h[:, 0], state

    def step(self, x_prev: Tensor | None, z_t: Tensor, state=None):
        """One step of (4.1) then (4.3), for the VEM's time recursion.

        Args:
            x_prev: (B, D) previous source estimate in data space, or None at t = 1 (x_0 = 0).
            z_t: (B, Z) latent at time t.
            state: the state returned by the previous call (None at t = 1).
        Returns:
            (params, state): params as :meth:`to_data` for one frame — (mean, var) each (B, D) for
            the Gaussian head, (v,) (B, D) for the IS head.
        """
        lstm_state, x_prev2 = state if state is not None else (None, None)
        h, lstm_state = self._h_step(x_prev, x_prev2, lstm_state, z_t.shape[0], z_t)
        anchor, scale = self.frame_of_step(x_prev, x_prev2)
        return self.to_data(self.generate(h, z_t), anchor, scale), (lstm_state, x_prev)

    @staticmethod
    def state_h(state) -> Tensor:
        """h_t (B, H) of the last LSTM layer from a :meth:`step` state."""
        return state[0][0][-1]

    def frame_of_step(self, x_prev: Tensor | None, x_prev2: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """:meth:`output_frame` of one frame, from the inputs x_{t-1}, x_{t-2} (None before the sequence)."""
        if not self.increments or x_prev is None:
            return None, None
        if self.velocity and x_prev2 is not None:
            return 2 * x_prev - x_prev2, self.delta_std
        return x_prev, self.delta_std

    # ----------------------------------------------------------------- (4.4)
    def encoder_input(self, x: Tensor, h: Tensor) -> Tensor:
        """g_t of (4.4) for whole sequences: [h_t, x_t] features, or the backward LSTM over them.

        Shape: x (B, T, D), h (B, T, H) -> (B, T, G).
        """
        g = torch.cat([h, self.input_features_seq(x)], dim=-1)
        if self.rnn_g is not None:
            g, _ = self.rnn_g(torch.flip(self.mlp_hx_g(g), dims=[1]))  # backward LSTM over time
            g = torch.flip(g, dims=[1])
        return g

    def posterior_step(self, g_t: Tensor, z_prev: Tensor, sample: bool) -> tuple[Tensor, Tensor, Tensor]:
        """One step of (4.4): (z_t, mean, logvar) each (B, Z) from g_t (B, G) and z_{t-1} (B, Z)."""
        e = self.mlp_gz_z(torch.cat([g_t, z_prev], dim=-1))
        mean, logvar = self.inf_mean(e), bound_logvar(self.inf_logvar(e))
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return z, mean, logvar

    def inference(self, x: Tensor, h: Tensor, sample: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """(4.4) q(z_t | z_{t-1}, g_t), recursive over t.

        Shape: x (B, T, D), h (B, T, H) -> z, z_mean, z_logvar each (B, T, Z).
        ``sample=False`` propagates the posterior mean instead of a sample.
        """
        g = self.encoder_input(x, h)
        z_prev = g.new_zeros(g.shape[0], self.z_dim)
        zs, means, logvars = [], [], []
        for t in range(g.shape[1]):
            z_prev, mean, logvar = self.posterior_step(g[:, t], z_prev, sample)
            zs.append(z_prev)
            means.append(mean)
            logvars.append(logvar)
        return torch.stack(zs, 1), torch.stack(means, 1), torch.stack(logvars, 1)

    # ----------------------------------------------------------------- (4.2)
    def prior(self, h: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """(4.2) prior parameters, vectorised over time: h (B, T, H), z (B, T, Z) -> 2 x (B, T, Z)."""
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)
        e = self.mlp_hz_z(torch.cat([h, z_prev], dim=-1))
        return self.prior_mean(e), bound_logvar(self.prior_logvar(e))

    # ----------------------------------------------------------------- (4.3)
    def generate(self, h: Tensor, z: Tensor) -> tuple[Tensor, ...]:
        """(4.3) decoder, standardised: (mean_f, logvar_f) (Gaussian) or (logv_f,) (IS); shapes (..., D)."""
        e = self.mlp_hz_x(torch.cat([h, z], dim=-1))
        if self.head == "gaussian":
            return self.gen_out(e), bound_logvar(self.gen_logvar(e))
        return (self.gen_out(e),)

    def to_data(self, out: tuple[Tensor, ...], anchor: Tensor | None = None, scale: Tensor | None = None
                ) -> tuple[Tensor, ...]:
        """Map decoder outputs to data space: (mean, var) in coordinates, or (v,) power variance.

        Gaussian head: ``mean = anchor + scale * mean_f``, ``var = scale^2 exp(logvar_f)``; anchor and scale
        default to (feat_mean, feat_std) — see :meth:`output_frame` for increments.
        """
        if self.head == "gaussian":
            mean_f, logvar_f = out
            anchor = self.feat_mean if anchor is None else anchor
            scale = self.feat_std if scale is None else scale
            return mean_f * scale + anchor, torch.exp(logvar_f) * scale**2
        return (torch.exp(self.log_v(out[0])),)

    def log_v(self, logv_f: Tensor) -> Tensor:
        """IS head: log-variance in data space from the standardised decoder output."""
        return bound_logvar(logv_f * self.feat_std + self.feat_mean)

    # ----------------------------------------------------------------- passes
    def forward(self, x: Tensor, ss_prob: float = 0.0, sample_z: bool = True, z: Tensor | None = None,
                gaps: Tensor | None = None) -> dict[str, Tensor]:
        """Training pass (§4). ``ss_prob = 0``: teacher forcing, whole-sequence. ``ss_prob > 0`` or ``gaps``
        (B, T) bool (:func:`gap_mask`): step by step (:meth:`unroll`).

        Shape: x (B, T, D), optional given z (B, T, Z). Returns a dict of (B, T, ·) tensors: out (decoder
        outputs, standardised), z, z_mean, z_logvar, p_mean, p_logvar, x_in (what drove the recurrence).
        """
        if ss_prob > 0 or z is not None or (gaps is not None and bool(gaps.any())):
            return self.unroll(x, ss_prob, sample_z, z, gaps)
        h = self.deterministic(x)
        z, z_mean, z_logvar = self.inference(x, h, sample=sample_z)
        p_mean, p_logvar = self.prior(h, z)
        return {"out": self.generate(h, z), "z": z, "z_mean": z_mean, "z_logvar": z_logvar,
                "p_mean": p_mean, "p_logvar": p_logvar, "x_in": x}

    def unroll(self, x: Tensor, ss_prob: float, sample_z: bool = True, z: Tensor | None = None,
               gaps: Tensor | None = None) -> dict[str, Tensor]:
        """Scheduled sampling step by step (§4): at each frame, with probability ``ss_prob`` the recurrence
        (4.1) of the next frame is driven by this frame's own decoded mean x̂_t (data space, no gradient)
        instead of the true x_t, so the model is trained on its compounding errors, as in the VEM.

        z_t comes from (4.4): causal g_t = [h_t, x_t] with this pass's h_t; with the backward LSTM, g is
        computed once from a teacher-forced h (as the VEM's E-Z works on the previous estimates), and only
        z's recursion runs here. A given ``z`` (B, T, Z) skips inference (then z_mean/z_logvar = z/0).

        With ``ss_prob = 1`` and z given this is a free-running decode. Shape: as :meth:`forward`.

        ``gaps`` (B, T) bool: inside a gap the frame is treated as missed, as a target without detections
        in the VEM: the encoder is not used, z_t comes from the prior (4.2) (sampled, or its mean), so the
        KL term is 0 there, and the recurrence is driven by x̂_t. The reconstruction term still scores x_t,
        so the model learns to extrapolate over the gap. Causal encoder only.
        """
        B, T, _ = x.shape
        use_hat = torch.rand(B, T, device=x.device) < ss_prob
        if gaps is not None:
            if self.rnn_g is not None:
                raise ValueError("gaps need the causal encoder (dim_RNN_g = 0)")
            use_hat = use_hat | gaps
        g = self.encoder_input(x, self.deterministic(x)) if (z is None and self.rnn_g is not None) else None
        state, x_prev, x_prev2 = None, None, None
        z_prev = x.new_zeros(B, self.z_dim)
        hs, zs, means, logvars, outs, x_in = [], [], [], [], [], []
        for t in range(T):
            h, state = self._h_step(x_prev, x_prev2, state, B, x)
            if z is not None:
                z_t, mean, logvar = z[:, t], z[:, t], torch.zeros_like(z[:, t])
            elif gaps is not None and bool(gaps[:, t].any()):
                z_t, mean, logvar = self._gap_or_posterior(h, x[:, t], x_prev, z_prev, gaps[:, t], sample_z)
            else:
                g_t = g[:, t] if g is not None else torch.cat([h, self.input_features(x[:, t], x_prev)], -1)
                z_t, mean, logvar = self.posterior_step(g_t, z_prev, sample_z)
            out = self.generate(h, z_t)
            anchor, scale = self.frame_of_step(x_prev, x_prev2)
            with torch.no_grad():
                x_hat = self.to_data(out, anchor, scale)[0]
            x_t = torch.where(use_hat[:, t, None], x_hat, x[:, t])
            x_prev2, x_prev, z_prev = x_prev, x_t, z_t
            for seq, val in ((hs, h), (zs, z_t), (means, mean), (logvars, logvar), (outs, out), (x_in, x_t)):
                seq.append(val)
        h, z_seq = torch.stack(hs, 1), torch.stack(zs, 1)
        p_mean, p_logvar = self.prior(h, z_seq)
        return {"out": tuple(torch.stack([o[i] for o in outs], 1) for i in range(len(outs[0]))),
                "z": z_seq, "z_mean": torch.stack(means, 1), "z_logvar": torch.stack(logvars, 1),
                "p_mean": p_mean, "p_logvar": p_logvar, "x_in": torch.stack(x_in, 1)}

    def _gap_or_posterior(self, h: Tensor, x_t: Tensor, x_prev: Tensor | None, z_prev: Tensor, gap: Tensor,
                          sample: bool) -> tuple[Tensor, Tensor, Tensor]:
        """One step of z: the prior (4.2) where ``gap`` (B,) is True, the causal posterior (4.4) elsewhere."""
        z_q, mean_q, logvar_q = self.posterior_step(torch.cat([h, self.input_features(x_t, x_prev)], -1),
                                                    z_prev, sample)
        e = self.mlp_hz_z(torch.cat([h, z_prev], dim=-1))
        mean_p, logvar_p = self.prior_mean(e), bound_logvar(self.prior_logvar(e))
        z_p = mean_p + torch.exp(0.5 * logvar_p) * torch.randn_like(mean_p) if sample else mean_p
        g = gap[:, None]
        return torch.where(g, z_p, z_q), torch.where(g, mean_p, mean_q), torch.where(g, logvar_p, logvar_q)

    def loss(self, x: Tensor, fwd: dict[str, Tensor], beta: float, kl_weight: float = 1.0
             ) -> tuple[Tensor, Tensor, Tensor]:
        """(4.5) recon + beta * kl_weight * KL, each averaged over batch x time (summed over dims).

        Gaussian head: NLL in standardised coordinates (see :meth:`output_frame`); IS head: IS divergence
        on power. Returns (total, recon, kl) scalars.
        """
        if self.head == "gaussian":
            mean_f, logvar_f = fwd["out"]
            anchor, scale = self.output_frame(fwd.get("x_in", x))
            recon = gaussian_nll((x - anchor) / scale, mean_f, logvar_f).sum(-1)
        else:
            recon = is_divergence(x, self.log_v(fwd["out"][0])).sum(-1)
        kl = kl_gaussians(fwd["z_mean"], fwd["z_logvar"], fwd["p_mean"], fwd["p_logvar"]).sum(-1)
        recon, kl = recon.mean(), kl.mean()
        return recon + beta * kl_weight * kl, recon, kl

    def encode(self, x: Tensor, sample: bool = True) -> Tensor:
        """E-Z helper (§5.3, §6.4): z (B, T, Z) from the encoder run on data ``x`` (B, T, D)."""
        return self.inference(x, self.deterministic(x), sample=sample)[0]

    def reconstruct(self, x: Tensor, sample: bool = False) -> tuple[Tensor, ...]:
        """Teacher-forced reconstruction with posterior-mean (or sampled) z, in data space ((B, T, D) tensors)."""
        h = self.deterministic(x)
        z = self.inference(x, h, sample=sample)[0]
        return self.to_data(self.generate(h, z), *self.output_frame(x))

    def predict(self, x: Tensor) -> tuple[Tensor, ...]:
        """Causal one-step prediction of every frame from x_{<t} only: h_t (4.1) driven by x, z_t the prior
        mean (4.2) recursion (no encoder, so x_t is never seen). Data space ((B, T, D) tensors)."""
        h = self.deterministic(x)
        z_prev = h.new_zeros(h.shape[0], self.z_dim)
        zs = []
        for t in range(h.shape[1]):
            e = self.mlp_hz_z(torch.cat([h[:, t], z_prev], dim=-1))
            z_prev = self.prior_mean(e)
            zs.append(z_prev)
        return self.to_data(self.generate(h, torch.stack(zs, 1)), *self.output_frame(x))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
