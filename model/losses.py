"""Elementwise loss terms used by the DVAE (§4.5). All functions broadcast and do not reduce."""

from __future__ import annotations

import math

import torch
from torch import Tensor

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_nll(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """-log N(x; mean, exp(logvar)) elementwise."""
    return 0.5 * (logvar + (x - mean) ** 2 * torch.exp(-logvar)) + HALF_LOG_2PI


def is_divergence(power: Tensor, log_v: Tensor, eps: float = 1e-10) -> Tensor:
    """Itakura–Saito divergence d_IS(P | v) = P/v - log(P/v) - 1 elementwise (0 iff P = v).

    Computed from log v for stability; ``eps`` floors P inside the log (silent bins).
    """
    log_ratio = torch.log(power.clamp_min(0) + eps) - log_v
    return torch.exp(log_ratio) - log_ratio - 1


def kl_gaussians(mean_q: Tensor, logvar_q: Tensor, mean_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mean_q, exp(logvar_q)) || N(mean_p, exp(logvar_p))) elementwise."""
    return 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2) * torch.exp(-logvar_p) - 1)
