"""What MixDVAE outputs from the VEM posterior (``[VEM] output``, model/scass_output.py), as a specification.

- ``mean`` is the paper's output: the posterior means, untouched.
- ``wiener`` masks the mixture STFT with the posterior powers ``|mu|^2 + v``: the masks are real, lie in
  [0, 1] and sum to one over the sources, so the estimates keep the mixture's phase and add up to it.
"""

from __future__ import annotations

import pytest
import torch

from model.scass_output import OUTPUTS, source_estimates, wiener_output
from model.vem_scass import VEMSettings, run_vem
from tools.scass_runs import StaticSpectrum
from utils.config_keys_scass import VEM_SCASS

B, N, T, F = 2, 2, 5, 7


def posterior(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, dtype=torch.complex64, generator=g)
    mu = torch.randn(B, N, T, F, dtype=torch.complex64, generator=g)
    v = torch.rand(B, N, T, F, generator=g)
    return x, mu, v


def test_mean_output_is_the_posterior_mean_itself():
    x, mu, v = posterior()
    assert source_estimates(x, mu, v, "mean") is mu
    assert source_estimates(x, mu, v) is mu              # the default: the paper's behaviour


def test_wiener_estimates_add_up_to_the_mixture():
    x, mu, v = posterior()
    torch.testing.assert_close(source_estimates(x, mu, v, "wiener").sum(dim=1), x)


def test_wiener_masks_are_real_shares_of_the_posterior_power():
    x, mu, v = posterior(1)
    estimate = wiener_output(x, mu, v)
    mask = estimate / x[:, None]
    torch.testing.assert_close(mask.imag, torch.zeros_like(mask.imag), atol=1e-5, rtol=0)   # the mixture's phase
    power = mu.abs().square() + v
    torch.testing.assert_close(mask.real, power / power.sum(dim=1, keepdim=True), rtol=1e-4, atol=1e-6)
    assert (mask.real >= 0).all() and (mask.real <= 1 + 1e-6).all()


def test_wiener_hand_cases():
    """One bin, two sources: all the posterior power in source 1; equal powers; no power at all."""
    x = torch.tensor([[[2.0 + 1.0j, 4.0 - 2.0j, 3.0 + 0.0j]]])                 # (1, 1, 3)
    mu = torch.tensor([[[[1.0 + 0.0j, 1.0 + 0.0j, 0.0j]], [[0.0j, 0.0 + 1.0j, 0.0j]]]])
    v = torch.tensor([[[[0.0, 0.5, 0.0]], [[0.0, 0.5, 0.0]]]])
    out = wiener_output(x, mu, v)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([2.0 + 1.0j, 0.0j]))
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor([2.0 - 1.0j, 2.0 - 1.0j]))
    torch.testing.assert_close(out[0, :, 0, 2], torch.tensor([0.0j, 0.0j]))      # zero, not NaN


def test_wiener_output_of_a_vem_run_adds_up_to_the_mixture_and_follows_the_priors():
    """Two static priors on disjoint halves of the spectrum (variance 1 on their own half, 1e-6 on the other):
    each half of the mixture goes (almost) wholly to its source, and the two estimates add up to the mixture.

    (A source that gets no bin keeps its prior variance as posterior power, v -> v_theta: where both priors
    were comparable to the mixture power, the bin would be shared even if eta gave it to one source.)"""
    low, high = torch.full((513,), 1e-6), torch.full((513,), 1e-6)
    low[:256], high[256:] = 1.0, 1.0
    x = torch.randn(2, 5, 513, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    result = run_vem([StaticSpectrum(low), StaticSpectrum(high)], x, VEMSettings(n_iter=3, mixture_power_db=None))
    estimate = source_estimates(x, result.mu, result.v, "wiener")
    torch.testing.assert_close(estimate.sum(dim=1), x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(estimate[:, 0, :, :256], x[..., :256], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(estimate[:, 1, :, 256:], x[..., 256:], rtol=1e-3, atol=1e-3)


def test_unknown_output_is_refused_and_the_config_key_defaults_to_the_paper():
    x, mu, v = posterior()
    with pytest.raises(ValueError, match="output"):
        source_estimates(x, mu, v, "median")
    (key,) = [k for k in VEM_SCASS if (k.section, k.name) == ("VEM", "output")]
    assert key.default == "mean" and tuple(key.choices) == OUTPUTS
