"""A fused, time-major evaluation of the SRNN recursions for the MOT VEM's time loops (docs/method.md (5.3), (5.4)).

:class:`FastSRNN` computes the same values as :meth:`model.srnn.SRNN.step` and
:meth:`model.srnn.SRNN.inference` (tests check it) from folded copies of the weights, in the VEM's
(T, features, M) layout; see the class docstring for the tricks and why.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model import gauss2
from model.covariance_matching import CovarianceMatching
from model.fusion import fuse_gaussians, rts_identity_backward
from model.losses import HALF_LOG_2PI
from model.srnn import LOGVAR_BOUND, SRNN, bound_logvar

ES_MODES = ("filter", "propagate", "smoother", "iterated")
ES_VARS = ("model", "fixed", "adaptive")
FRAME2 = (1.0, 0.0, 0.0, 0.0)      # velocity anchor, frame 2: s_2 = s_1 + d_2, v_2 = d_2 (no v_1 yet)


def _dense_layers(module: torch.nn.Module) -> list[tuple[Tensor, Tensor, str | None]]:
    """The Linear layers of an SRNN MLP (``nn.Sequential`` or ``nn.Identity``) as (W (out, in), b, activation)."""
    layers: list[tuple[Tensor, Tensor, str | None]] = []
    for layer in module.children() if isinstance(module, torch.nn.Sequential) else ():
        if isinstance(layer, torch.nn.Linear):
            layers.append((layer.weight.detach(), layer.bias.detach(), None))
        elif isinstance(layer, (torch.nn.Tanh, torch.nn.ReLU)):
            layers[-1] = (*layers[-1][:2], "tanh" if isinstance(layer, torch.nn.Tanh) else "relu")
    return layers


def _fold_stack(layers: list[tuple[Tensor, Tensor, str | None]], in_scale: Tensor, in_shift: Tensor
                ) -> list[tuple[Tensor, Tensor, str | None]]:
    """Rewrite dense layers for speed, exactly: the input map ``x -> in_scale x + in_shift`` is folded into
    the first layer, and ``tanh(a) = 2 sigmoid(2a) - 1`` is evaluated as one sigmoid whose affine parts are
    folded into the neighbouring weights. The last layer must have no activation.

    Returns layers (W (out, in), b (out, 1), "sigmoid" | "relu" | None) evaluated feature-major as
    ``x = act(W x + b)`` on x (in, M) — see :func:`_apply`.
    """
    out = []
    scale, shift = in_scale, in_shift
    for W, b, act in layers:
        W, b = W * scale, b + W @ shift
        if act == "tanh":
            out.append((2 * W, 2 * b[:, None], "sigmoid"))
            scale, shift = torch.full_like(b, 2.0), torch.full_like(b, -1.0)
        else:
            out.append((W, b[:, None], act))
            scale, shift = torch.ones_like(b), torch.zeros_like(b)
    if out[-1][2] is not None:
        raise ValueError("the last folded layer must be linear")
    return out


def _act(x: Tensor, kind: str | None) -> Tensor:
    return torch.sigmoid(x) if kind == "sigmoid" else torch.relu(x) if kind == "relu" else x


def _apply(layers: list[tuple[Tensor, Tensor, str | None]], x: Tensor) -> Tensor:
    """Evaluate folded layers feature-major: x (in, M) -> (out, M)."""
    for W, b, act in layers:
        x = _act(torch.addmm(b, W, x), act)
    return x


def _affine_seq(b: Tensor, *terms: tuple[Tensor, Tensor]) -> Tensor:
    """``b + sum_i W_i x_i`` on whole sequences, accumulated in one buffer by batched products (no temporaries
    of the full (T, out, M) size): a first layer whose input is split into parts.

    Shape: b (out, 1), each W_i (out, in_i), x_i (T, in_i, M) -> (T, out, M).
    """
    (W, x), rest = terms[0], terms[1:]
    out = torch.baddbmm(b, W.expand(x.shape[0], -1, -1), x)
    for W, x in rest:
        out.baddbmm_(W.expand(x.shape[0], -1, -1), x)
    return out


def _apply_seq(layers: list[tuple[Tensor, Tensor, str | None]], x: Tensor) -> Tensor:
    """Evaluate folded layers on whole sequences: x (T, in, M) -> (T, out, M)."""
    for W, b, act in layers:
        x = _act(torch.baddbmm(b, W.expand(x.shape[0], -1, -1), x), act)
    return x


def _lstm_cell(gates: Tensor, c: Tensor, H: int) -> tuple[Tensor, Tensor]:
    """One LSTM cell, feature-major, from pre-activations whose g block is doubled (see :class:`FastSRNN`):
    ``c = f c + i tanh(g)``, ``h = o tanh(c)``, with ``tanh(u) = 2 sigmoid(2u) - 1``.

    Shape: gates (4H, M) ordered (i, f, g, o) as torch's LSTM, c (H, M) -> (h, c) each (H, M).
    """
    i, f, g, o = torch.sigmoid(gates).split(H, dim=0)
    c = torch.addcmul(torch.addcmul(-i, f, c), i, g, value=2.0)
    h = torch.addcmul(-o, o, torch.sigmoid(2.0 * c), value=2.0)
    return h, c


class FastSRNN:
    """The SRNN recursions the VEM runs in its time loops — (4.1) + (4.3) for E-S and (4.4) for E-Z —
    evaluated from folded copies of the weights, in the VEM's (T, features, M) layout.

    Same values as :meth:`SRNN.step` and :meth:`SRNN.inference` (tests check it), with fewer and cheaper
    tensor operations per frame (the VEM's run time is almost all in these loops):

    - feature standardisation and the data-space output map are folded into the first/last layers;
    - tanh runs as a sigmoid with its affine parts folded into the weights (torch's CPU tanh is several
      times slower than its sigmoid);
    - per-frame tensors are feature-major (features, M), so gate blocks and output heads are contiguous
      row slices and the small-output matmuls are fast;
    - the z- and g-dependent parts of the first layers are computed for all frames at once;
    - the h sequence of the last :meth:`filter` pass is reused by :meth:`encode` when it is given the same
      means (h_t only depends on m_{1:t-1}), which saves the encoder's LSTM pass ("filter" and "propagate":
      the smoothers hand other means to the next E-Z).

    Build a new one whenever the weights change (fine-tuning).

    Args:
        model: an SRNN with the Gaussian head in eval mode; with ``dim_RNN_g > 0`` :meth:`encode` falls
            back to :meth:`SRNN.inference`.
        var_scale: multiplies the decoder variance sigma^2_theta in :meth:`filter` (variance inflation, E-S
            only; 1 = the model's own variance).
        es_var: the variance of the DVAE prediction in :meth:`filter`. "model" (the paper): sigma^2_theta(h_t,
            z_t) from the decoder. "fixed": ``var_scale x delta_std^2`` per coordinate (the training increments'
            variance; ``feat_std^2`` without increments), the same on every frame, so that no frame can claim
            a large variance through the z that E-Z inferred from the previous iteration's tracks (README,
            Tracking, round 6: in long gaps that variance let the smoother keep a stall-and-jump path).
            "adaptive": the same with a k per sequence re-estimated after every pass from the pass's filter
            corrections (:mod:`model.covariance_matching`, starting at ``var_scale``); ``reset()`` forgets them.
        es_mode: E-S of :meth:`filter`. "filter" (the paper): the prior of s_t is N(mu_theta, var_scale
            sigma^2_theta). "propagate": its variance also carries the posterior variance of s_{t-1}, on
            which an increments decoder's mean is anchored (mu_theta = s_{t-1} + d_t). "smoother":
            "propagate" followed by a Rauch-Tung-Striebel backward pass with the increments d_t held fixed,
            so each s_t also sees the later observations. "iterated": "smoother", but the recurrence h_t
            (4.1) is driven by the means the E-Z of the same iteration saw (the previous iteration's
            smoothed tracks, ``drive_h``) instead of this pass's filtered m_{t-1}, so inside a gap the
            increments d_t follow the previous bridge; the mean stays anchored on this pass's m_{t-1}. Every
            mode but "filter" needs ``increments``. With a velocity-anchored DVAE (``SRNN.velocity``) every mode
            but "filter" carries the 2 x 2 covariance of (s_t, s_t - s_{t-1}) (:meth:`_velocity_step`), whose
            prediction 2 s_{t-1} - s_{t-2} + d_t has the variance of a constant-velocity Kalman filter's, and
            the smoothers end with that system's backward pass (:func:`model.gauss2.rts_backward`).

    The per-frame step of :meth:`filter` (frames 2..T) is :meth:`_filter_step`, called through ``_step``:
    ``bench/bench_vem_mot.py --compile`` replaces it with a ``torch.compile``d copy to measure that (it did
    not pay, README "Performance").
    """

    @torch.no_grad()
    def __init__(self, model: SRNN, var_scale: float = 1.0, es_mode: str = "filter", es_var: str = "model"):
        if es_mode not in ES_MODES:
            raise ValueError(f"es_mode must be one of {', '.join(ES_MODES)}, got {es_mode!r}")
        if es_var not in ES_VARS:
            raise ValueError(f"es_var must be one of {', '.join(ES_VARS)}, got {es_var!r}")
        if es_mode != "filter" and not model.increments:
            raise ValueError(f"es_mode {es_mode!r} needs a DVAE trained with increments "
                             "(its decoder mean must be anchored on s_{t-1})")
        self.model, self.var_scale, self.es_mode, self.es_var = model, var_scale, es_mode, es_var
        mean, std = model.feat_mean.detach(), model.feat_std.detach()
        D, Z, lstm = model.x_dim, model.z_dim, model.rnn_h
        H = self.H = lstm.hidden_size
        self.D, self.Z = D, Z
        g2 = torch.ones(4 * H, 1, dtype=mean.dtype, device=mean.device)
        g2[2 * H:3 * H] = 2.0                                          # doubled g block for _lstm_cell
        self.w_ih, self.w_hh, self.b_lstm = [], [], []
        for layer in range(lstm.num_layers):
            self.w_ih.append(getattr(lstm, f"weight_ih_l{layer}").detach() * g2)
            self.w_hh.append(getattr(lstm, f"weight_hh_l{layer}").detach() * g2)
            self.b_lstm.append((getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach()
                               * g2[:, 0])
        # (4.1) input path: standardise -> mlp_x_h -> first LSTM layer's input projection (+ both biases);
        # with increments the input is [x_{t-1}, x_{t-1} - x_{t-2}]
        self.increments, self.velocity = model.increments, model.velocity
        delta = model.delta_std.detach()
        in_scale, in_shift = 1.0 / std, -mean / std
        if self.increments:
            in_scale, in_shift = torch.cat([in_scale, 1.0 / delta]), torch.cat([in_shift, torch.zeros_like(delta)])
        self.x_stack = _fold_stack(_dense_layers(model.mlp_x_h) + [(self.w_ih[0], self.b_lstm[0], None)],
                                   in_scale, in_shift)
        # whole-sequence (4.1) for encode(): one fused LSTM call (single-layer LSTMs) on the folded input
        # features, whose last layer is the input projection with the doubled g block undone
        self.seq_lstm = None
        if lstm.num_layers == 1:
            W, b, _ = self.x_stack[-1]
            self.seq_lstm = [W / g2, lstm.weight_hh_l0.detach(), (b / g2)[:, 0], torch.zeros_like(b[:, 0])]
        if self.increments:      # W [m; m - m2] = (W_m + W_d) m - W_d m2: two products, no difference or cat
            (W, b, act), rest = self.x_stack[0], self.x_stack[1:]
            self.x_inc = (W[:, :D] + W[:, D:], -W[:, D:], b, act, rest)
        self.b_lstm = [b[:, None] for b in self.b_lstm]
        # (4.3) generation on [h, z]; heads mapped to data space: rows 0..D-1 mean, D..2D-1 log variance.
        # With increments the mean row gives the increment (m_{t-1} is added in the loop).
        out_scale, out_shift = (delta, torch.zeros_like(delta)) if self.increments else (std, mean)
        heads = (torch.cat([model.gen_out.weight * out_scale[:, None], model.gen_logvar.weight]).detach(),
                 torch.cat([model.gen_out.bias * out_scale + out_shift,
                            model.gen_logvar.bias + 2 * torch.log(out_scale)]).detach(),
                 None)
        self.logvar_lo = (2 * torch.log(out_scale) - LOGVAR_BOUND)[:, None]        # bound_logvar, data space
        self.logvar_hi = (2 * torch.log(out_scale) + LOGVAR_BOUND)[:, None]
        one, zero = mean.new_ones(H + Z), mean.new_zeros(H + Z)
        self.gen = self._stack(_dense_layers(model.mlp_hz_x), heads, one, zero)
        # (4.2) prior on [h, z_prev]; heads: rows 0..Z-1 mean, Z..2Z-1 log variance
        heads = (torch.cat([model.prior_mean.weight, model.prior_logvar.weight]).detach(),
                 torch.cat([model.prior_mean.bias, model.prior_logvar.bias]).detach(), None)
        self.prior = self._stack(_dense_layers(model.mlp_hz_z), heads, one, zero)
        # for the loss in feature space (SRNN.output_frame): the data-space output map and each frame's anchor
        # and scale, (D, 1) columns
        self.out_scale, self.out_shift = out_scale[:, None], out_shift[:, None]
        self.var_unit = out_scale.square()[:, None]                    # delta_std^2 in data space (D, 1)
        self.fixed_var = var_scale * self.var_unit                     # es_var = "fixed"
        self.matching = CovarianceMatching(var_scale, es_mode != "filter") if es_var == "adaptive" else None
        self._q = self.fixed_var
        self.feat_mean, self.feat_std, self.delta_std = mean[:, None], std[:, None], delta[:, None]
        # (4.4) inference on [h, features(x) (, increment), z_prev]; heads: rows 0..Z-1 mean, Z..2Z-1 log std
        self.enc = None
        if model.rnn_g is None:
            heads = (torch.cat([model.inf_mean.weight, 0.5 * model.inf_logvar.weight]).detach(),
                     torch.cat([model.inf_mean.bias, 0.5 * model.inf_logvar.bias]).detach(), None)
            self.enc = self._stack(_dense_layers(model.mlp_gz_z), heads,
                                   torch.cat([one[:H], in_scale, one[H:]]), torch.cat([zero[:H], in_shift, zero[H:]]))
        self.last: tuple[Tensor, Tensor] | None = None                 # (m, h) of the last filter pass
        self._step = self._filter_step

    @staticmethod
    def _stack(mlp, heads, in_scale, in_shift):
        """Fold ``mlp + [heads]``; an empty MLP gets an identity first layer, so that the first layer (whose
        input is split between per-frame and precomputed parts) is never the heads."""
        if not mlp:
            n = in_scale.numel()
            mlp = [(torch.eye(n, dtype=in_scale.dtype, device=in_scale.device), torch.zeros_like(in_scale), None)]
        return _fold_stack(mlp + [heads], in_scale, in_shift)

    def reset(self) -> None:
        """Forget what a previous batch left: the cached filter pass and (``adaptive``) the per-sequence k."""
        self.last = None
        if self.matching is not None:
            self.matching.reset()

    def select(self, columns: Tensor) -> None:
        """Keep the cached filter pass of the sequences ``columns`` (of M) only, for when the VEM drops the
        sequences that have converged."""
        if self.last is not None:
            self.last = (self.last[0][..., columns], self.last[1][..., columns])
        if self.matching is not None:
            self.matching.select(columns)

    def encode(self, m: Tensor, sample: bool) -> dict[str, Tensor]:
        """(4.1) h and (4.4) q(z) on the sequences m (T, D, M); ``sample=False`` propagates the posterior mean.

        Returns a dict of (T, ., M) tensors: h, z, z_mean, z_logvar (as :meth:`SRNN.inference`).
        """
        if self.last is not None and self.last[0].shape == m.shape and torch.equal(self.last[0], m):
            h = self.last[1]
        else:
            h = self.recurrence(m)
        if self.enc is None:
            out = self.model.inference(m.permute(2, 0, 1), h.permute(2, 0, 1), sample=sample)
            z, z_mean, z_logvar = (x.permute(1, 2, 0) for x in out)
            return {"h": h, "z": z, "z_mean": z_mean, "z_logvar": z_logvar}
        H, Z = self.H, self.Z
        (W1, b1, act1), rest = self.enc[0], self.enc[1:]
        x_in = self._with_increments(m)
        D_in = x_in.shape[1]
        pre = _affine_seq(b1, (W1[:, :H], h), (W1[:, H:H + D_in], x_in))  # (T, out_1, M)
        w_z = W1[:, H + D_in:].contiguous()
        eps = torch.randn(m.shape[0], Z, m.shape[2], dtype=m.dtype, device=m.device) if sample else None
        z = m.new_zeros(Z, m.shape[2])
        zs, outs = [], []
        for t in range(m.shape[0]):
            out = _apply(rest, _act(torch.addmm(pre[t], w_z, z), act1))     # (2Z, M): mean, log std
            out[Z:].clamp_(-0.5 * LOGVAR_BOUND, 0.5 * LOGVAR_BOUND)
            z = torch.addcmul(out[:Z], torch.exp(out[Z:]), eps[t]) if sample else out[:Z]
            zs.append(z)
            outs.append(out)
        out = torch.stack(outs)
        return {"h": h, "z": torch.stack(zs), "z_mean": out[:, :Z], "z_logvar": 2 * out[:, Z:]}

    def recurrence(self, m: Tensor) -> Tensor:
        """(4.1) h over whole sequences driven by m, as :meth:`SRNN.deterministic`: frame 1 from the zero input,
        frames 2..T in one LSTM call on the folded features of frames 1..T-1 (tanh evaluated as a sigmoid, see
        :func:`_fold_stack`). Multi-layer LSTMs use :meth:`SRNN.deterministic`.

        Shape: m (T, D, M) -> h (T, H, M).
        """
        if self.seq_lstm is None:
            return self.model.deterministic(m.permute(2, 0, 1)).permute(1, 2, 0)
        H, M = self.H, m.shape[2]
        h1, c1 = _lstm_cell(self.b_lstm[0].expand(-1, M), m.new_zeros(H, M), H)
        if m.shape[0] == 1:
            return h1[None]
        feat = _apply_seq(self.x_stack[:-1], self._with_increments(m[:-1]))        # (T-1, F, M)
        state = (h1.T[None].contiguous(), c1.T[None].contiguous())
        h = torch.lstm(feat.transpose(1, 2).contiguous(), state, self.seq_lstm, True, 1, 0.0, False, False,
                       False)[0]                                                   # time-major (T-1, M, H)
        return torch.cat([h1[None], h.transpose(1, 2)])

    def _with_increments(self, m: Tensor) -> Tensor:
        """The (4.1)/(4.4) inputs of every frame: m (T, D, M), and with increments also m_t - m_{t-1}
        (0 at t = 1) -> (T, D or 2D, M)."""
        if not self.increments:
            return m
        return torch.cat([m, torch.cat([torch.zeros_like(m[:1]), m[1:] - m[:-1]])], dim=1)

    def filter(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, z: Tensor,
               drive_h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(5.4) E-S recursion: DVAE prediction (4.1)+(4.3) driven by this pass's m_{t-1}, fused with the
        observations by :func:`model.fusion.fuse_gaussians`. ``es_mode = "iterated"`` takes h_t from
        ``drive_h`` (T, H, M) (the :meth:`encode` pass of this iteration) instead of the recursion.

        Shape: prec, info (T, D, M), start, start_var (D, M), z (T, Z, M) -> (m, var) (T, D, M).
        """
        if (self.es_mode == "iterated") != (drive_h is not None):
            raise ValueError("drive_h is given exactly when es_mode = 'iterated'")
        T, D, M = prec.shape
        H, L = self.H, len(self.w_hh)
        W1, b1, _ = self.gen[0]
        zproj = _affine_seq(b1, (W1[:, H:], z))                        # (T, out_1, M)
        w_h = W1[:, :H].contiguous()                                   # a column slice would be copied per frame
        smooth = self.es_mode in ("smoother", "iterated")
        two_state = self.velocity and self.es_mode != "filter"        # (s_t, v_t) Kalman steps, _velocity_step
        keep_h = not smooth and not two_state   # encode() gets these means back (the smoothers return others; the
        #                                         two-state recurrence is driven by s - v, not the previous m)
        hs = [prec.new_zeros(H, M) for _ in range(L)]
        cs = [prec.new_zeros(H, M) for _ in range(L)]
        matching = self.matching
        if matching is not None:
            self._q = self.var_unit * matching.start_pass(M, prec)
        means, variances, h_top, prior_means, prior_vars = [], [], [], [], []
        m_prev = m_prev2 = var = None
        filt, pred, transitions = [], [None], [None]
        if two_state:
            prec64, info64 = prec.double(), info.double()
        for t in range(T):
            if t == 0:                                                 # x_0 = 0: zero LSTM input at t = 1
                for layer in range(L if drive_h is None else 0):
                    x_in = self.b_lstm[0] if layer == 0 else torch.addmm(self.b_lstm[layer], self.w_ih[layer],
                                                                         hs[layer - 1])
                    hs[layer], cs[layer] = _lstm_cell(torch.addmm(x_in, self.w_hh[layer], hs[layer]), cs[layer], H)
                if drive_h is not None:
                    hs[-1] = drive_h[0]
                mu, v = start, start_var
                m_prev, var = fuse_gaussians(prec[0], info[0], mu, v)
                if two_state:
                    zero = torch.zeros_like(m_prev, dtype=torch.float64)
                    filt.append((m_prev.double(), zero, (var.double(), zero, zero)))
            elif two_state:
                hs, cs, predicted, updated, q, F = self._velocity_step(
                    filt[-1], t == 1, hs, cs, zproj[t], w_h, prec64[t], info64[t],
                    None if drive_h is None else drive_h[t])
                filt.append(updated)
                pred.append(predicted)
                transitions.append(F)
                m_prev, var = updated[0].to(prec.dtype), updated[2][0].to(prec.dtype)
                mu, v = predicted[0].to(prec.dtype), predicted[2][0].to(prec.dtype)
                if matching is not None:                   # the carried part of the prior variance: v - q
                    matching.observe(mu, v, v - q.to(prec.dtype), m_prev, var, self.var_unit)
            else:
                var_prev = var
                hs, cs, mu, v, m_new, var = self._step(m_prev, m_prev if m_prev2 is None else m_prev2, hs, cs,
                                                       zproj[t], w_h, prec[t], info[t], var,
                                                       None if drive_h is None else drive_h[t])
                m_prev2, m_prev = m_prev, m_new
                if matching is not None:
                    matching.observe(mu, v, var_prev, m_new, var, self.var_unit)
            if keep_h:
                h_top.append(hs[-1])
            if smooth:
                prior_means.append(mu)
                prior_vars.append(v)
            means.append(m_prev)
            variances.append(var)
        m, var = torch.stack(means), torch.stack(variances)
        self.last = (m, torch.stack(h_top)) if keep_h else None
        if matching is not None:
            matching.finish()
        if smooth and two_state:
            means, variances = gauss2.rts_backward(filt, pred, transitions)
            return torch.stack(means).to(prec.dtype), torch.stack(variances).clamp_min(1e-12).to(prec.dtype)
        if smooth:
            return rts_identity_backward(m, var, torch.stack(prior_means), torch.stack(prior_vars))
        return m, var

    def _filter_step(self, m_prev: Tensor, m_prev2: Tensor, hs: list[Tensor], cs: list[Tensor], zproj_t: Tensor,
                     w_h: Tensor, prec_t: Tensor, info_t: Tensor, var: Tensor, h_t: Tensor | None = None):
        """One frame t >= 2 of :meth:`filter`: the LSTM layers driven by m_{t-1} (and m_{t-1} - m_{t-2}) — or,
        "iterated", h_t given — the prior N(mu, v) of s_t and its fusion with the observations.
        Returns (hs, cs, mu, v, m_t, var_t)."""
        hs, cs, out, v = self._dvae_step(m_prev, m_prev2, hs, cs, zproj_t, w_h, h_t)
        mu = out + m_prev if self.increments else out
        if self.velocity:                        # m_prev2 is m_prev at frame 2: no velocity yet
            mu = mu + (m_prev - m_prev2)
        if self.es_mode != "filter":
            v = v + var
        m, var = fuse_gaussians(prec_t, info_t, mu, v)
        return hs, cs, mu, v, m, var

    def _velocity_step(self, state: tuple, first: bool, hs: list[Tensor], cs: list[Tensor], zproj_t: Tensor,
                       w_h: Tensor, prec_t: Tensor, info_t: Tensor, h_t: Tensor | None = None):
        """One frame t >= 2 of :meth:`filter` for a velocity-anchored DVAE with a variance-carrying E-S: a
        2-state Kalman step (:mod:`model.gauss2`, in float64; prec_t, info_t given in float64) on
        (s_t, v_t = s_t - s_{t-1}) per coordinate,
        s_t = s_{t-1} + v_{t-1} + d_t + e_t, v_t = v_{t-1} + d_t + e_t with e_t ~ N(0, q_t) (frame 2: no
        v_{t-1}), where d_t is the decoder's deviation from constant velocity (the velocity anchor's
        mu_theta = s_{t-1} + v_{t-1} + d_t). The recurrence is driven by (s_{t-1}, v_{t-1}) of the last update.
        Returns (hs, cs, predicted, updated, q, F): the predicted and updated (s, v, cov) of frame t (float64), q
        (D, M) and the transition F used."""
        s, vel, cov = state
        m_prev = s.to(zproj_t.dtype)
        hs, cs, d, q = self._dvae_step(m_prev, m_prev - vel.to(zproj_t.dtype), hs, cs, zproj_t, w_h, h_t)
        d, q = d.double(), q.double()
        F = FRAME2 if first else gauss2.CONSTANT_VELOCITY
        predicted = gauss2.predict(s, vel, cov, F, (d, d), (q, q, q))
        updated = gauss2.update(*predicted, prec_t, info_t)
        return hs, cs, predicted, updated, q, F

    def _dvae_step(self, m_prev: Tensor, m_prev2: Tensor, hs: list[Tensor], cs: list[Tensor], zproj_t: Tensor,
                   w_h: Tensor, h_t: Tensor | None = None):
        """(4.1) + (4.3) of one frame t >= 2: the LSTM layers driven by m_{t-1} and m_{t-1} - m_{t-2} (or h_t
        given) and the decoder. Returns (hs, cs, out, q): out the decoder mean (with increments, the increment or
        the deviation from its anchor), q the E-S variance of the prediction before any carried variance."""
        hs, cs = list(hs), list(cs)
        H, D = self.H, self.D
        for layer in range(len(hs) if h_t is None else 0):
            if layer > 0:
                x_in = torch.addmm(self.b_lstm[layer], self.w_ih[layer], hs[layer - 1])
            elif self.increments:
                W_m, W_d, b, act, rest = self.x_inc
                x_in = _apply(rest, _act(torch.addmm(torch.addmm(b, W_m, m_prev), W_d, m_prev2), act))
            else:
                x_in = _apply(self.x_stack, m_prev)
            hs[layer], cs[layer] = _lstm_cell(torch.addmm(x_in, self.w_hh[layer], hs[layer]), cs[layer], H)
        if h_t is not None:
            hs[-1] = h_t
        (_, _, act1), rest = self.gen[0], self.gen[1:]
        out = _apply(rest, _act(torch.addmm(zproj_t, w_h, hs[-1]), act1))   # (2D, M)
        if self.es_var != "model":                                     # fixed, or adaptive's k per sequence
            v = self._q.expand_as(m_prev)
        else:
            v = torch.exp(torch.clamp(out[D:], self.logvar_lo, self.logvar_hi)).mul_(self.var_scale)
        return hs, cs, out[:D], v

    def frame_loss_terms(self, m: Tensor, enc: dict[str, Tensor]) -> dict[str, Tensor]:
        """(4.5) per frame and sequence: ``recon`` = the Gaussian NLL of x_t = m_t in the frame of
        :meth:`SRNN.output_frame` (with increments, frame t > 1 has anchor m_{t-1} and scale delta_std, frame 1 those
        of the features), summed over the D coordinates, and ``kl`` = KL(q(z_t) || p(z_t | h_t, z_{t-1})) summed over
        z, both with the encoder pass ``enc`` (:meth:`encode`).

        Shape: m (T, D, M), enc tensors (T, ., M) -> recon, kl (T, M).
        """
        H, D, Z = self.H, self.D, self.Z
        h, z = enc["h"], enc["z"]

        def first(stack, other):                                       # first layer on [h, other], all frames
            W, b, act = stack[0]
            return _act(_affine_seq(b, (W[:, :H], h), (W[:, H:], other)), act)

        out = _apply_seq(self.gen[1:], first(self.gen, z))             # (T, 2D, M) data-space mean, log var
        log_var = torch.clamp(out[:, D:], self.logvar_lo, self.logvar_hi) - 2 * torch.log(self.out_scale)
        mean_f = (out[:, :D] - self.out_shift) / self.out_scale      # standardised decoder mean
        if self.increments:
            anchor = torch.cat([self.feat_mean.expand_as(m[:1]), m[:-1]])
            if self.velocity:
                anchor = torch.cat([anchor[:2], anchor[2:] + m[1:-1] - m[:-2]])
            scale = torch.cat([self.feat_std.expand_as(m[:1]), self.delta_std.expand_as(m[1:])])
        else:
            anchor, scale = self.feat_mean, self.feat_std
        err = ((m - anchor) / scale - mean_f).square_().mul_(torch.exp(-log_var))
        recon = 0.5 * (log_var + err).sum(1) + D * HALF_LOG_2PI
        z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
        prior = _apply_seq(self.prior[1:], first(self.prior, z_prev))  # (T, 2Z, M) mean, log var
        p_mean, p_logvar = prior[:, :Z], bound_logvar(prior[:, Z:])
        q_mean, q_logvar = enc["z_mean"], enc["z_logvar"]
        kl = 0.5 * (p_logvar - q_logvar + (torch.exp(q_logvar) + (q_mean - p_mean) ** 2) * torch.exp(-p_logvar) - 1)
        return {"recon": recon, "kl": kl.sum(1)}

    def loss(self, m: Tensor, enc: dict[str, Tensor], beta: float) -> Tensor:
        """(4.5) the DVAE loss of x = m with the encoder pass ``enc`` (:meth:`encode`), as :meth:`SRNN.loss`
        with kl_weight 1: Gaussian NLL in feature space + beta KL(q || p) (:meth:`frame_loss_terms`), averaged
        over frames and sequences.

        Shape: m (T, D, M), enc tensors (T, ., M) -> scalar.
        """
        terms = self.frame_loss_terms(m, enc)
        return terms["recon"].mean() + beta * terms["kl"].mean()
