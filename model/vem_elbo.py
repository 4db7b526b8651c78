"""ELBO terms of the MOT VEM (§5.8), logged per iteration and sample when asked.

Tensors are in the VEM's time-major, feature-major layout (see :mod:`model.vem_mot`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def elbo_terms(eta: Tensor, obs: Tensor, obs_var: Tensor, m: Tensor, var: Tensor,
               dvae_loss: Tensor | None) -> dict[str, Tensor]:
    """(5.8) ELBO terms of one iteration, per sample.

    - ``assignment_entropy``: ``-sum_tk sum_s eta log eta`` (clutter included);
    - ``expected_loglik``: ``sum_tkn eta_tkn E_q[log N(o_tk; s_tn, Phi_tk)]`` over real sources (untempered);
    - ``gaussian_entropy``: ``sum_tnd 1/2 log(2 pi e Sigma_tnd)``;
    - ``dvae_loss``: the dynamics' loss on the current means (batch mean; NaN when it has none). It costs one
      more DVAE pass, so the VEM may compute it only every few iterations (:func:`logged_iteration`).

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


def logged_iteration(i: int, n_iter: int, every: int) -> bool:
    """Whether iteration ``i`` (1-based) of ``n_iter`` computes the ELBO's DVAE-loss term: the first, every
    ``every``-th and the last (every = 1: all; 0: none)."""
    return every > 0 and (i == 1 or i % every == 0 or i == n_iter)
