"""Choosing the DVAE per sequence (beyond the paper; README, Tracking, round 8).

A :class:`DVAEChoice` row runs the MOT VEM (§5) once with each of several DVAEs (the same E-S and settings) and
keeps, for every sequence, the run with the largest score

    S = sum_tkn eta_tkn E_q[log N(o_tk; s_tn, Phi_tk)]  -  sum_n L_DVAE(m_{1:T,n})

where the first term is the expected observation log-likelihood of the run's last iteration (the ELBO term of §5.8,
:func:`model.vem_elbo.elbo_terms`) and L_DVAE is a DVAE's negative ELBO (4.5) of the run's own tracks, with beta = 1
and z at its posterior mean (:func:`sequence_nll`). Which DVAE judges the tracks is the choice's ``score`` (SCORES):
``own`` (round 8) lets each run's own DVAE judge its tracks; ``first`` (round 11) judges every run's tracks with the
first DVAE of the choice, one yardstick for all runs, so that the DVAEs' different variance calibrations do not enter
the comparison; ``observations`` keeps the first term only. No ground truth is used. The DVAEs must share their
input and increment scales (``feat_mean``, ``feat_std``, ``delta_std``), so that their likelihoods are in the same
units; :class:`DVAEChoice` refuses others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from model.boxes import box_scale
from model.dvae_dynamics import SRNNDynamics
from model.fast_srnn import FastSRNN
from model.frame_rate import run_vem_upsampled
from model.vem_mot import VEMResult, VEMSettings

SCALES = ("feat_mean", "feat_std", "delta_std")          # what the DVAEs of a choice must share
SCORES = ("own", "first", "observations")                # which DVAE judges a run's tracks (module docstring)


@torch.no_grad()
def sequence_nll(fast: FastSRNN, m: Tensor) -> Tensor:
    """The negative ELBO (4.5) of an increments DVAE with beta = 1 and z at its posterior mean, per sequence and
    summed over frames 2..T: -sum_t E_q[log p(x_t | h_t, z_t)] + KL(q(z_t) || p(z_t | h_t, z_{t-1})), in the
    (normalised) units of m (the log-determinant of the increments' scale is included).

    Shape: m (T, D, M) -> (M,).
    """
    if not fast.increments:
        raise ValueError("sequence_nll needs an increments DVAE (its decoder mean is anchored on x_{t-1})")
    terms = fast.frame_loss_terms(m, fast.encode(m, False))
    return (terms["recon"][1:] + torch.log(fast.delta_std).sum()).sum(0) + terms["kl"][1:].sum(0)


def sequence_scores(model_fast: FastSRNN | None, result: VEMResult, image_size: Tensor | None,
                    settings: VEMSettings) -> Tensor:
    """S of every sequence of a finished run (module docstring), its tracks judged by ``model_fast`` (None: the
    expected observation log-likelihood alone). ``result.elbo`` must hold ``expected_loglik``.

    Shape: result.tracks (B, T, N, 4) pixels -> (B,).
    """
    if model_fast is None:
        return result.elbo["expected_loglik"][-1].to(torch.float32)
    B, T, N, D = result.tracks.shape
    if image_size is None:
        image_size = torch.zeros(B, 2)
    scale = box_scale(image_size, settings.normalize, settings.normalize_range).to(result.tracks).T   # (4, B)
    m = (result.tracks.permute(1, 3, 2, 0) / scale[None, :, None, :]).reshape(T, D, N * B)
    nll = sequence_nll(model_fast, m.to(torch.float32)).reshape(N, B).sum(0)
    return result.elbo["expected_loglik"][-1].to(nll) - nll


def _pick(values: list[Tensor | None], pick: Tensor, batch_dim: int) -> Tensor | None:
    """Per sequence b, ``values[pick[b]]`` along the batch axis ``batch_dim`` (None stays None)."""
    if values[0] is None:
        return None
    stacked = torch.stack(values)                                       # (R, ...)
    shape = [1] * stacked.dim()
    shape[batch_dim + 1] = -1
    return stacked.gather(0, pick.view(shape).expand(1, *stacked.shape[1:]))[0]


def select(results: list[VEMResult], pick: Tensor) -> VEMResult:
    """Per sequence b, the fields of ``results[pick[b]]``. Shape: pick (B,) long."""
    def take(name: str, batch_dim: int):
        return _pick([getattr(r, name) for r in results], pick, batch_dim)

    elbo = {k: _pick([r.elbo[k] for r in results], pick, 1) for k in results[0].elbo}     # (n_iter, B)
    return replace(results[0], tracks=take("tracks", 0), var=take("var", 0), eta=take("eta", 0), elbo=elbo,
                   iter_tracks=take("iter_tracks", 1), iterations=take("iterations", 0))


def choice_problem(models) -> str | None:
    """Why these SRNNs cannot be chosen between (:class:`DVAEChoice`), or None: they must be increments DVAEs that
    share their input and increment scales, so that their likelihoods are in the same units."""
    if any(not m.increments for m in models):
        return "a choice of DVAEs needs increments DVAEs"
    for name in SCALES:
        if any(not torch.allclose(getattr(models[0], name), getattr(m, name)) for m in models[1:]):
            return f"the DVAEs of a choice must share {name} (their likelihoods would not compare)"
    return None


@dataclass
class DVAEChoice:
    """Several DVAE source models for one MixDVAE row; :meth:`run` keeps the best-scoring run per sequence.

    Attributes:
        options: one :class:`model.dvae_dynamics.SRNNDynamics` per DVAE (increments DVAEs with equal scales).
        score: which DVAE judges each run's tracks, one of :data:`SCORES` (module docstring).
        chosen: (B,) index of the DVAE kept for each sequence of the last :meth:`run` (None before).
    """

    options: list[SRNNDynamics]
    score: str = "own"
    chosen: Tensor | None = None

    def __post_init__(self):
        if len(self.options) < 2:
            raise ValueError("a DVAE choice needs at least two DVAEs")
        if self.score not in SCORES:
            raise ValueError(f"choice score must be one of {', '.join(SCORES)}, got {self.score!r}")
        problem = choice_problem([o.model for o in self.options])
        if problem:
            raise ValueError(problem)

    @property
    def es_mode(self) -> str:
        return self.options[0].es_mode

    @property
    def es_var(self) -> str:
        return self.options[0].es_var

    @property
    def var_scales(self) -> tuple[float, ...]:
        """The E-S variance scale of each DVAE (they may differ)."""
        return tuple(o.var_scale for o in self.options)

    def run(self, det: Tensor, det_mask: Tensor | None, init: Tensor, settings: VEMSettings,
            image_size: Tensor | None = None, factor: int = 1) -> VEMResult:
        """:func:`model.frame_rate.run_vem_upsampled` with each DVAE, then per sequence the run with the largest S.
        The runs share the random state they start from, so that only the DVAE differs."""
        settings = replace(settings, log_elbo=True)
        state = torch.random.get_rng_state()
        results, scores = [], []
        for option in self.options:
            torch.random.set_rng_state(state)
            result = run_vem_upsampled(det, det_mask, init, option, settings, image_size, factor)
            results.append(result)
            judge = {"own": option.fast, "first": self.options[0].fast, "observations": None}[self.score]
            scores.append(sequence_scores(judge, result, image_size, settings))
        self.chosen = torch.stack(scores).argmax(0)
        return select(results, self.chosen)


def run_row(dynamics, det: Tensor, det_mask: Tensor | None, init: Tensor, settings: VEMSettings,
            image_size: Tensor | None = None, factor: int = 1) -> VEMResult:
    """One tracking row: :meth:`DVAEChoice.run` for a choice, else :func:`model.frame_rate.run_vem_upsampled`."""
    if isinstance(dynamics, DVAEChoice):
        return dynamics.run(det, det_mask, init, settings, image_size, factor)
    return run_vem_upsampled(det, det_mask, init, dynamics, settings, image_size, factor)
