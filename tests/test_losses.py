"""Loss terms of the DVAE (§4.5) on hand-checkable values."""

import math

import pytest
import torch

from model.losses import gaussian_nll, is_divergence, kl_gaussians


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_kl_of_equal_gaussians_is_zero():
    gen = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(3, 5, 2, generator=gen), torch.randn(3, 5, 2, generator=gen)
    kl = kl_gaussians(mean, logvar, mean, logvar)
    assert kl.shape == (3, 5, 2)                      # elementwise, no reduction
    assert torch.allclose(kl, torch.zeros_like(kl), atol=1e-6)


def test_kl_matches_the_closed_form_in_1d():
    # KL(N(1, 4) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2 = 2 - log 2
    kl = kl_gaussians(t(1.0), t(math.log(4.0)), t(0.0), t(0.0))
    assert kl.item() == pytest.approx(2 - math.log(2))
    # KL(N(0, 1) || N(3, 2)) = log(sqrt 2) + (1 + 9) / 4 - 1/2
    kl = kl_gaussians(t(0.0), t(0.0), t(3.0), t(math.log(2.0)))
    assert kl.item() == pytest.approx(0.5 * math.log(2) + 2.5 - 0.5)


def test_kl_agrees_with_torch_distributions_and_is_non_negative():
    gen = torch.Generator().manual_seed(1)
    mq, lq, mp, lp = torch.randn(4, 100, generator=gen, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, (0.5 * lq).exp()),
                                            torch.distributions.Normal(mp, (0.5 * lp).exp()))
    kl = kl_gaussians(mq, lq, mp, lp)
    assert torch.allclose(kl, ref) and (kl >= 0).all()


def test_is_divergence_is_zero_at_p_equals_v():
    power = t(0.01, 1.0, 3.0, 1e4)
    assert torch.allclose(is_divergence(power, power.log()), torch.zeros(4, dtype=torch.float64), atol=1e-9)


def test_is_divergence_hand_values():
    # d_IS(P | v) = P/v - log(P/v) - 1
    assert is_divergence(t(2.0), t(0.0)).item() == pytest.approx(1 - math.log(2))          # P = 2, v = 1
    assert is_divergence(t(1.0), t(math.log(2.0))).item() == pytest.approx(math.log(2) - 0.5)  # P = 1, v = 2
    # not symmetric: over-estimating the variance costs less than under-estimating it
    assert is_divergence(t(1.0), t(math.log(2.0))) < is_divergence(t(2.0), t(0.0))


def test_is_divergence_of_a_silent_bin_is_finite():
    d = is_divergence(t(0.0), t(0.0))
    assert torch.isfinite(d) and d > 0


def test_gaussian_nll_hand_values():
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    assert gaussian_nll(t(1.0), t(0.0), t(0.0)).item() == pytest.approx(0.5 + half_log_2pi)
    # x = 3, mean = 1, variance 4: 0.5 * (log 4 + 4 / 4) + 0.5 log 2 pi
    assert gaussian_nll(t(3.0), t(1.0), t(math.log(4.0))).item() == pytest.approx(
        0.5 * (math.log(4) + 1) + half_log_2pi)


def test_gaussian_nll_agrees_with_torch_distributions():
    gen = torch.Generator().manual_seed(2)
    x, mean, logvar = torch.randn(3, 2, 7, 4, generator=gen, dtype=torch.float64)
    ref = -torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x)
    assert torch.allclose(gaussian_nll(x, mean, logvar), ref)
