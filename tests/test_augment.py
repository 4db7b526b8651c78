"""data/augment.py: each step does what it says on hand-checkable signals, and draws are seeded."""

from __future__ import annotations

import numpy as np
import pytest

from data.augment import (AugmentOptions, add_noise, augment, band_limit, change_speed, draw_parameters,
                          pitch_shift, room_impulse_response, spectral_shape, time_stretch)

FS = 16000


def sine(freq: float, seconds: float = 1.0, fs: int = FS) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(seconds * fs)) / fs).astype(np.float32)


def peak_frequency(x: np.ndarray, fs: int = FS) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / fs)[np.argmax(spectrum)])


def test_speed_change_scales_frequency_and_duration_together():
    y = change_speed(sine(400.0), 1.25)
    assert abs(len(y) - FS / 1.25) <= 1
    assert peak_frequency(y) == pytest.approx(500.0, abs=3)


def test_time_stretch_keeps_the_pitch_and_changes_the_duration():
    for rate in (0.85, 1.15):
        y = time_stretch(sine(440.0), rate)
        assert len(y) == round(FS / rate)
        assert peak_frequency(y[2000:-2000]) == pytest.approx(440.0, abs=4)
        assert np.sqrt(np.mean(y[2000:-2000] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.1)


def test_pitch_shift_moves_the_pitch_and_keeps_the_duration():
    y = pitch_shift(sine(440.0), 12.0)
    assert len(y) == FS
    assert peak_frequency(y[2000:-2000]) == pytest.approx(880.0, abs=6)
    assert peak_frequency(pitch_shift(sine(440.0), -5.0)[2000:-2000]) == pytest.approx(440 * 2 ** (-5 / 12), abs=4)


def test_spectral_tilt_of_6_db_per_octave_doubles_the_amplitude_per_octave():
    x = sine(1000.0) + sine(2000.0)
    y = spectral_shape(x, FS, tilt_db_per_octave=6.0)
    spectrum = np.abs(np.fft.rfft(y))
    ratio = spectrum[2000] / spectrum[1000]           # 1 s of audio: bin k is k Hz
    assert 20 * np.log10(ratio) == pytest.approx(6.0, abs=0.01)
    np.testing.assert_allclose(spectral_shape(x, FS), x, atol=1e-5)


def test_peaking_band_boosts_its_centre_only():
    x = sine(500.0) + sine(3000.0)
    y = spectral_shape(x, FS, bands=((3000.0, 10.0, 0.5),))
    spectrum_x, spectrum_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    assert 20 * np.log10(spectrum_y[3000] / spectrum_x[3000]) == pytest.approx(10.0, abs=0.01)
    assert 20 * np.log10(spectrum_y[500] / spectrum_x[500]) == pytest.approx(0.0, abs=0.01)


def test_room_impulse_response_has_the_requested_drr_and_decay():
    rt60, drr = 0.5, 6.0
    h = room_impulse_response(FS, rt60, drr, np.random.default_rng(0))
    tail = h.copy()
    tail[0] -= 1.0
    assert 10 * np.log10(1.0 / np.sum(tail ** 2)) == pytest.approx(drr, abs=1e-6)
    schroeder = np.cumsum(tail[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(schroeder / schroeder[0])
    t20 = np.argmax(decay_db < -20) / FS               # -20 dB after a third of the RT60
    assert t20 == pytest.approx(rt60 / 3, rel=0.2)


def test_noise_is_added_at_the_requested_snr():
    x = sine(300.0)
    for colour in ("white", "pink"):
        y = add_noise(x, 30.0, np.random.default_rng(1), colour)
        snr = 10 * np.log10(np.mean(x.astype(float) ** 2) / np.mean((y - x).astype(float) ** 2))
        assert snr == pytest.approx(30.0, abs=0.05)


def test_band_limit_removes_everything_above_the_cutoff_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(FS + 123).astype(np.float32)              # white noise, not a whole number of seconds
    for cutoff in (3400.0, 4000.0, 5123.4):
        y = band_limit(x, FS, cutoff)
        assert y.shape == x.shape and y.dtype == x.dtype
        freqs = np.fft.rfftfreq(len(x), 1 / FS)
        spec_x, spec_y = np.fft.rfft(x.astype(float)), np.fft.rfft(y.astype(float))
        above, below = freqs > cutoff, freqs <= cutoff
        assert np.sum(np.abs(spec_y[above]) ** 2) < 1e-9 * np.sum(np.abs(spec_x[above]) ** 2)
        np.testing.assert_allclose(spec_y[below], spec_x[below], atol=1e-3 * np.abs(spec_x).max())
        # a tone below the cutoff passes unchanged, one above it is gone
        np.testing.assert_allclose(band_limit(sine(1000.0), FS, cutoff), sine(1000.0), atol=1e-5)
        assert np.abs(band_limit(sine(6000.0), FS, cutoff)).max() < 1e-5
    assert band_limit(x, FS, FS / 2) is x                               # Nyquist or above: nothing to do
    with pytest.raises(ValueError, match="cutoff"):
        band_limit(x, FS, 0.0)


def test_band_limit_is_seeded_recorded_and_drawn_after_every_other_step():
    others = dict(speed=(0.85, 1.15), tilt=(-3, 3), eq_db=6, rt60=(0.2, 0.6), noise_snr=(30, 50), gain_db=(-12, 0))
    x = sine(220.0) * np.hanning(FS).astype(np.float32)
    options = AugmentOptions(**others, bandlimit=(3400, 8000), prob=1.0)
    a, params_a = augment(x, FS, options, np.random.default_rng(3))
    b, params_b = augment(x, FS, options, np.random.default_rng(3))
    assert params_a == params_b and np.array_equal(a, b)
    assert 3400 <= params_a["bandlimit_hz"] <= 8000
    assert {k: v for k, v in params_a.items() if k != "bandlimit_hz"} == \
        draw_parameters(AugmentOptions(**others, prob=1.0), np.random.default_rng(3), FS)
    only = AugmentOptions(bandlimit=(3400, 4000), prob=1.0)
    assert only.enabled
    y, params = augment(x, FS, only, np.random.default_rng(5))
    assert set(params) == {"bandlimit_hz"} and len(y) == len(x)
    np.testing.assert_array_equal(y, band_limit(x, FS, params["bandlimit_hz"]))
    cutoffs = [draw_parameters(AugmentOptions(bandlimit=(3400, 8000), prob=0.5), np.random.default_rng(s), FS)
               .get("bandlimit_hz") for s in range(200)]
    assert 60 < sum(c is not None for c in cutoffs) < 140                # applied with probability prob


def test_augment_is_seeded_and_records_what_it_applied():
    options = AugmentOptions(speed=(0.85, 1.15), pitch=(-2, 2), tilt=(-3, 3), eq_db=6, rt60=(0.2, 0.6),
                             noise_snr=(30, 50), gain_db=(-12, 0), prob=1.0)
    x = sine(220.0) * np.hanning(FS).astype(np.float32)
    a, params_a = augment(x, FS, options, np.random.default_rng(7))
    b, params_b = augment(x, FS, options, np.random.default_rng(7))
    c, params_c = augment(x, FS, options, np.random.default_rng(8))
    assert params_a == params_b and np.array_equal(a, b)
    assert params_a != params_c
    assert set(params_a) >= {"speed", "pitch", "tilt_db_per_octave", "eq_bands", "rt60", "noise_snr", "gain_db"}
    assert np.all(np.isfinite(a)) and len(a) > len(x) * 0.8


def test_disabled_options_leave_the_signal_alone():
    x = sine(220.0)
    y, params = augment(x, FS, AugmentOptions(), np.random.default_rng(0))
    assert params == {} and np.array_equal(x, y)
    assert not AugmentOptions().enabled and AugmentOptions(eq_db=3).enabled


def test_options_are_validated():
    with pytest.raises(ValueError, match="speed"):
        AugmentOptions(speed=(1.2, 0.9))
    with pytest.raises(ValueError, match="gain_db"):
        AugmentOptions(gain_db=(-6, 6))
    with pytest.raises(ValueError, match="prob"):
        AugmentOptions(prob=1.5)
    with pytest.raises(ValueError, match="bandlimit"):
        AugmentOptions(bandlimit=(8000, 3400))
