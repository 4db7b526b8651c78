"""Elementwise Gaussian fusion in information form, the core of E-S (docs/method.md (5.4))."""

from __future__ import annotations

import torch
from torch import Tensor


def fuse_gaussians(prec_obs: Tensor, info_obs: Tensor, mean_prior: Tensor, var_prior: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """(5.4) information-form fusion, elementwise:
    ``Sigma^-1 = prec_obs + 1/var_prior``, ``m = Sigma (info_obs + mean_prior / var_prior)``.

    Shape: all the same (any) -> (mean, var).
    """
    var = torch.reciprocal(prec_obs + torch.reciprocal(var_prior))
    return var * torch.addcdiv(info_obs, mean_prior, var_prior), var


def rts_identity_backward(mean: Tensor, var: Tensor, mean_prior: Tensor, var_prior: Tensor
                          ) -> tuple[Tensor, Tensor]:
    """Rauch-Tung-Striebel backward pass for dynamics ``s_t = s_{t-1} + d_t + noise`` (transition matrix I),
    elementwise: with the filtered ``(m_t, V_t)`` and the one-step priors ``(mu_{t+1}, P_{t+1})``,
    ``G_t = V_t / P_{t+1}``, ``m^s_t = m_t + G_t (m^s_{t+1} - mu_{t+1})``,
    ``V^s_t = V_t + G_t^2 (V^s_{t+1} - P_{t+1})``. The priors must include the propagated V_{t-1}
    (``P_{t+1} = V_t + Q_{t+1}``), so that 0 <= G_t <= 1.

    Shape: all (T, ...) -> (smoothed mean, smoothed var), (T, ...). The prior of frame 1 is not used.
    """
    means, variances = [mean[-1]], [var[-1]]
    for t in range(mean.shape[0] - 2, -1, -1):
        gain = var[t] / var_prior[t + 1]
        means.append(mean[t] + gain * (means[-1] - mean_prior[t + 1]))
        variances.append(var[t] + gain.square() * (variances[-1] - var_prior[t + 1]))
    return torch.stack(means[::-1]), torch.stack(variances[::-1])
