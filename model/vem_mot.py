"""MixDVAE variational EM for multi-object tracking (DESIGN §5).

N sources (objects) share one DVAE; detections o_tk are assigned to sources by the discrete
variable w_tk. Sizes: B samples, T frames, K detection slots, N sources, D = 4 box coordinates
(x1, y1, x2, y2), S = N, or N + 1 with the clutter class (last).

- (5.1) observation variance Phi_tk               -> :func:`observation_variance`
- (5.2) E-W  eta_tkn = q(w_tk = n)                  -> :func:`e_w`
- (5.3) E-Z  z from the DVAE encoder on m           -> :meth:`SRNNDynamics.e_z`
- (5.4) E-S  information-form fusion, recursive     -> :func:`observation_information`, :func:`fuse_gaussians`,
                                                       :meth:`SRNNDynamics.e_s` (:meth:`FastSRNN.filter`)
- (5.5) fine-tuning, one Adam step per iteration    -> :meth:`SRNNDynamics.e_z` (``finetune=True``)
- (5.6) M-step on Phi (optional)                    -> :func:`update_observation_variance`
- (5.7) windowed initialisation                     -> :func:`windowed_init`
- (5.8) ELBO terms per iteration                    -> :func:`elbo_terms`
- the whole algorithm, pixels in and out            -> :func:`run_vem`

Coordinates are normalised (pixels divided by ``normalize_range``, or by each sample's image size);
every covariance is diagonal, so the algebra is elementwise.

**Layout.** :func:`run_vem` takes and returns frames-first tensors ((B, T, K, 4) detections, (B, T, N, 4)
tracks). Inside, tensors are time-major and feature-major: detections (T, D, K, B), sources
(T, D, N, B), assignments (T, K, S, B). Sums over coordinates, detections or sources are then sums of
contiguous slabs, and the per-frame slices the time loops work on are contiguous (D, M) blocks. The
N sources share the dynamics, so they fold into one batch axis M = N * B (index n * B + b): a
(T, D, N, B) tensor *is* a (T, D, M) tensor, reshaped for free. The only Python loops inside an
iteration are over time, in E-S and E-Z.

The dynamics are pluggable: anything implementing the :class:`Dynamics` protocol (``for_batch``,
``e_z``, ``e_s``) can replace the DVAE — :mod:`model.kf_vem` plugs a constant-velocity Kalman smoother
in to get the KF-VEM baseline (§7).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from model.losses import HALF_LOG_2PI
from model.srnn import SRNN

MIN_STD = 1e-4        # floor of the observation std (normalised units, ~0.2 px at 1920 px)
MISSING_VAR = 1.0     # harmless finite Phi of a missing detection (its weight is exactly zero)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VEMSettings:
    """Settings of the MOT VEM (§5); INI names in brackets.

    Attributes:
        n_iter: VEM iterations on the whole sequence after initialisation ([VEM] N_iter_total).
        init_iter: iterations per initialisation window (init_iter_number), §5.7.
        init_subseq_len: frames per initialisation window (init_subseq_len), §5.7.
        std_ratio: observation std / detection width (x) or height (y), §5.1.
        temperature: tau, multiplies the quadratic term of E-W (assignment_temperature), §5.2.
        clutter_logprob: log-likelihood of the clutter class relative to a real source at zero
            distance (None = no clutter class), §5.2.
        update_phi: re-estimate Phi in every iteration (§5.6) instead of keeping (5.1).
        save_all_iters: also return the tracks after the initialisation and after every iteration.
        log_elbo: compute the ELBO terms of every iteration (§5.8; the DVAE loss costs one extra pass).
        pinned_var: variance of the dynamics' prior at the first frame of a window, §5.4.
        normalize: "fixed" (divide by ``normalize_range``) or "image_size" (each sample's size), §5.
        normalize_range: (width, height) of the fixed normalisation.
    """

    n_iter: int = 70
    init_iter: int = 20
    init_subseq_len: int = 30
    std_ratio: float = 0.04
    temperature: float = 0.1
    clutter_logprob: float | None = None
    update_phi: bool = False
    save_all_iters: bool = False
    log_elbo: bool = True
    pinned_var: float = 1e-5
    normalize: str = "fixed"
    normalize_range: tuple[float, float] = (1920.0, 1080.0)


@dataclass
class VEMResult:
    """Output of :func:`run_vem`, frames-first, in pixels.

    Attributes:
        tracks: (B, T, N, 4) posterior means m_tn.
        var: (B, T, N, 4) diagonal posterior covariances Sigma_tn (pixels^2).
        eta: (B, T, K, S) assignment posteriors of the last iteration (clutter class last).
        elbo: name -> (n_iter, B) ELBO terms per iteration and sample (§5.8); empty unless ``log_elbo``.
        iter_tracks: (n_iter + 1, B, T, N, 4) tracks after the initialisation (index 0) and after each
            iteration, or None unless ``save_all_iters``.
    """

    tracks: Tensor
    var: Tensor
    eta: Tensor
    elbo: dict[str, Tensor]
    iter_tracks: Tensor | None = None


class Dynamics(Protocol):
    """What the VEM needs from a source model (the DVAE, or a Kalman model for KF-VEM).

    Sequences are (T, D, M) with M = N * B sources of all samples; see the module docstring.
    """

    def for_batch(self) -> Dynamics:
        """The object to use for one batch (a fresh copy when it adapts its weights)."""

    def e_z(self, m: Tensor, with_loss: bool = True) -> tuple[Any, Tensor | None]:
        """E-Z on the current means m (T, D, M): (context for :meth:`e_s`, model loss (scalar) or None)."""

    def e_s(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, context: Any
            ) -> tuple[Tensor, Tensor]:
        """E-S: posterior (mean, var), each (T, D, M), from the observation precision and information
        (T, D, M) and the first-frame prior N(start, start_var), each (D, M)."""


# ----------------------------------------------------------------------------- coordinates


def box_scale(image_size: Tensor, normalize: str, normalize_range: tuple[float, float]) -> Tensor:
    """Per-sample factor from normalised coordinates to pixels (§5).

    Shape: image_size (B, 2) (width, height) -> (B, 4) = (W, H, W, H).
    """
    if normalize == "image_size":
        wh = image_size.to(torch.float32)
    elif normalize == "fixed":
        wh = torch.tensor(normalize_range, dtype=torch.float32).expand(image_size.shape[0], 2)
    else:
        raise ValueError(f"normalize must be 'fixed' or 'image_size', got {normalize!r}")
    return torch.cat([wh, wh], dim=-1)


def valid_detections(det: Tensor, det_mask: Tensor | None = None) -> Tensor:
    """Detections the VEM uses: finite, x2 > x1 and y2 > y1, and in ``det_mask``.

    Zero-area and inverted boxes are skipped (treated as missing): their Phi (5.1) would be zero.
    Shape: det (..., 4), det_mask (...) -> (...) bool.
    """
    ok = torch.isfinite(det).all(-1) & (det[..., 2] > det[..., 0]) & (det[..., 3] > det[..., 1])
    return ok if det_mask is None else ok & det_mask.bool()


def box_sizes(box: Tensor, dim: int) -> Tensor:
    """The size each coordinate scales with: (x1, y1, x2, y2) -> (w, h, w, h) along ``dim`` (of length 4)."""
    wh = box.narrow(dim, 2, 2) - box.narrow(dim, 0, 2)
    return torch.cat([wh, wh], dim=dim)


# ----------------------------------------------------------------------------- (5.1)


def observation_variance(obs: Tensor, mask: Tensor, std_ratio: float) -> Tensor:
    """(5.1) diagonal Phi_tk: std = std_ratio x width (x coordinates) / height (y coordinates).

    Missing detections get :data:`MISSING_VAR` (finite; they get zero weight in E-W).

    Shape: obs (T, D, K, B), mask (T, K, B) -> (T, D, K, B).
    """
    std = (std_ratio * box_sizes(obs, 1)).clamp_min(MIN_STD)
    return torch.where(mask[:, None], std**2, torch.full_like(std, MISSING_VAR))


# ----------------------------------------------------------------------------- (5.2)


def e_w(obs: Tensor, obs_var: Tensor, mask: Tensor, m: Tensor, var: Tensor, temperature: float,
        clutter_logprob: float | None = None) -> Tensor:
    """(5.2) E-W: eta_tkn = softmax_n log beta_tkn, in the log domain.

    ``log beta_tkn = -tau/2 [(o - m)^T Phi^-1 (o - m) + tr(Phi^-1 Sigma)] - 1/2 log|Phi|``; the clutter
    class has ``log beta = clutter_logprob - 1/2 log|Phi|``. Missing detections get eta = 0.

    Args:
        obs: detections, zeros (not NaN) where missing.
        obs_var: Phi, finite everywhere.
        mask: present detections.
        m, var: source posterior means and variances.
        temperature: tau.
        clutter_logprob: None = no clutter class.

    Shape:
        obs, obs_var (T, D, K, B), mask (T, K, B), m, var (T, D, N, B) -> eta (T, K, S, B).
    """
    inv_phi = 1.0 / obs_var
    quad = ((obs[:, :, :, None] - m[:, :, None]).square_().add_(var[:, :, None])
            .mul_(inv_phi[:, :, :, None]).sum(1))                               # (T, K, N, B)
    half_log_det = 0.5 * torch.log(obs_var).sum(1)[:, :, None]                  # (T, K, 1, B)
    log_beta = -0.5 * temperature * quad - half_log_det
    if clutter_logprob is not None:
        log_beta = torch.cat([log_beta, clutter_logprob - half_log_det], dim=2)
    beta = torch.exp(log_beta - log_beta.amax(2, keepdim=True))
    return beta * (mask[:, :, None] / beta.sum(2, keepdim=True))


# ----------------------------------------------------------------------------- (5.4)


def observation_information(eta: Tensor, obs: Tensor, obs_var: Tensor) -> tuple[Tensor, Tensor]:
    """(5.4) observation part of E-S: ``sum_k eta_tkn Phi_tk^-1`` and ``sum_k eta_tkn Phi_tk^-1 o_tk``.

    Shape: eta (T, K, N, B) (real sources only, no clutter column), obs, obs_var (T, D, K, B)
    -> prec, info (T, D, N, B).
    """
    inv_phi = 1.0 / obs_var
    w = eta[:, None]                                                            # (T, 1, K, N, B)
    return (w * inv_phi[:, :, :, None]).sum(2), (w * (obs * inv_phi)[:, :, :, None]).sum(2)


def fuse_gaussians(prec_obs: Tensor, info_obs: Tensor, mean_prior: Tensor, var_prior: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """(5.4) information-form fusion, elementwise:
    ``Sigma^-1 = prec_obs + 1/var_prior``, ``m = Sigma (info_obs + mean_prior / var_prior)``.

    Shape: all the same (any) -> (mean, var).
    """
    var = 1.0 / (prec_obs + 1.0 / var_prior)
    return var * (info_obs + mean_prior / var_prior), var


# ----------------------------------------------------------------------------- (5.6)


def update_observation_variance(eta: Tensor, obs: Tensor, mask: Tensor, m: Tensor, var: Tensor,
                                obs_var: Tensor) -> Tensor:
    """(5.6) M-step: ``Phi_tk = sum_n eta_tkn [(o_tk - m_tn)^2 + Sigma_tn] / sum_n eta_tkn`` (diagonal).

    Detections with no weight on a real source (missing, or all clutter) keep their ``obs_var``.

    Shape: eta (T, K, S, B), obs, obs_var (T, D, K, B), mask (T, K, B), m, var (T, D, N, B) -> (T, D, K, B).
    """
    w = eta[:, :, :m.shape[2]]                                                  # (T, K, N, B)
    spread = (obs[:, :, :, None] - m[:, :, None]).square_().add_(var[:, :, None])   # (T, D, K, N, B)
    total = w.sum(2)                                                            # (T, K, B)
    new = (w[:, None] * spread).sum(3) / total.clamp_min(1e-12)[:, None]
    keep = ((total <= 1e-12) | ~mask)[:, None]
    return torch.where(keep, obs_var, new.clamp_min(MIN_STD**2))


# ----------------------------------------------------------------------------- (5.8)


def elbo_terms(eta: Tensor, obs: Tensor, obs_var: Tensor, m: Tensor, var: Tensor,
               dvae_loss: Tensor | None) -> dict[str, Tensor]:
    """(5.8) ELBO terms of one iteration, per sample.

    - ``assignment_entropy``: ``-sum_tk sum_s eta log eta`` (clutter included);
    - ``expected_loglik``: ``sum_tkn eta_tkn E_q[log N(o_tk; s_tn, Phi_tk)]`` over real sources (untempered);
    - ``gaussian_entropy``: ``sum_tnd 1/2 log(2 pi e Sigma_tnd)``;
    - ``dvae_loss``: the dynamics' loss on the current means (batch mean; NaN when it has none).

    Shape: eta (T, K, S, B), obs, obs_var (T, D, K, B), m, var (T, D, N, B) -> dict of (B,).
    """
    N = m.shape[2]
    ent_w = -(eta * torch.log(eta.clamp_min(1e-30))).sum((0, 1, 2))
    sq = ((obs[:, :, :, None] - m[:, :, None]).square_().add_(var[:, :, None])
          .div_(obs_var[:, :, :, None]).sum(1))                                 # (T, K, N, B)
    log_norm = (LOG_2PI + torch.log(obs_var)).sum(1)[:, :, None]                # (T, K, 1, B)
    exp_ll = (eta[:, :, :N] * (-0.5 * (sq + log_norm))).sum((0, 1, 2))
    ent_s = 0.5 * (torch.log(var) + LOG_2PI + 1.0).sum((0, 1, 2))
    loss = torch.full_like(ent_s, float("nan")) if dvae_loss is None else dvae_loss.expand_as(ent_s)
    return {"assignment_entropy": ent_w, "expected_loglik": exp_ll, "gaussian_entropy": ent_s, "dvae_loss": loss}


# ----------------------------------------------------------------------------- fast SRNN recursions


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
      means (h_t only depends on m_{1:t-1}), which saves the encoder's LSTM pass.

    Build a new one whenever the weights change (fine-tuning).

    Args:
        model: an SRNN with the Gaussian head in eval mode; with ``dim_RNN_g > 0`` :meth:`encode` falls
            back to :meth:`SRNN.inference`.
    """

    @torch.no_grad()
    def __init__(self, model: SRNN):
        self.model = model
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
        # (4.1) input path: standardise -> mlp_x_h -> first LSTM layer's input projection (+ both biases)
        self.x_stack = _fold_stack(_dense_layers(model.mlp_x_h) + [(self.w_ih[0], self.b_lstm[0], None)],
                                   1.0 / std, -mean / std)
        self.b_lstm = [b[:, None] for b in self.b_lstm]
        # (4.3) generation on [h, z]; heads mapped to data space: rows 0..D-1 mean, D..2D-1 log variance
        heads = (torch.cat([model.gen_out.weight * std[:, None], model.gen_logvar.weight]).detach(),
                 torch.cat([model.gen_out.bias * std + mean, model.gen_logvar.bias + 2 * torch.log(std)]).detach(),
                 None)
        one, zero = mean.new_ones(H + Z), mean.new_zeros(H + Z)
        self.gen = self._stack(_dense_layers(model.mlp_hz_x), heads, one, zero)
        # (4.2) prior on [h, z_prev]; heads: rows 0..Z-1 mean, Z..2Z-1 log variance
        heads = (torch.cat([model.prior_mean.weight, model.prior_logvar.weight]).detach(),
                 torch.cat([model.prior_mean.bias, model.prior_logvar.bias]).detach(), None)
        self.prior = self._stack(_dense_layers(model.mlp_hz_z), heads, one, zero)
        self.log_std = torch.log(std)[:, None]                         # (D, 1), for the loss in feature space
        # (4.4) inference on [h, features(x), z_prev]; heads: rows 0..Z-1 mean, Z..2Z-1 log std
        self.enc = None
        if model.rnn_g is None:
            heads = (torch.cat([model.inf_mean.weight, 0.5 * model.inf_logvar.weight]).detach(),
                     torch.cat([model.inf_mean.bias, 0.5 * model.inf_logvar.bias]).detach(), None)
            self.enc = self._stack(_dense_layers(model.mlp_gz_z), heads, torch.cat([one[:H], 1.0 / std, one[H:]]),
                                   torch.cat([zero[:H], -mean / std, zero[H:]]))
        self.last: tuple[Tensor, Tensor] | None = None                 # (m, h) of the last filter pass

    @staticmethod
    def _stack(mlp, heads, in_scale, in_shift):
        """Fold ``mlp + [heads]``; an empty MLP gets an identity first layer, so that the first layer (whose
        input is split between per-frame and precomputed parts) is never the heads."""
        if not mlp:
            n = in_scale.numel()
            mlp = [(torch.eye(n, dtype=in_scale.dtype, device=in_scale.device), torch.zeros_like(in_scale), None)]
        return _fold_stack(mlp + [heads], in_scale, in_shift)

    def encode(self, m: Tensor, sample: bool) -> dict[str, Tensor]:
        """(4.1) h and (4.4) q(z) on the sequences m (T, D, M); ``sample=False`` propagates the posterior mean.

        Returns a dict of (T, ., M) tensors: h, z, z_mean, z_logvar (as :meth:`SRNN.inference`).
        """
        if self.last is not None and self.last[0].shape == m.shape and torch.equal(self.last[0], m):
            h = self.last[1]
        else:
            h = self.model.deterministic(m.permute(2, 0, 1)).permute(1, 2, 0)    # one LSTM call
        if self.enc is None:
            out = self.model.inference(m.permute(2, 0, 1), h.permute(2, 0, 1), sample=sample)
            z, z_mean, z_logvar = (x.permute(1, 2, 0) for x in out)
            return {"h": h, "z": z, "z_mean": z_mean, "z_logvar": z_logvar}
        H, D, Z = self.H, self.D, self.Z
        (W1, b1, act1), rest = self.enc[0], self.enc[1:]
        pre = W1[:, :H] @ h + W1[:, H:H + D] @ m + b1                  # (T, out_1, M)
        w_z = W1[:, H + D:]
        eps = torch.randn(m.shape[0], Z, m.shape[2], dtype=m.dtype, device=m.device) if sample else None
        z = m.new_zeros(Z, m.shape[2])
        zs, outs = [], []
        for t in range(m.shape[0]):
            out = _apply(rest, _act(torch.addmm(pre[t], w_z, z), act1))     # (2Z, M): mean, log std
            z = torch.addcmul(out[:Z], torch.exp(out[Z:]), eps[t]) if sample else out[:Z]
            zs.append(z)
            outs.append(out)
        out = torch.stack(outs)
        return {"h": h, "z": torch.stack(zs), "z_mean": out[:, :Z], "z_logvar": 2 * out[:, Z:]}

    def filter(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, z: Tensor
               ) -> tuple[Tensor, Tensor]:
        """(5.4) E-S recursion: DVAE prediction (4.1)+(4.3) driven by this pass's m_{t-1}, fused with the
        observations by :func:`fuse_gaussians`.

        Shape: prec, info (T, D, M), start, start_var (D, M), z (T, Z, M) -> (m, var) (T, D, M).
        """
        T, D, M = prec.shape
        H, L = self.H, len(self.w_hh)
        (W1, b1, act1), rest = self.gen[0], self.gen[1:]
        zproj = W1[:, H:] @ z + b1                                     # (T, out_1, M)
        w_h = W1[:, :H]
        hs = [prec.new_zeros(H, M) for _ in range(L)]
        cs = [prec.new_zeros(H, M) for _ in range(L)]
        means, variances, h_top = [], [], []
        m_prev = None
        for t in range(T):
            for layer in range(L):
                if layer > 0:
                    x_in = torch.addmm(self.b_lstm[layer], self.w_ih[layer], hs[layer - 1])
                elif m_prev is None:                                   # x_0 = 0: zero LSTM input at t = 1
                    x_in = self.b_lstm[0]
                else:
                    x_in = _apply(self.x_stack, m_prev)
                hs[layer], cs[layer] = _lstm_cell(torch.addmm(x_in, self.w_hh[layer], hs[layer]), cs[layer], H)
            h_top.append(hs[-1])
            if t == 0:
                mu, v = start, start_var
            else:
                out = _apply(rest, _act(torch.addmm(zproj[t], w_h, hs[-1]), act1))   # (2D, M)
                mu, v = out[:D], torch.exp(out[D:])
            m_prev, var = fuse_gaussians(prec[t], info[t], mu, v)
            means.append(m_prev)
            variances.append(var)
        m = torch.stack(means)
        self.last = (m, torch.stack(h_top))
        return m, torch.stack(variances)

    def loss(self, m: Tensor, enc: dict[str, Tensor], beta: float) -> Tensor:
        """(4.5) the DVAE loss of x = m with the encoder pass ``enc`` (:meth:`encode`), as :meth:`SRNN.loss`
        with kl_weight 1: Gaussian NLL in feature space + beta KL(q || p), averaged over frames and sequences.

        Shape: m (T, D, M), enc tensors (T, ., M) -> scalar.
        """
        H, D, Z = self.H, self.D, self.Z
        h, z = enc["h"], enc["z"]

        def first(stack, other):                                       # first layer on [h, other], all frames
            W, b, act = stack[0]
            return _act(W[:, :H] @ h + W[:, H:] @ other + b, act)

        out = _apply_seq(self.gen[1:], first(self.gen, z))             # (T, 2D, M) data-space mean, log var
        err = (m - out[:, :D]).square_().mul_(torch.exp(-out[:, D:]))
        recon = 0.5 * (out[:, D:] - 2 * self.log_std + err).sum(1).mean() + D * HALF_LOG_2PI
        z_prev = torch.cat([torch.zeros_like(z[:1]), z[:-1]])
        prior = _apply_seq(self.prior[1:], first(self.prior, z_prev))  # (T, 2Z, M) mean, log var
        p_mean, p_logvar = prior[:, :Z], prior[:, Z:]
        q_mean, q_logvar = enc["z_mean"], enc["z_logvar"]
        kl = 0.5 * (p_logvar - q_logvar + (torch.exp(q_logvar) + (q_mean - p_mean) ** 2) * torch.exp(-p_logvar) - 1)
        return recon + beta * kl.sum(1).mean()


# ----------------------------------------------------------------------------- the DVAE dynamics


class SRNNDynamics:
    """The SRNN DVAE as the VEM's source model (:class:`Dynamics`): E-Z (5.3), E-S (5.4), fine-tuning (5.5).

    Args:
        model: a trained SRNN with the Gaussian head (data space = normalised coordinates).
        z_mode: "sample" draws z from q(z | m); "mean" propagates the posterior mean (§5.3).
        finetune: take one Adam step on the DVAE loss (4.5) with x = m per iteration (§5.5).
        lr: fine-tuning learning rate.
        beta: KL weight of the loss.
    """

    def __init__(self, model: SRNN, z_mode: str = "sample", finetune: bool = False, lr: float = 1e-3,
                 beta: float = 1.0):
        if z_mode not in ("sample", "mean"):
            raise ValueError(f"z_mode must be 'sample' or 'mean', got {z_mode!r}")
        self.model, self.z_mode, self.finetune, self.lr, self.beta = model.eval(), z_mode, finetune, lr, beta
        self.optimizer: torch.optim.Optimizer | None = None
        self.fast = FastSRNN(self.model)

    def for_batch(self) -> SRNNDynamics:
        """Self, or (fine-tuning) a deep copy of the DVAE with a fresh Adam, so no batch sees another's updates."""
        if not self.finetune:
            return self
        other = SRNNDynamics(copy.deepcopy(self.model), self.z_mode, True, self.lr, self.beta)
        other.optimizer = torch.optim.Adam(other.model.parameters(), lr=self.lr)
        return other

    def e_z(self, m: Tensor, with_loss: bool = True) -> tuple[Tensor, Tensor | None]:
        """(5.3) z (T, Z, M) from the encoder (4.4) run on the means m (T, D, M), and (``with_loss``) the
        DVAE loss (4.5) with x = m. (5.5) With ``finetune``: one Adam step on that loss; z is taken before
        the step, the E-S of the same iteration uses the updated weights."""
        sample = self.z_mode == "sample"
        if not self.finetune:
            with torch.no_grad():
                enc = self.fast.encode(m, sample)
                return enc["z"], (self.fast.loss(m, enc, self.beta) if with_loss else None)
        x = m.permute(2, 0, 1)
        with torch.enable_grad():
            fwd = self.model(x, sample_z=sample)
            loss = self.model.loss(x, fwd, self.beta)[0]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.fast = FastSRNN(self.model)
        return fwd["z"].detach().permute(1, 2, 0), loss.detach()

    @torch.no_grad()
    def e_s(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, z: Tensor
            ) -> tuple[Tensor, Tensor]:
        """(5.4) E-S, recursive over t: the DVAE prediction (mu_theta, sigma^2_theta) of frame t from
        h_t (4.1) driven by *this* iteration's m_{t-1} and z_t (4.3), fused with the observations.
        Frame 1 uses the pinned prior N(start, start_var).

        Shape: prec, info (T, D, M), start, start_var (D, M), z (T, Z, M) -> (m, var) (T, D, M).
        """
        return self.fast.filter(prec, info, start, start_var, z)


# ----------------------------------------------------------------------------- iterations


def vem_iteration(obs: Tensor, obs_var: Tensor, mask: Tensor, m: Tensor, var: Tensor, start: Tensor,
                  dynamics: Dynamics, settings: VEMSettings, with_loss: bool = False
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """One VEM iteration: E-W (5.2) and E-Z (5.3) on the previous estimates, then E-S (5.4).
    ``with_loss`` asks the dynamics for its loss (ELBO term of §5.8).

    Shape: obs, obs_var (T, D, K, B), mask (T, K, B), m, var (T, D, N, B), start (D, N, B)
    -> (m, var, eta, dynamics loss or None) with eta (T, K, S, B).
    """
    T, D, N, B = m.shape
    eta = e_w(obs, obs_var, mask, m, var, settings.temperature, settings.clutter_logprob)
    context, loss = dynamics.e_z(m.reshape(T, D, N * B), with_loss)
    prec, info = observation_information(eta[:, :, :N], obs, obs_var)
    start = start.reshape(D, N * B)
    m_new, var_new = dynamics.e_s(prec.reshape(T, D, N * B), info.reshape(T, D, N * B), start,
                                  torch.full_like(start, settings.pinned_var), context)
    return m_new.reshape(T, D, N, B), var_new.reshape(T, D, N, B), eta, loss


def constant_start(start: Tensor, T: int, std_ratio: float) -> tuple[Tensor, Tensor]:
    """Initial state of a window (§5.7): every frame at the start box, Sigma = Phi of that box (5.1).

    Shape: start (D, N, B) -> (m, var) (T, D, N, B).
    """
    var = (std_ratio * box_sizes(start, 0)).clamp_min(MIN_STD) ** 2
    return start.expand(T, *start.shape).contiguous(), var.expand(T, *var.shape).contiguous()


def windowed_init(obs: Tensor, obs_var: Tensor, mask: Tensor, init: Tensor, dynamics: Dynamics,
                  settings: VEMSettings) -> tuple[Tensor, Tensor]:
    """(5.7) initialisation: windows of ``init_subseq_len`` frames, each started at a constant box (the
    ``init`` box, then the previous window's last mean) with Sigma = Phi, refined by ``init_iter``
    iterations of (5.2)-(5.4); the windows are concatenated.

    Shape: obs, obs_var (T, D, K, B), mask (T, K, B), init (D, N, B) -> (m, var) (T, D, N, B).
    """
    T = obs.shape[0]
    start, means, variances = init, [], []
    for t0 in range(0, T, settings.init_subseq_len):
        sl = slice(t0, min(t0 + settings.init_subseq_len, T))
        m, var = constant_start(start, sl.stop - sl.start, settings.std_ratio)
        for _ in range(settings.init_iter):
            m, var, _, _ = vem_iteration(obs[sl], obs_var[sl], mask[sl], m, var, start, dynamics, settings)
        means.append(m)
        variances.append(var)
        start = m[-1]
    return torch.cat(means), torch.cat(variances)


def run_vem(det: Tensor, det_mask: Tensor | None, init: Tensor, dynamics: Dynamics, settings: VEMSettings,
            image_size: Tensor | None = None) -> VEMResult:
    """Track the N sources of a batch of samples with the VEM of §5.

    Args:
        det: detector boxes (x1, y1, x2, y2) in pixels, NaN where missing.
        det_mask: present detections (None = every valid box); zero-area/inverted boxes are skipped.
        init: the box each source starts from (pixels); must be valid boxes.
        dynamics: the source model (:class:`SRNNDynamics`, or :class:`model.kf_vem.KalmanDynamics`);
            ``dynamics.for_batch()`` is used, so fine-tuning never leaks across calls.
        settings: :class:`VEMSettings`.
        image_size: (width, height) per sample; needed when ``settings.normalize == "image_size"``.

    Shape:
        det (B, T, K, 4), det_mask (B, T, K), init (B, N, 4), image_size (B, 2).

    Returns:
        :class:`VEMResult`, frames-first, in pixels.
    """
    dynamics = dynamics.for_batch()
    device = det.device
    if image_size is None:
        if settings.normalize == "image_size":
            raise ValueError("normalize = 'image_size' needs image_size")
        image_size = torch.zeros(det.shape[0], 2)
    scale = box_scale(image_size, settings.normalize, settings.normalize_range).to(device).T   # (4, B)
    with torch.no_grad():
        mask = valid_detections(det, det_mask).permute(1, 2, 0).contiguous()                  # (T, K, B)
        obs = det.to(torch.float32).permute(1, 3, 2, 0) / scale[:, None]                      # (T, 4, K, B)
        obs = torch.where(mask[:, None], obs, torch.zeros_like(obs)).contiguous()
        start = (init.to(device, torch.float32).permute(2, 1, 0) / scale[:, None]).contiguous()  # (4, N, B)
        obs_var = observation_variance(obs, mask, settings.std_ratio)
        m, var = windowed_init(obs, obs_var, mask, start, dynamics, settings)
        iter_tracks = [m] if settings.save_all_iters else None
        elbo: list[dict[str, Tensor]] = []
        eta = None
        for _ in range(settings.n_iter):
            m, var, eta, loss = vem_iteration(obs, obs_var, mask, m, var, start, dynamics, settings,
                                              settings.log_elbo)
            if settings.update_phi:
                obs_var = update_observation_variance(eta, obs, mask, m, var, obs_var)
            if settings.log_elbo:
                elbo.append(elbo_terms(eta, obs, obs_var, m, var, loss))
            if iter_tracks is not None:
                iter_tracks.append(m)
        if eta is None:
            eta = e_w(obs, obs_var, mask, m, var, settings.temperature, settings.clutter_logprob)
        px = scale[:, None]                                                                   # (4, 1, B)

        def pixels(x: Tensor) -> Tensor:                        # (..., T, 4, N, B) -> (..., B, T, N, 4)
            return (x * px).movedim(-1, -4).transpose(-1, -2)

        return VEMResult(tracks=pixels(m), var=pixels(var * px), eta=eta.permute(3, 0, 1, 2),
                         elbo={k: torch.stack([e[k] for e in elbo]) for k in elbo[0]} if elbo else {},
                         iter_tracks=None if iter_tracks is None else pixels(torch.stack(iter_tracks)))
