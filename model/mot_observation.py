"""The MOT VEM's observation noise Phi_tk (docs/method.md §5): its value from the box sizes (5.1) and its M-step
re-estimate (5.6). Diagonal, so every operation is elementwise. Layout as in :mod:`model.vem_mot`: detections
(T, D, K, B), sources (T, D, N, B), assignments (T, K, S, B).
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.boxes import MIN_STD, box_sizes

MISSING_VAR = 1.0     # harmless finite Phi of a missing detection (its weight is exactly zero)


def observation_variance(obs: Tensor, mask: Tensor, std_ratio: float) -> Tensor:
    """(5.1) diagonal Phi_tk: std = std_ratio x width (x coordinates) / height (y coordinates).

    Missing detections get :data:`MISSING_VAR` (finite; they get zero weight in E-W).

    Shape: obs (T, D, K, B), mask (T, K, B) -> (T, D, K, B).
    """
    std = (std_ratio * box_sizes(obs, 1)).clamp_min(MIN_STD)
    return torch.where(mask[:, None], std**2, torch.full_like(std, MISSING_VAR))


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
