"""What MixDVAE resynthesises from the VEM posterior (``[VEM] output``), docs/method.md §6 "Output".

- ``mean`` (default, the paper): the posterior means ``mu_n`` of q(s_n) = N_c(mu_n, v_n).
- ``wiener`` (not in the paper): the mixture STFT masked by the posterior powers,
  ``x * P_n / sum_m P_m`` with ``P_n = E|s_n|^2 = |mu_n|^2 + v_n``.

The VEM's means are shrunk towards 0 wherever the DVAE prior variance is small, and the sources need
not add up to the mixture. The Wiener output keeps every bin's total (the masks sum to one, so the
estimates sum to the mixture STFT) and only decides how it is shared out; the VEM itself is unchanged.
"""

from __future__ import annotations

from torch import Tensor

from utils.config_keys_scass import OUTPUTS

__all__ = ["OUTPUTS", "source_estimates", "wiener_output"]

POWER_FLOOR = 1e-30   # a bin where every source has zero power gets zero estimates, not NaN


def wiener_output(x: Tensor, mu: Tensor, v: Tensor) -> Tensor:
    """Mixture-consistent estimates ``x * P_n / sum_m P_m`` with ``P = |mu|^2 + v``.

    Shape: x (B, T, F) complex; mu (B, N, T, F) complex; v (B, N, T, F) -> (B, N, T, F) complex.
    """
    power = mu.real.square() + mu.imag.square() + v
    return x[:, None] * power / power.sum(dim=1, keepdim=True).clamp_min(POWER_FLOOR)


def source_estimates(x: Tensor, mu: Tensor, v: Tensor, output: str = "mean") -> Tensor:
    """The source STFTs MixDVAE outputs: ``mu`` itself for ``mean``, :func:`wiener_output` for ``wiener``.

    Shape: as :func:`wiener_output`.
    """
    if output == "mean":
        return mu
    if output == "wiener":
        return wiener_output(x, mu, v)
    raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
