"""Elementwise Gaussian fusion in information form, the core of E-S (docs/method.md (5.4))."""

from __future__ import annotations

from torch import Tensor


def fuse_gaussians(prec_obs: Tensor, info_obs: Tensor, mean_prior: Tensor, var_prior: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """(5.4) information-form fusion, elementwise:
    ``Sigma^-1 = prec_obs + 1/var_prior``, ``m = Sigma (info_obs + mean_prior / var_prior)``.

    Shape: all the same (any) -> (mean, var).
    """
    var = 1.0 / (prec_obs + 1.0 / var_prior)
    return var * (info_obs + mean_prior / var_prior), var
