"""MixDVAE variational EM for multi-object tracking (docs/method.md §5).

N sources (objects) share one DVAE; detections o_tk are assigned to sources by the discrete
variable w_tk. Sizes: B samples, T frames, K detection slots, N sources, D = 4 box coordinates
(x1, y1, x2, y2), S = N, or N + 1 with the clutter class (last).

- (5.1) observation variance Phi_tk               -> :func:`observation_variance`
- (5.2) E-W  eta_tkn = q(w_tk = n)                  -> :func:`e_w`
- (5.3) E-Z  z from the DVAE encoder on m           -> :meth:`SRNNDynamics.e_z`
- (5.4) E-S  information-form fusion, recursive     -> :func:`observation_information`,
                                                       :func:`model.fusion.fuse_gaussians`,
                                                       :meth:`SRNNDynamics.e_s` (``FastSRNN.filter``)
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

from model.fast_srnn import FastSRNN
from model.srnn import SRNN
from utils.boxes import valid_boxes
from utils.config import defaults_from
from utils.config_keys_mot import VEM_MOT

MIN_STD = 1e-4        # floor of the observation std (normalised units, ~0.2 px at 1920 px)
MISSING_VAR = 1.0     # harmless finite Phi of a missing detection (its weight is exactly zero)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
@defaults_from(VEM_MOT, n_iter="VEM.N_iter_total", init_iter="VEM.init_iter_number",
               init_subseq_len="VEM.init_subseq_len", std_ratio="VEM.std_ratio",
               temperature="VEM.assignment_temperature", clutter_logprob="VEM.clutter_logprob",
               update_phi="VEM.update_phi", save_all_iters="VEM.save_all_iters", normalize="DataFrame.normalize",
               normalize_range="DataFrame.normalize_range")
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

    n_iter: int
    init_iter: int
    init_subseq_len: int
    std_ratio: float
    temperature: float
    clutter_logprob: float | None
    update_phi: bool
    save_all_iters: bool
    log_elbo: bool = True
    pinned_var: float = 1e-5
    normalize: str
    normalize_range: tuple[float, float]


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


def valid_detections(det: Tensor, det_mask: Tensor | None = None, image_size: Tensor | None = None) -> Tensor:
    """Detections the VEM uses: finite, x2 > x1 and y2 > y1, in ``det_mask``, and (given a positive
    ``image_size``) not far outside the image: every coordinate within one image size of it.

    Zero-area and inverted boxes are skipped (treated as missing): their Phi (5.1) would be zero. An
    absurd box (a detector glitch at 1e9 px) would drag its source's whole track along: also skipped.
    Shape: det (B, ..., 4), det_mask (B, ...), image_size (B, 2) (width, height) -> (B, ...) bool.
    """
    ok = valid_boxes(det)
    if image_size is not None:
        wh = image_size.to(det.device, det.dtype).reshape(image_size.shape[0], *[1] * (det.dim() - 2), 2)
        wh = torch.cat([wh, wh], -1)
        far = ((det < -wh) | (det > 2 * wh)).any(-1) & (wh > 0).all(-1)
        ok = ok & ~far
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


class SRNNDynamics:
    """The SRNN DVAE as the VEM's source model (:class:`Dynamics`): E-Z (5.3), E-S (5.4), fine-tuning (5.5).

    Args:
        model: a trained SRNN with the Gaussian head (data space = normalised coordinates).
        z_mode: "sample" draws z from q(z | m); "mean" propagates the posterior mean (§5.3).
        finetune: take one Adam step on the DVAE loss (4.5) with x = m per iteration (§5.5).
        lr: fine-tuning learning rate.
        beta: KL weight of the loss.
        var_scale: E-S uses var_scale x sigma^2_theta (variance inflation; 1 = the DVAE's own variance).
        es_mode: "filter" (the paper's E-S), "propagate" or "smoother" (:class:`model.fast_srnn.FastSRNN`).
    """

    def __init__(self, model: SRNN, z_mode: str = "sample", finetune: bool = False, lr: float = 1e-3,
                 beta: float = 1.0, var_scale: float = 1.0, es_mode: str = "filter"):
        if z_mode not in ("sample", "mean"):
            raise ValueError(f"z_mode must be 'sample' or 'mean', got {z_mode!r}")
        self.model, self.z_mode, self.finetune, self.lr, self.beta = model.eval(), z_mode, finetune, lr, beta
        self.var_scale, self.es_mode = var_scale, es_mode
        self.optimizer: torch.optim.Optimizer | None = None
        self.fast = FastSRNN(self.model, var_scale, es_mode)

    def for_batch(self) -> SRNNDynamics:
        """Self, or (fine-tuning) a deep copy of the DVAE with a fresh Adam, so no batch sees another's updates."""
        if not self.finetune:
            return self
        other = SRNNDynamics(copy.deepcopy(self.model), self.z_mode, True, self.lr, self.beta, self.var_scale,
                             self.es_mode)
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
        self.fast = FastSRNN(self.model, self.var_scale, self.es_mode)
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
        mask = valid_detections(det, det_mask, image_size).permute(1, 2, 0).contiguous()      # (T, K, B)
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
