"""The SC-ASS VEM (docs/method.md §6) as a specification: hand cases, properties, a toy that must separate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from data.mixture_dataset import MixtureDataset
from model.srnn import SRNN
from model.vem_scass import (VEMSettings, e_s_posterior, e_s, e_w, e_z, observation_variance, run_vem,
                             source_power)
from utils.audio_metrics import si_sdr
from utils.config import comma_list
from utils.config_keys_scass import BASELINES
from utils.errors import UserError
from utils.stft import STFT

torch.set_num_threads(1)

# Toy STFT: 8 kHz, 128-sample window, hop 32, F = 65 bins of 62.5 Hz.
STFT_TOY = STFT(fs=8000, wlen_sec=0.016, hop_percent=0.25)
F = STFT_TOY.num_freqs
T = 24
LENGTH = STFT_TOY.segment_samples(T)


def tiny_srnn(seed: int = 0, x_dim: int = F) -> SRNN:
    torch.manual_seed(seed)
    return SRNN(x_dim=x_dim, z_dim=2, dense_x_h=[8], dim_RNN_h=6, num_RNN_h=1, dense_hz_z=[4], dense_hz_x=[8],
                dense_gz_z=[4], dense_hx_g=[8], dim_RNN_g=5, num_RNN_g=1, head="is").eval()


def band_dvae(low: int, high: int, v_in: float = 1e6, v_out: float = 1e-12) -> SRNN:
    """A toy "pre-trained" DVAE: v_theta = v_in on bins [low, high), v_out elsewhere, whatever h and z."""
    dvae = tiny_srnn()
    log_v = torch.full((F,), math.log(v_out))
    log_v[low:high] = math.log(v_in)
    with torch.no_grad():
        dvae.gen_out.weight.zero_()
        dvae.gen_out.bias.copy_(log_v)
    return dvae


def tones(freqs, rng, length=LENGTH, fs=8000, fade=128):
    """Sum of amplitude-modulated sinusoids faded in and out over ``fade`` samples, shape (length,).

    The fades keep the segment edges from spreading energy over every frequency bin.
    """
    t = np.arange(length) / fs
    x = sum(rng.uniform(0.1, 0.4) * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
            * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x.astype(np.float32)


# ----------------------------------------------------------------------------- (6.1), (6.3)
def test_observation_variance_is_ratio_times_power_floored():
    power = torch.tensor([[[4.0, 0.0]]])
    assert torch.allclose(observation_variance(power, 0.03, 1e-8), torch.tensor([[[0.12, 1e-8]]]))


def test_es_posterior_hand_case():
    # x = 2, |x|^2 = 4, v_x = 0.03 * 4 = 0.12; eta = 0.5; v_theta = 1:
    # v = (0.5 / 0.12 + 1)^-1 = 0.12 / 0.62 = 0.193548..., mu = v * 0.5 * 2 / 0.12 = 1 / 0.62 = 1.612903...
    x = torch.tensor([[[2.0 + 0.0j]]])
    mu, v = e_s_posterior(x, torch.tensor([[[0.12]]]), torch.tensor([[[0.5]]]), torch.tensor([[[1.0]]]))
    assert v.item() == pytest.approx(0.12 / 0.62, rel=1e-6)
    assert mu.item() == pytest.approx(1 / 0.62, rel=1e-6)


def test_es_posterior_limits():
    x, v_x = torch.tensor([[[1.0 - 2.0j]]]), torch.tensor([[[0.1]]])
    # a source that owns the bin with a flat prior takes the observation, with variance v_x
    mu, v = e_s_posterior(x, v_x, torch.tensor([[[1.0]]]), torch.tensor([[[1e12]]]))
    assert torch.allclose(mu, x) and v.item() == pytest.approx(0.1, rel=1e-6)
    # a source with no share of the bin keeps its prior N_c(0, v_theta)
    mu, v = e_s_posterior(x, v_x, torch.tensor([[[0.0]]]), torch.tensor([[[3.0]]]))
    assert mu.abs().item() == 0 and v.item() == 3.0


def test_source_power_expectation_and_proper_complex_samples():
    mu = torch.full((200_000,), 1.0 + 1.0j)
    v = torch.full((200_000,), 2.0)
    assert torch.allclose(source_power(mu[:3], v[:3], "expected"), torch.full((3,), 4.0))
    torch.manual_seed(0)
    std = math.sqrt(0.5 * 2.0)
    # power of a sample: mean E|s|^2 = |mu|^2 + v = 4
    assert source_power(mu, v, "sample").mean().item() == pytest.approx(4.0, rel=0.01)
    # circular: the real and imaginary noise parts each have variance v / 2 and are uncorrelated,
    # visible as E|s - mu|^2 = v and E[(s - mu)^2] = 0 (zero pseudo-variance)
    power_zero_mean = source_power(torch.zeros_like(mu), v, "sample")
    assert power_zero_mean.mean().item() == pytest.approx(2.0, rel=0.01)
    assert power_zero_mean.var().item() == pytest.approx(4 * std**4, rel=0.03)   # |s|^2 ~ v/2 * chi2(2): var v^2


# ----------------------------------------------------------------------------- (6.5)
def test_eta_is_a_distribution_even_for_extreme_values():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, dtype=torch.complex64) * 1e3
    mu = torch.randn(2, 3, 3, 4, dtype=torch.complex64) * 1e3
    v = torch.rand(2, 3, 3, 4) * 1e6
    eta = e_w(x, torch.full((2, 3, 4), 1e-8), mu, v)       # log beta ~ -1e14
    assert torch.isfinite(eta).all() and (eta >= 0).all()
    assert torch.allclose(eta.sum(dim=1), torch.ones(2, 3, 4))


def test_ew_prefers_the_source_that_explains_the_bin():
    x = torch.tensor([[[1.0 + 0j]]])
    mu = torch.tensor([[[[1.0 + 0j]], [[0.0 + 0j]]]])           # source 1 explains x, source 2 predicts 0
    eta = e_w(x, torch.tensor([[[0.03]]]), mu, torch.zeros(1, 2, 1, 1))
    # log beta = (0, -1 / 0.03): eta_1 = 1 / (1 + exp(-33.3))
    assert eta[0, 0].item() == pytest.approx(1.0) and eta[0, 1].item() == pytest.approx(math.exp(-1 / 0.03), rel=1e-3)


# ----------------------------------------------------------------------------- (6.3)-(6.4)
def test_recurrence_states_of_es_equal_the_encoders_own():
    """E-Z may reuse the h of E-S: same values as running the encoder's recurrence on the fed-back powers."""
    dvaes = [tiny_srnn(1), tiny_srnn(2)]
    torch.manual_seed(0)
    x = torch.randn(3, T, F, dtype=torch.complex64)
    v_x = observation_variance(x.abs() ** 2, 0.03, 1e-8)
    eta = torch.full((3, 2, T, F), 0.5)
    z = [torch.randn(3, T, 2) for _ in dvaes]
    with torch.no_grad():
        _, _, _, power, h = e_s(dvaes, x, v_x, eta, z, "expected")
        for n, dvae in enumerate(dvaes):
            assert torch.allclose(h[n], dvae.deterministic(power[:, n]), atol=1e-5)
        reused, recomputed = e_z(dvaes, power, "mean", h), e_z(dvaes, power, "mean")
    for a, b in zip(reused, recomputed):
        assert torch.allclose(a, b, atol=1e-5)


# ----------------------------------------------------------------------------- the whole VEM
def test_run_vem_shapes_eta_and_per_iteration_estimates():
    torch.manual_seed(0)
    x = torch.randn(2, T, F, dtype=torch.complex64)
    seen = []
    result = run_vem([tiny_srnn(1), tiny_srnn(2)], x, VEMSettings(n_iter=3),
                     on_iteration=lambda i, mu, v, eta: seen.append((i, mu.shape, eta.sum(1))))
    assert result.mu.shape == (2, 2, T, F) and result.mu.is_complex()
    assert result.v.shape == result.eta.shape == result.v_theta.shape == (2, 2, T, F)
    assert (result.v > 0).all() and torch.isfinite(result.v).all()
    assert torch.allclose(result.eta.sum(dim=1), torch.ones(2, T, F))
    assert [s[0] for s in seen] == [0, 1, 2] and all(s[1] == (2, 2, T, F) for s in seen)
    assert all(torch.allclose(s[2], torch.ones(2, T, F)) for s in seen)
    assert len(result.history["eta_change"]) == 3


def test_batched_vem_equals_one_mixture_at_a_time():
    """Vectorised over mixtures: a batch gives what each mixture gives alone (deterministic settings)."""
    torch.manual_seed(0)
    x = torch.randn(3, T, F, dtype=torch.complex64)
    dvaes = [tiny_srnn(1), tiny_srnn(2)]
    opts = VEMSettings(n_iter=3, es_power="expected", z_mode="mean")
    batched = run_vem(dvaes, x, opts)
    for b in range(3):
        alone = run_vem(dvaes, x[b:b + 1], opts)
        assert torch.allclose(alone.mu[0], batched.mu[b], rtol=1e-4, atol=1e-5)
        assert torch.allclose(alone.eta[0], batched.eta[b], rtol=1e-4, atol=1e-5)


def test_finetuning_works_on_copies():
    dvaes = [tiny_srnn(1), tiny_srnn(2)]
    before = [{k: p.clone() for k, p in d.state_dict().items()} for d in dvaes]
    torch.manual_seed(0)
    x = torch.randn(2, T, F, dtype=torch.complex64)
    result = run_vem(dvaes, x, VEMSettings(n_iter=2, finetune=True, lr=1e-2))
    losses = result.history["finetune_loss"]
    assert len(losses) == 2 and all(len(step) == 2 and all(math.isfinite(v) for v in step) for step in losses)
    for d, saved in zip(dvaes, before):
        assert all(torch.equal(p, saved[k]) for k, p in d.state_dict().items())
    assert not result.mu.requires_grad


def test_disjoint_bands_with_matching_dvaes_separate_almost_perfectly():
    """Source 1 lives below 1.2 kHz, source 2 above 2.8 kHz; each toy DVAE puts a huge prior variance
    on its own half of the spectrum (bins < 32, i.e. < 2 kHz, or >= 32) and a negligible one elsewhere.

    With such matched DVAEs the best any per-bin assignment can do is the band mask (bins < 32 to
    source 1): its only error is the sine window's spectral leakage across the 2 kHz edge, more than
    14 bins from every tone (the sources fade in and out, so the segment edges add none); the test
    measures it: about 80 dB SI-SDR. Each E-S step gives mu = x / (1 + v_x / (eta v_theta)) ~ x on the
    source's own band (v_x / v_theta ~ 1e-5) and ~ 0 elsewhere, and E-W gives eta ~ 1 on the own band
    (the other source pays |x|^2 / v_x = 1 / ratio = 33 nats there): the VEM must match the band mask.
    We require at least 40 dB (1 % amplitude error) and within 1 dB of the band mask for both sources;
    the margin below ~80 dB leaves room for float32 rounding.
    """
    rng = np.random.default_rng(0)
    s = np.stack([tones((300, 650, 1100), rng), tones((2900, 3300, 3650), rng)])
    mix = s.sum(0)
    x = STFT_TOY.stft(torch.from_numpy(mix))[None]                          # (1, T, F)
    edge = 32
    result = run_vem([band_dvae(0, edge), band_dvae(edge, F)], x, VEMSettings(n_iter=3))
    estimate = STFT_TOY.istft(result.mu[0], LENGTH).numpy()
    band = torch.zeros(2, 1, F)
    band[0, :, :edge], band[1, :, edge:] = 1, 1
    oracle = STFT_TOY.istft(band * x, LENGTH).numpy()
    for n in range(2):
        bound = si_sdr(s[n].astype(np.float64), oracle[n].astype(np.float64))
        achieved = si_sdr(s[n].astype(np.float64), estimate[n].astype(np.float64))
        assert bound > 60
        assert achieved >= max(40.0, bound - 1.0), (n, achieved, bound)
    assert (result.eta[0, 0, :, :edge] > 0.99).float().mean() > 0.99


# ----------------------------------------------------------------------------- mixture path, options
def test_stft_istft_identity_on_the_mixture_path(tmp_path):
    rng = np.random.default_rng(1)
    s1, s2 = tones((440,), rng), rng.normal(0, 0.1, LENGTH).astype(np.float32)
    np.savez(tmp_path / "mix_00000.npz", mixture=s1 + s2, s1=s1, s2=s2, fs=np.int64(8000))
    item = MixtureDataset(tmp_path, STFT_TOY, sequence_len=T)[0]
    assert item["mix_stft"].shape == (T, F)
    # analysis / synthesis with the references' length gives the mixture back
    assert np.allclose(STFT_TOY.istft(item["mix_stft"], LENGTH).numpy(), s1 + s2, atol=1e-5)
    # a source estimate equal to the whole mixture STFT synthesises to the mixture (the output path)
    mu = torch.stack([item["mix_stft"], torch.zeros_like(item["mix_stft"])])
    out = STFT_TOY.istft(mu, LENGTH).numpy()
    assert np.allclose(out[0], s1 + s2, atol=1e-5) and np.abs(out[1]).max() == 0


def test_options_are_validated():
    with pytest.raises(ValueError, match="es_power"):
        VEMSettings(es_power="mean")
    with pytest.raises(ValueError, match="z_mode"):
        VEMSettings(z_mode="expected")
    with pytest.raises(ValueError, match="n_iter"):
        VEMSettings(n_iter=0)


def test_comma_list_of_baselines():
    assert comma_list(" NMF, ibm,,nmf ", BASELINES, "cfg [Eval] baselines") == ["nmf", "ibm"]
    assert comma_list("", BASELINES, "cfg [Eval] baselines") == []
    with pytest.raises(UserError, match=r"\[Eval\] baselines.*oracle"):
        comma_list("nmf,oracle", BASELINES, "cfg [Eval] baselines")
