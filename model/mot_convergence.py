"""Convergence-based stopping of the MOT VEM (docs/method.md §5; README, Performance).

A sample stops iterating once its assignments eta stopped changing; :func:`model.vem_mot.iterate` uses
this to drop converged samples from the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

CALM_ITERS = (2, 5)   # a sample has converged after this many iterations in a row with eta_change <= tol:
                      # its largest change, or its mean change (see eta_change)


def eta_change(eta: Tensor, eta_prev: Tensor, mask: Tensor) -> Tensor:
    """Convergence statistics of each sample: the largest |eta_tks - eta_prev_tks|, and its mean over the present
    detections and all classes s (missing detections have eta = 0 in both, so they add nothing).

    Why both (:data:`CALM_ITERS`): with a sampled z a few ambiguous detections (two boxes overlapping at a
    crossing) keep moving by a few percent in every iteration however long the VEM runs, so in about 8 % of
    the samples the largest change never settles, while the mean does once the rest of the sample has. The
    mean alone stops too early: a sample whose largest change is still large sometimes stops in a worse
    state (README, Performance).

    Shape: eta, eta_prev (T, K, S, B), mask (T, K, B) -> (2, B): largest, mean.
    """
    change = (eta - eta_prev).abs()
    present = mask.sum((0, 1)).clamp_min(1) * eta.shape[2]
    return torch.stack([change.amax((0, 1, 2)), change.sum((0, 1, 2)) / present])


def calm_counts(calm: Tensor, eta: Tensor, eta_prev: Tensor | None, mask: Tensor, tol: float) -> Tensor:
    """Iterations in a row each sample's statistics stayed at or below ``tol`` (reset to 0 otherwise).

    Shape: calm (2, B) (largest, mean), eta, eta_prev (T, K, S, B), mask (T, K, B) -> (2, B).
    """
    if eta_prev is None:
        return calm
    return torch.where(eta_change(eta, eta_prev, mask) <= tol, calm + 1, 0)


def converged(calm: Tensor) -> Tensor:
    """Samples whose largest or mean change has been calm for :data:`CALM_ITERS` iterations. (2, B) -> (B,)."""
    return (calm >= torch.tensor(CALM_ITERS, device=calm.device)[:, None]).any(0)
