"""MixDVAE variational EM for multi-object tracking (docs/method.md §5).

N sources (objects) share one DVAE; detections o_tk are assigned to sources by the discrete
variable w_tk. Sizes: B samples, T frames, K detection slots, N sources, D = 4 box coordinates
(x1, y1, x2, y2), S = N, or N + 1 with the clutter class (last).

- (5.1) observation variance Phi_tk               -> :func:`model.mot_observation.observation_variance`
- (5.2) E-W  eta_tkn = q(w_tk = n)                  -> :func:`e_w`
- (5.3) E-Z  z from the DVAE encoder on m           -> :meth:`model.dvae_dynamics.SRNNDynamics.e_z`
- (5.4) E-S  information-form fusion, recursive     -> :func:`observation_information`,
                                                       :func:`model.fusion.fuse_gaussians`,
                                                       :meth:`SRNNDynamics.e_s` (``FastSRNN.filter``)
- (5.5) fine-tuning, one Adam step per iteration    -> :meth:`SRNNDynamics.e_z` (``finetune=True``)
- (5.6) M-step on Phi (optional)                    -> :func:`model.mot_observation.update_observation_variance`
- (5.7) windowed initialisation                     -> :func:`windowed_init`
- (5.8) ELBO terms per iteration                    -> :func:`model.vem_elbo.elbo_terms`
- iterations until convergence (or a cap)           -> :func:`iterate`
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

from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from model.boxes import MIN_STD, box_scale, box_sizes, valid_detections
from model.dvae_dynamics import SRNNDynamics  # noqa: F401  (the DVAE source model; imported from here too)
from model.mot_convergence import calm_counts, converged
from model.mot_observation import MISSING_VAR, observation_variance, update_observation_variance  # noqa: F401
from model.vem_elbo import elbo_terms, logged_iteration
from utils.config import defaults_from
from utils.config_keys_mot import VEM_MOT

@dataclass(frozen=True)
@defaults_from(VEM_MOT, n_iter="VEM.N_iter_total", init_iter="VEM.init_iter_number", tol="VEM.convergence_tol",
               init_subseq_len="VEM.init_subseq_len", std_ratio="VEM.std_ratio",
               temperature="VEM.assignment_temperature", clutter_logprob="VEM.clutter_logprob",
               update_phi="VEM.update_phi", save_all_iters="VEM.save_all_iters", dvae_loss_every="VEM.dvae_loss_every",
               normalize="DataFrame.normalize", normalize_range="DataFrame.normalize_range")
class VEMSettings:
    """Settings of the MOT VEM (§5); INI names in brackets.

    Attributes:
        n_iter: VEM iterations on the whole sequence after initialisation ([VEM] N_iter_total).
        init_iter: iterations per initialisation window (init_iter_number), §5.7.
        init_subseq_len: frames per initialisation window (init_subseq_len), §5.7.
        tol: convergence tolerance (convergence_tol): a sample stops iterating once its assignments eta
            changed by at most ``tol`` (:func:`model.mot_convergence.eta_change`: its largest or its mean change)
            for :data:`model.mot_convergence.CALM_ITERS` iterations in a row; ``n_iter`` and ``init_iter`` are then
            caps. 0 = always run them all.
        std_ratio: observation std / detection width (x) or height (y), §5.1.
        temperature: tau, multiplies the quadratic term of E-W (assignment_temperature), §5.2.
        clutter_logprob: log-likelihood of the clutter class relative to a real source at zero
            distance (None = no clutter class), §5.2.
        update_phi: re-estimate Phi in every iteration (§5.6) instead of keeping (5.1).
        save_all_iters: also return the tracks after the initialisation and after every iteration.
        log_elbo: compute the ELBO terms of every iteration (§5.8).
        dvae_loss_every: their DVAE-loss term, which costs one extra DVAE pass, is computed at iteration 1,
            every ``dvae_loss_every``-th and the last (:func:`model.vem_elbo.logged_iteration`) and carried
            forward in between (dvae_loss_every; 1 = every iteration).
        pinned_var: variance of the dynamics' prior at the first frame of a window, §5.4.
        normalize: "fixed" (divide by ``normalize_range``) or "image_size" (each sample's size), §5.
        normalize_range: (width, height) of the fixed normalisation.
    """

    n_iter: int
    init_iter: int
    init_subseq_len: int
    tol: float
    std_ratio: float
    temperature: float
    clutter_logprob: float | None
    update_phi: bool
    save_all_iters: bool
    dvae_loss_every: int
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
        iterations: (B,) iterations each sample ran after the initialisation (``n_iter`` unless ``tol``).

    A sample that converged before ``n_iter`` keeps its last values in ``elbo`` and ``iter_tracks``.
    """

    tracks: Tensor
    var: Tensor
    eta: Tensor
    elbo: dict[str, Tensor]
    iter_tracks: Tensor | None = None
    iterations: Tensor | None = None


class Dynamics(Protocol):
    """What the VEM needs from a source model (the DVAE, or a Kalman model for KF-VEM).

    Sequences are (T, D, M) with M = N * B sources of all samples; see the module docstring.
    """

    def for_batch(self) -> Dynamics:
        """The object to use for one batch (a fresh copy when it adapts its weights).

        A source model that caches per-source state may also define ``select(columns)``: the VEM then
        continues on the sources ``columns`` (of M) only (samples that converged are dropped)."""

    def e_z(self, m: Tensor, with_loss: bool = True) -> tuple[Any, Tensor | None]:
        """E-Z on the current means m (T, D, M): (context for :meth:`e_s`, model loss (scalar) or None)."""

    def e_s(self, prec: Tensor, info: Tensor, start: Tensor, start_var: Tensor, context: Any
            ) -> tuple[Tensor, Tensor]:
        """E-S: posterior (mean, var), each (T, D, M), from the observation precision and information
        (T, D, M) and the first-frame prior N(start, start_var), each (D, M)."""


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


def _take(columns: Tensor, *tensors: Tensor) -> list[Tensor]:
    """Every tensor restricted to the samples ``columns`` of its last (batch) axis."""
    return [x[..., columns] for x in tensors]


def iterate(obs: Tensor, obs_var: Tensor, mask: Tensor, m: Tensor, var: Tensor, start: Tensor,
            dynamics: Dynamics, settings: VEMSettings, n_iter: int, record: Any = None, loss_every: int = 0
            ) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]:
    """Up to ``n_iter`` VEM iterations (5.2)-(5.4), with (5.6) when ``update_phi``.

    With ``settings.tol > 0`` a sample stops once its eta changed by at most ``tol``
    (:func:`model.mot_convergence.converged`), and the iterations continue on the other samples only
    (their tensors are compacted, so finished samples cost nothing); the batch stops when all have
    converged. ``record(i, active, m, var, eta, obs_var, loss)`` (optional) is called after every
    iteration i (1-based) with the still-active sample indices and their tensors; ``loss`` is the
    dynamics' loss at the iterations :func:`model.vem_elbo.logged_iteration` picks with ``loss_every``
    (0 = never), else None.

    Shape: obs, obs_var (T, D, K, B), mask (T, K, B), m, var (T, D, N, B), start (D, N, B)
    -> (m, var, eta (T, K, S, B) or None when n_iter = 0, obs_var, iterations per sample (B,)).
    """
    B, N = m.shape[-1], m.shape[2]
    active = torch.arange(B, device=m.device)
    iterations = torch.zeros(B, dtype=torch.long, device=m.device)
    calm = torch.zeros(2, B, dtype=torch.long, device=m.device)       # calm iterations in a row: largest, mean
    out_m, out_var, out_eta, out_obs_var = m, var, None, obs_var
    o, ov, mk, st, eta_prev, eta = obs, obs_var, mask, start, None, None
    for i in range(1, n_iter + 1):
        with_loss = logged_iteration(i, n_iter, loss_every)
        m, var, eta, loss = vem_iteration(o, ov, mk, m, var, st, dynamics, settings, with_loss)
        iterations[active] += 1
        if settings.update_phi:
            ov = update_observation_variance(eta, o, mk, m, var, ov)
        if record is not None:
            record(i, active, m, var, eta, ov, loss)
        if settings.tol <= 0:
            continue
        calm = calm_counts(calm, eta, eta_prev, mk, settings.tol)
        eta_prev = eta
        done = converged(calm)
        if not done.any():
            continue
        if out_eta is None:
            out_m, out_var, out_obs_var = m.new_empty(out_m.shape), var.new_empty(out_var.shape), ov.clone()
            out_eta = eta.new_zeros(*eta.shape[:-1], B)
        for out, x in ((out_m, m), (out_var, var), (out_eta, eta), (out_obs_var, ov)):
            out[..., active[done]] = x[..., done]
        keep = (~done).nonzero()[:, 0]
        active = active[keep]
        if active.numel() == 0:
            return out_m, out_var, out_eta, out_obs_var, iterations
        select = getattr(dynamics, "select", None)
        if select is not None:
            select((torch.arange(N, device=keep.device)[:, None] * calm.shape[1] + keep).reshape(-1))
        o, ov, mk, st, m, var, eta, calm = _take(keep, o, ov, mk, st, m, var, eta, calm)
        eta_prev = eta
    if out_eta is None:                                   # nothing converged early: no compaction happened
        return m, var, eta, ov, iterations
    for out, x in ((out_m, m), (out_var, var), (out_eta, eta), (out_obs_var, ov)):
        out[..., active] = x
    return out_m, out_var, out_eta, out_obs_var, iterations


def windowed_init(obs: Tensor, obs_var: Tensor, mask: Tensor, init: Tensor, dynamics: Dynamics,
                  settings: VEMSettings) -> tuple[Tensor, Tensor]:
    """(5.7) initialisation: windows of ``init_subseq_len`` frames, each started at a constant box (the
    ``init`` box, then the previous window's last mean) with Sigma = Phi, refined by ``init_iter``
    iterations of (5.2)-(5.4) (fewer for the samples that converge, see :func:`iterate`); the windows
    are concatenated.

    Shape: obs, obs_var (T, D, K, B), mask (T, K, B), init (D, N, B) -> (m, var) (T, D, N, B).
    """
    T = obs.shape[0]
    start, means, variances = init, [], []
    window = replace(settings, update_phi=False)
    for t0 in range(0, T, settings.init_subseq_len):
        sl = slice(t0, min(t0 + settings.init_subseq_len, T))
        m, var = constant_start(start, sl.stop - sl.start, settings.std_ratio)
        m, var, *_ = iterate(obs[sl], obs_var[sl], mask[sl], m, var, start, dynamics, window, settings.init_iter)
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
    # inference mode skips autograd's bookkeeping (7-10 % of this loop); a fine-tuned DVAE needs gradients
    with torch.no_grad() if getattr(dynamics, "finetune", False) else torch.inference_mode():
        mask = valid_detections(det, det_mask, image_size).permute(1, 2, 0).contiguous()      # (T, K, B)
        obs = det.to(torch.float32).permute(1, 3, 2, 0) / scale[:, None]                      # (T, 4, K, B)
        obs = torch.where(mask[:, None], obs, torch.zeros_like(obs)).contiguous()
        start = (init.to(device, torch.float32).permute(2, 1, 0) / scale[:, None]).contiguous()  # (4, N, B)
        obs_var = observation_variance(obs, mask, settings.std_ratio)
        m, var = windowed_init(obs, obs_var, mask, start, dynamics, settings)
        iter_tracks = [m] if settings.save_all_iters else None
        elbo: list[dict[str, Tensor]] = []

        def record(i: int, active: Tensor, m_a: Tensor, var_a: Tensor, eta_a: Tensor, obs_var_a: Tensor,
                   loss: Tensor | None) -> None:
            """Per-iteration outputs over the whole batch; converged samples keep their last values."""
            if iter_tracks is not None:
                iter_tracks.append(iter_tracks[-1].index_copy(3, active, m_a))
            if settings.log_elbo:
                terms = elbo_terms(eta_a, obs[..., active], obs_var_a, m_a, var_a, loss)
                last = elbo[-1] if elbo else {k: v.new_zeros(m.shape[-1]) for k, v in terms.items()}
                if not logged_iteration(i, settings.n_iter, settings.dvae_loss_every):   # carried forward
                    terms["dvae_loss"] = last["dvae_loss"][active]
                elbo.append({k: last[k].index_copy(0, active, v) for k, v in terms.items()})

        needs_record = settings.log_elbo or settings.save_all_iters
        m, var, eta, obs_var, iterations = iterate(obs, obs_var, mask, m, var, start, dynamics, settings,
                                                   settings.n_iter, record if needs_record else None,
                                                   settings.dvae_loss_every if settings.log_elbo else 0)
        if eta is None:
            eta = e_w(obs, obs_var, mask, m, var, settings.temperature, settings.clutter_logprob)
        if iter_tracks is not None:                       # the batch converged before n_iter: pad
            iter_tracks += iter_tracks[-1:] * (settings.n_iter + 1 - len(iter_tracks))
        elbo += elbo[-1:] * (settings.n_iter - len(elbo))
    px = scale[:, None]                                                                       # (4, 1, B)

    def pixels(x: Tensor) -> Tensor:                            # (..., T, 4, N, B) -> (..., B, T, N, 4)
        return (x * px).movedim(-1, -4).transpose(-1, -2)

    # out of inference mode, as ordinary tensors (new ones, or clones) that callers may edit in place
    return VEMResult(tracks=pixels(m), var=pixels(var * px), eta=eta.permute(3, 0, 1, 2).clone(),
                     elbo={k: torch.stack([e[k] for e in elbo]) for k in elbo[0]} if elbo else {},
                     iter_tracks=None if iter_tracks is None else pixels(torch.stack(iter_tracks)),
                     iterations=iterations.clone())
