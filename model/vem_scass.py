"""Variational EM of MixDVAE for single-channel audio source separation (docs/method.md §6).

Notation (shapes: B mixtures, N sources, T frames, F frequency bins):

- x (B, T, F) complex: mixture STFT; ``|x|^2`` its power.
- v_x (B, T, F): observation variance (6.1).
- eta (B, N, T, F): q(w_ft = n), the soft assignment of every time-frequency bin to a source.
- mu, v (B, N, T, F): mean (complex) and variance of q(s_ftn) = N_c(mu, v) (6.3).
- v_theta (B, N, T, F): variance of the DVAE prior p(s_tn | h_t, z_t) = N_c(0, diag v_theta) (4.3).

Equation -> function:

- level normalisation (not in the paper)  -> :func:`level_gain`
- (6.1) observation variance              -> :func:`observation_variance`
- (6.2) initialisation                    -> :func:`initial_prior_variance`
- (6.3) E-S, Wiener-like fusion (one t)   -> :func:`e_s_posterior`; recursion over t -> :func:`e_s`
- (6.3) power fed back into the DVAE      -> :func:`source_power`
- (6.4) E-Z                               -> :func:`e_z`
- (6.5) E-W                               -> :func:`e_w`
- (6.6) fine-tuning                       -> :func:`finetune_step`
- the whole VEM                           -> :func:`run_vem`

Everything is batched over mixtures (and, outside the DVAE calls, over sources); the only
Python loop inside an iteration is over time steps, with one DVAE step per source in it
(the N DVAEs differ, so they cannot share one batch).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from model.srnn import SRNN
from utils.config import defaults_from
from utils.config_keys_scass import VEM_SCASS

ES_POWER = ("sample", "expected")
Z_MODES = ("sample", "mean")
V_THETA_FLOOR = 1e-20  # keeps 1 / v_theta finite when exp() underflows
CALM_ITERS = 2         # a mixture has converged after this many iterations in a row with eta change <= tol


@dataclass(frozen=True)
@defaults_from(VEM_SCASS, n_iter="VEM.N_iter_total", ratio_v_theta_x="VEM.ratio_v_theta_x", v_x_floor="VEM.v_x_floor",
               es_power="VEM.es_power", z_mode="VEM.z_mode", finetune="Training.finetune", lr="Training.lr",
               beta="Training.beta", mixture_power_db="VEM.mixture_power_db",
               tol="VEM.convergence_tol")
class VEMSettings:
    """Settings of :func:`run_vem` (INI ``[VEM]`` and ``[Training]`` keys of the same names).

    Attributes:
        n_iter: number of VEM iterations (``N_iter_total``).
        ratio_v_theta_x: v_x = ratio * |x|^2 (6.1).
        v_x_floor: lower bound of v_x (silent bins would otherwise get a zero variance).
        es_power: power of source n at t-1 fed back into the DVAE recurrence (6.3):
            "sample" = |s|^2 of a sample of q(s_{t-1,n}) (original), "expected" = |mu|^2 + v.
        z_mode: E-Z (6.4) takes a sample of q(z) ("sample") or its mean ("mean").
        finetune: one Adam step per iteration on each DVAE (6.6), on copies of the DVAEs.
        lr: Adam learning rate for fine-tuning.
        beta: KL weight of the fine-tuning loss (4.5).
        mixture_power_db: every mixture is scaled so that the mean power of its STFT is this many dB
            (see :func:`level_gain`) and the estimates are scaled back; None keeps the input level.
        tol: convergence tolerance (``convergence_tol``): a mixture stops iterating once the mean absolute
            change of its eta is at most ``tol`` in :data:`CALM_ITERS` iterations in a row (``n_iter`` is then
            a cap); 0 = always run ``n_iter`` iterations.
    """

    n_iter: int
    ratio_v_theta_x: float
    v_x_floor: float
    es_power: str
    z_mode: str
    finetune: bool
    lr: float
    beta: float
    mixture_power_db: float | None
    tol: float

    def __post_init__(self):
        if self.es_power not in ES_POWER:
            raise ValueError(f"es_power must be one of {ES_POWER}, got {self.es_power!r}")
        if self.n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        if self.z_mode not in Z_MODES:
            raise ValueError(f"z_mode must be one of {Z_MODES}, got {self.z_mode!r}")


@dataclass
class VEMResult:
    """Output of :func:`run_vem`.

    Attributes:
        mu: (B, N, T, F) complex posterior means of the source STFTs (the estimates).
        v: (B, N, T, F) posterior variances.
        eta: (B, N, T, F) assignment posteriors (sum to 1 over N).
        v_theta: (B, N, T, F) DVAE prior variances of the last E-S step.
        history: per-iteration scalars: ``eta_change`` (mean |eta_i - eta_{i-1}| over the mixtures still
            iterating) and, when fine-tuning, ``finetune_loss`` (list over iterations of a list over sources);
            ``iterations``: iterations each mixture ran (list of B ints).
    """

    mu: Tensor
    v: Tensor
    eta: Tensor
    v_theta: Tensor
    history: dict[str, list] = field(default_factory=dict)


# ----------------------------------------------------------------------------- level
SILENT_POWER = 1e-30   # mean STFT power below which a mixture is treated as silent by level_gain


def level_gain(mix_power: Tensor, reference_db: float) -> Tensor:
    """Power gain that brings the mean STFT power of each mixture to ``10^(reference_db / 10)``.

    The DVAEs learned absolute power spectra: their features are log-powers standardised with
    fixed training statistics and their decoders output absolute variances, so a mixture 20 dB
    louder than the training data is out of their domain (SI-SDR about -40 dB
    at a gain of 32768). Scaling every mixture to one reference level, and the estimates back,
    makes the VEM gain-invariant. The mean power (not the mean log-power) is used because it varies
    least between mixtures of the training kind (about +-1.5 dB against +-6 dB for the log-power).
    Silent mixtures (mean power below :data:`SILENT_POWER`, where the float32 gain would overflow)
    and non-finite ones keep gain 1.

    Shape: mix_power (B, T, F) -> (B,).
    """
    mean = mix_power.mean(dim=(1, 2))
    usable = torch.isfinite(mean) & (mean > SILENT_POWER)
    return torch.where(usable, 10.0 ** (reference_db / 10.0) / torch.where(usable, mean, 1.0), 1.0)


# ----------------------------------------------------------------------------- (6.1)
def observation_variance(mix_power: Tensor, ratio: float, floor: float) -> Tensor:
    """(6.1) ``v_x,ft = max(ratio * |x_ft|^2, floor)``.

    Shape: mix_power (B, T, F) -> (B, T, F).
    """
    return (ratio * mix_power).clamp_min(floor)


# ----------------------------------------------------------------------------- (6.2)
def initial_prior_variance(dvaes: Sequence[SRNN], mix_power: Tensor) -> Tensor:
    """(6.2) ``v_theta,n^(0)`` = DVAE_n's reconstruction of the mixture power spectrogram.

    Shape: mix_power (B, T, F) -> (B, N, T, F).
    """
    return torch.stack([dvae.reconstruct(mix_power)[0] for dvae in dvaes], dim=1).clamp_min(V_THETA_FLOOR)


# ----------------------------------------------------------------------------- (6.3)
def e_s_posterior(x: Tensor, v_x: Tensor, eta: Tensor, v_theta: Tensor) -> tuple[Tensor, Tensor]:
    """(6.3) Wiener-like fusion of the DVAE prior N_c(0, v_theta) with the bins assigned to n.

    ``v = (eta / v_x + 1 / v_theta)^-1``, ``mu = v * eta * x / v_x``.

    Shape:
        x, v_x: (B, ..., F) (complex, real) broadcast against eta, v_theta: (B, N, ..., F);
        e.g. x (B, 1, F) and eta (B, N, F) for one frame. Returns (mu complex, v real) like eta.
    """
    precision_x = eta / v_x
    v = 1.0 / (precision_x + 1.0 / v_theta)
    return v * precision_x * x, v


def source_power(mu: Tensor, v: Tensor, mode: str) -> Tensor:
    """(6.3) Power of a source under q(s) = N_c(mu, v): a sample's ``|s|^2`` or ``E|s|^2 = |mu|^2 + v``.

    "sample" draws ``s = mu + sqrt(v / 2) (e_r + i e_i)``, e_r, e_i ~ N(0, 1) independent: a proper
    circular complex Gaussian of variance v.

    Shape: mu (...) complex, v (...) real -> (...) real.
    """
    if mode == "expected":
        return mu.real.square() + mu.imag.square() + v
    std = torch.sqrt(0.5 * v)
    re = mu.real + std * torch.randn_like(v)
    im = mu.imag + std * torch.randn_like(v)
    return re.square() + im.square()


def e_s(dvaes: Sequence[SRNN], x: Tensor, v_x: Tensor, eta: Tensor, z: Sequence[Tensor],
            es_power: str) -> tuple[Tensor, Tensor, Tensor, Tensor, list[Tensor]]:
    """(6.3) E-S: the time recursion of every source's DVAE fused with the mixture.

    At each t, DVAE_n's recurrence (4.1) is driven by the power of source n at t-1 (from this
    iteration's q(s_{t-1,n}), see :func:`source_power`; x_0 = 0), its decoder (4.3) with z_t
    gives v_theta,tn, and :func:`e_s_posterior` gives q(s_tn).

    Args:
        dvaes: N IS-head SRNNs, one per source.
        x: mixture STFT.
        v_x: observation variance (6.1).
        eta: assignment posteriors.
        z: per source, latent sequence from E-Z (6.4).
        es_power: "sample" or "expected".

    Shape:
        x (B, T, F) complex; v_x (B, T, F); eta (B, N, T, F); z[n] (B, T, Z_n).

    Returns:
        mu (B, N, T, F) complex, v (B, N, T, F), v_theta (B, N, T, F), power (B, N, T, F) — the
        power of each q(s_tn) as fed back (a sample or the expectation) — and, per source, the
        recurrence states h (B, T, H_n). ``h[n]`` equals ``dvaes[n].deterministic(power[:, n])``
        (the recursion was driven by exactly these powers), so E-Z can reuse it.
    """
    num_frames = x.shape[1]
    states: list = [None] * len(dvaes)
    power_prev: Tensor | None = None
    mus, vs, v_thetas, powers = [], [], [], []
    hs: list[list[Tensor]] = [[] for _ in dvaes]
    for t in range(num_frames):
        v_theta_t = []
        for n, dvae in enumerate(dvaes):
            x_prev = None if power_prev is None else power_prev[:, n]
            (v_theta_n,), states[n] = dvae.step(x_prev, z[n][:, t], states[n])
            v_theta_t.append(v_theta_n)
            hs[n].append(dvae.state_h(states[n]))
        v_theta_t = torch.stack(v_theta_t, dim=1).clamp_min(V_THETA_FLOOR)        # (B, N, F)
        mu_t, v_t = e_s_posterior(x[:, None, t], v_x[:, None, t], eta[:, :, t], v_theta_t)
        power_prev = source_power(mu_t, v_t, es_power)
        mus.append(mu_t)
        vs.append(v_t)
        v_thetas.append(v_theta_t)
        powers.append(power_prev)
    h = [torch.stack(h_n, dim=1) for h_n in hs]
    return torch.stack(mus, 2), torch.stack(vs, 2), torch.stack(v_thetas, 2), torch.stack(powers, 2), h


# ----------------------------------------------------------------------------- (6.4)
def e_z(dvaes: Sequence[SRNN], power: Tensor, z_mode: str, h: Sequence[Tensor] | None = None) -> list[Tensor]:
    """(6.4) E-Z: z_{1:T,n} from DVAE_n's encoder (4.4) run on the current power estimate of source n.

    ``h`` (optional) are the recurrence states (4.1) driven by ``power``, as returned by
    :func:`e_s`; passing them skips recomputing them (same values, a quarter of the VEM's
    arithmetic at the reference size).

    Shape: power (B, N, T, F), h[n] (B, T, H_n) -> list over n of (B, T, Z_n).
    """
    sample = z_mode == "sample"
    if h is None:
        return [dvae.encode(power[:, n], sample=sample) for n, dvae in enumerate(dvaes)]
    return [dvae.inference(power[:, n], h[n], sample=sample)[0] for n, dvae in enumerate(dvaes)]


# ----------------------------------------------------------------------------- (6.5)
def e_w(x: Tensor, v_x: Tensor, mu: Tensor, v: Tensor) -> Tensor:
    """(6.5) E-W: ``log beta_ftn = -|x_ft - mu_ftn|^2 / v_x,ft - v_ftn / v_x,ft``, eta = softmax over n.

    The softmax is taken in the log domain (log-sum-exp), so bins where every source is very
    unlikely still get a proper distribution.

    Shape: x (B, T, F) complex, v_x (B, T, F), mu (B, N, T, F) complex, v (B, N, T, F) -> eta (B, N, T, F).
    """
    residual = x[:, None] - mu
    log_beta = -(residual.real.square() + residual.imag.square() + v) / v_x[:, None]
    return torch.softmax(log_beta, dim=1)


# ----------------------------------------------------------------------------- (6.6)
def finetune_step(dvaes: Sequence[SRNN], optimizers: Sequence[torch.optim.Optimizer], power: Tensor,
                  beta: float) -> list[float]:
    """(6.6) One Adam step per DVAE on the loss (4.5) (IS reconstruction + beta KL) of its source's power.

    Shape: power (B, N, T, F), detached. Returns the loss of every DVAE before its step.
    """
    losses = []
    with torch.enable_grad():
        for n, (dvae, opt) in enumerate(zip(dvaes, optimizers)):
            x = power[:, n].detach().clone()
            loss, _, _ = dvae.loss(x, dvae(x), beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


# ----------------------------------------------------------------------------- VEM
def run_vem(dvaes: Sequence[SRNN], mix_stft: Tensor, options: VEMSettings = VEMSettings(),
            on_iteration: Callable[[int, Tensor, Tensor, Tensor], None] | None = None) -> VEMResult:
    """MixDVAE VEM for SC-ASS (§6) on a batch of mixtures.

    With ``options.mixture_power_db`` set, each mixture is first scaled to the reference level
    (:func:`level_gain`); ``mu``, ``v`` and ``v_theta`` are returned (and passed to
    ``on_iteration``) at the input's level.

    Initialisation (6.2): v_theta^(0) from each DVAE's reconstruction of the mixture power and
    eta^(0) = 1/N; the first E-S step fuses v_theta^(0) directly (there is no z yet). Every
    iteration then runs E-S (6.3, recursive over t from the second iteration on), E-W (6.5),
    the optional fine-tuning step (6.6) and E-Z (6.4), whose z drive the next E-S.

    Without fine-tuning everything runs under ``torch.inference_mode``; with it, the DVAEs are
    deep-copied (the caller's weights never change) with one Adam optimiser each, so every
    batch starts from the pre-trained weights.

    Args:
        dvaes: N IS-head SRNNs (source n uses ``dvaes[n]``), on the device of ``mix_stft``.
        mix_stft: mixture STFTs.
        options: see :class:`VEMSettings`.
        on_iteration: called after every iteration as ``on_iteration(i, mu, v, eta)`` (i from 0; mixtures
            that converged keep their last values) —
            the per-iteration estimates, on request, without keeping them all in memory.

    Shape:
        mix_stft (B, T, F) complex -> :class:`VEMResult` with (B, N, T, F) tensors (inference-mode
        tensors unless fine-tuning: read them, do not modify them in place).
    """
    num_src = len(dvaes)
    if options.finetune:
        dvaes = [copy.deepcopy(dvae) for dvae in dvaes]
        optimizers = [torch.optim.Adam(dvae.parameters(), lr=options.lr) for dvae in dvaes]
        grad_context = torch.no_grad()
    else:
        grad_context = torch.inference_mode()
    history: dict[str, list] = {"eta_change": []}
    if options.finetune:
        history["finetune_loss"] = []
    with grad_context:
        x = mix_stft
        B = x.shape[0]
        mix_power = x.real.square() + x.imag.square()
        gain = torch.ones(B, dtype=mix_power.dtype, device=x.device)
        if options.mixture_power_db is not None:
            gain = level_gain(mix_power, options.mixture_power_db)
            x = x * gain.sqrt()[:, None, None]
            mix_power = mix_power * gain[:, None, None]
        power_back = (1.0 / gain)[:, None, None, None]           # (B, 1, 1, 1): to the input's level
        v_x = observation_variance(mix_power, options.ratio_v_theta_x, options.v_x_floor)
        eta = torch.full((B, num_src, *x.shape[1:]), 1.0 / num_src, dtype=v_x.dtype, device=x.device)
        v_theta = initial_prior_variance(dvaes, mix_power)
        z: list[Tensor] | None = None
        active = torch.arange(B, device=x.device)                 # mixtures still iterating
        calm = torch.zeros(B, dtype=torch.long, device=x.device)
        iterations = torch.zeros(B, dtype=torch.long)
        out: list[Tensor] | None = None                           # mu, v, eta, v_theta of every mixture
        for i in range(options.n_iter):
            if z is None:
                mu, v = e_s_posterior(x[:, None], v_x[:, None], eta, v_theta)
                power, h = source_power(mu, v, options.es_power), None
            else:
                mu, v, v_theta, power, h = e_s(dvaes, x, v_x, eta, z, options.es_power)
            eta_new = e_w(x, v_x, mu, v)
            change = (eta_new - eta).abs().mean((1, 2, 3))
            history["eta_change"].append(float(change.mean()))
            eta = eta_new
            iterations[active.cpu()] += 1
            if options.finetune:
                history["finetune_loss"].append(finetune_step(dvaes, optimizers, power, options.beta))
            # After a fine-tuning step the weights changed: the recurrence must be recomputed.
            z = e_z(dvaes, power, options.z_mode, None if options.finetune else h)
            if on_iteration is not None:
                full = [t if out is None else o.index_copy(0, active, t)
                        for o, t in zip(out or [None] * 3, (mu, v, eta))]
                on_iteration(i, full[0] * power_back.sqrt(), full[1] * power_back, full[2])
            if options.tol <= 0 or options.finetune:
                continue
            calm = torch.where(change <= options.tol, calm + 1, 0)
            done = calm >= CALM_ITERS
            if not done.any():
                continue
            if out is None:
                out = [torch.zeros_like(t).expand(B, *t.shape[1:]).clone() for t in (mu, v, eta, v_theta)]
            for o, t in zip(out, (mu, v, eta, v_theta)):
                o[active[done]] = t[done]
            keep = (~done).nonzero()[:, 0]
            active = active[keep]
            if active.numel() == 0:
                break
            x, v_x, eta, calm = x[keep], v_x[keep], eta[keep], calm[keep]
            mu, v, v_theta, z = mu[keep], v[keep], v_theta[keep], [z_n[keep] for z_n in z]
        if out is not None:
            for o, t in zip(out, (mu, v, eta, v_theta)):
                if active.numel():
                    o[active] = t
            mu, v, eta, v_theta = out
        history["iterations"] = iterations.tolist()
        mu, v, v_theta = mu * power_back.sqrt(), v * power_back, v_theta * power_back
    return VEMResult(mu=mu, v=v, eta=eta, v_theta=v_theta, history=history)
