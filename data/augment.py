"""Seeded waveform augmentation for the surrogate training corpora.

Pure functions, numpy in and out: a mono float waveform ``x`` of shape (L,) at ``fs`` Hz, and
for the random ones a ``numpy.random.Generator``. :func:`augment` draws one set of parameters
from an :class:`AugmentOptions` and applies the enabled steps in a fixed order — speed, tempo,
pitch, spectral tilt/EQ, room reverberation, noise, band limit — and returns what it drew, so a corpus
manifest can record it. Gain is left to the caller (after its own level normalisation), see
:func:`apply_gain`.

Why each step: the speech DVAE learned espeak-ng's formant speech and fails on real voices
Speed and pitch changes move formants and F0, tilt/EQ and reverberation change the
spectral envelope and add the smearing of real rooms and microphones, low-level noise fills the
silent bins synthetic speech never has, gain changes teach level robustness, and a low-pass
at a random cutoff (last, as a telephone channel or an 8 kHz recording would apply it) teaches
speech with nothing above 3.4-4 kHz, which is what most of the real-speech validation set is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import fftconvolve, resample_poly


# ----------------------------------------------------------------------------- deterministic steps
def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), by resampling.

    Shape: (L,) -> (about L / factor,).
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    ratio = Fraction(factor).limit_denominator(200)
    return resample_poly(x, ratio.denominator, ratio.numerator).astype(x.dtype, copy=False)


def time_stretch(x: np.ndarray, rate: float, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), the pitch is unchanged.

    The STFT (Hann window, 75 % overlap) is read at fractional frame positions ``rate * k``;
    magnitudes are interpolated between neighbouring frames and phases advanced by each bin's
    measured instantaneous frequency, then overlap-added with the same window.

    Shape: (L,) -> (about L / rate,).
    """
    if rate <= 0:
        raise ValueError(f"stretch rate must be > 0, got {rate}")
    window = np.hanning(n_fft + 1)[:-1]
    # Centred frames (half a window of zeros before): the first frame already holds signal, so the
    # phases it gives every bin start the accumulation with the right inter-bin relations.
    padded = np.pad(x.astype(np.float64), (n_fft // 2, n_fft + hop))
    num_frames = (len(padded) - n_fft) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:num_frames]
    spec = np.fft.rfft(frames * window, axis=1)                          # (frames, bins)
    expected = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft        # phase advance per hop
    positions = np.arange(0, num_frames - 1, rate)
    phase = np.angle(spec[0])
    out = np.zeros((len(positions), spec.shape[1]), dtype=complex)
    for k, pos in enumerate(positions):
        i, frac = int(pos), pos - int(pos)
        magnitude = (1 - frac) * np.abs(spec[i]) + frac * np.abs(spec[i + 1])
        out[k] = magnitude * np.exp(1j * phase)
        delta = np.angle(spec[i + 1]) - np.angle(spec[i]) - expected
        phase = phase + expected + (delta + np.pi) % (2 * np.pi) - np.pi
    frames_out = np.fft.irfft(out, n=n_fft, axis=1) * window
    y = np.zeros(len(positions) * hop + n_fft)
    norm = np.zeros_like(y)
    for k, frame in enumerate(frames_out):
        y[k * hop:k * hop + n_fft] += frame
        norm[k * hop:k * hop + n_fft] += window ** 2
    y = y / np.maximum(norm, 1e-8)
    length = int(round(len(x) / rate))
    return y[n_fft // 2:n_fft // 2 + length].astype(x.dtype, copy=False)


def pitch_shift(x: np.ndarray, semitones: float) -> np.ndarray:
    """Shift the pitch by ``semitones`` keeping the duration: time stretch, then resample.

    Shape: (L,) -> (L,) (up to one sample of rounding, padded or cut).
    """
    factor = 2.0 ** (semitones / 12.0)
    y = change_speed(time_stretch(x, 1.0 / factor), factor)
    return np.pad(y, (0, max(len(x) - len(y), 0)))[:len(x)]


def spectral_shape(x: np.ndarray, fs: int, tilt_db_per_octave: float = 0.0,
                   bands: tuple[tuple[float, float, float], ...] = ()) -> np.ndarray:
    """Zero-phase filter: a tilt of ``tilt_db_per_octave`` around 1 kHz plus peaking bands.

    ``bands`` are (centre Hz, gain dB, width in octaves): Gaussian bumps on a log-frequency axis.
    Applied as one FFT of the whole signal (files are seconds long).

    Shape: (L,) -> (L,).
    """
    freqs = np.fft.rfftfreq(len(x), 1.0 / fs)
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    gain_db = tilt_db_per_octave * octaves
    for centre, gain, width in bands:
        gain_db = gain_db + gain * np.exp(-0.5 * ((octaves - math.log2(centre / 1000.0)) / (width / 2)) ** 2)
    return np.fft.irfft(np.fft.rfft(x) * 10.0 ** (gain_db / 20.0), n=len(x)).astype(x.dtype, copy=False)


def room_impulse_response(fs: int, rt60: float, drr_db: float, rng: np.random.Generator,
                          predelay: float = 0.004) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise.

    The tail is white Gaussian noise starting ``predelay`` seconds after the direct path, with an
    energy envelope falling 60 dB in ``rt60`` seconds, and early reflections made denser by a
    one-pole low-pass (air and wall absorption); its energy is set so that the direct-to-reverberant
    ratio is ``drr_db``.

    Shape: () -> (about (predelay + rt60) * fs,).
    """
    if rt60 <= 0:
        raise ValueError(f"rt60 must be > 0, got {rt60}")
    length = int((predelay + rt60) * fs)
    start = int(predelay * fs)
    t = np.arange(length - start) / fs
    tail = rng.standard_normal(length - start) * np.exp(-3.0 * math.log(10.0) * t / rt60)
    tail = np.convolve(tail, [0.6, 0.4])[:len(tail)]                    # gentle high-frequency damping
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    h = np.zeros(length)
    h[0] = 1.0
    h[start:] += tail
    return h


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with a room impulse response, keeping the reverberant tail.

    Shape: (L,), (K,) -> (L + K - 1,).
    """
    return fftconvolve(x, rir).astype(x.dtype, copy=False)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "pink") -> np.ndarray:
    """Add stationary white or pink (1/f) noise at ``snr_db`` below the signal's mean power.

    Shape: (L,) -> (L,).
    """
    noise = rng.standard_normal(len(x))
    if colour == "pink":
        spec = np.fft.rfft(noise)
        spec[1:] /= np.sqrt(np.arange(1, len(spec)))
        spec[0] = 0.0
        noise = np.fft.irfft(spec, n=len(x))
    elif colour != "white":
        raise ValueError(f"colour must be white or pink, got {colour!r}")
    power = np.mean(np.square(x, dtype=np.float64))
    noise *= math.sqrt(power * 10.0 ** (-snr_db / 10.0) / max(np.mean(noise ** 2), 1e-30))
    return (x + noise).astype(x.dtype, copy=False)


def band_limit(x: np.ndarray, fs: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase brick-wall low-pass: every frequency above ``cutoff_hz`` is removed, the rest kept as is.

    Applied as one FFT of the whole signal (files are seconds long, so the transition is a fraction of
    a hertz wide), like the ideal anti-aliasing filter of a resampler to ``2 * cutoff_hz``. A cutoff at
    or above ``fs / 2`` returns ``x`` unchanged.

    Shape: (L,) -> (L,).
    """
    if cutoff_hz <= 0:
        raise ValueError(f"cutoff must be > 0 Hz, got {cutoff_hz}")
    if cutoff_hz >= fs / 2:
        return x
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1.0 / fs) > cutoff_hz] = 0.0
    return np.fft.irfft(spec, n=len(x)).astype(x.dtype, copy=False)


def apply_gain(x: np.ndarray, gain_db: float) -> np.ndarray:
    """Multiply by ``10^(gain_db / 20)``. Shape: (L,) -> (L,)."""
    return (x * 10.0 ** (gain_db / 20.0)).astype(x.dtype, copy=False)


# ----------------------------------------------------------------------------- random draw
@dataclass(frozen=True)
class AugmentOptions:
    """Which steps :func:`augment` may apply and their ranges; a range of None disables a step.

    Every enabled step is applied to a file with probability ``prob``; its parameter is drawn
    uniformly in its range.

    Attributes:
        speed: (min, max) speed factor (tempo and pitch together), e.g. (0.85, 1.15).
        tempo: (min, max) tempo factor at constant pitch.
        pitch: (min, max) pitch shift in semitones at constant tempo.
        tilt: (min, max) spectral tilt in dB per octave.
        eq_db: largest |gain| in dB of each of 1-3 random peaking bands (0 = none).
        rt60: (min, max) reverberation time in seconds; the direct-to-reverberant ratio is drawn
            in ``drr_db``.
        noise_snr: (min, max) SNR in dB of added white or pink noise.
        gain_db: (min, max) gain in dB, applied by the caller after level normalisation.
        bandlimit: (min, max) low-pass cutoff in Hz (:func:`band_limit`); a cutoff at or above
            ``fs / 2`` leaves the file as it is.
        prob: probability that each enabled step is applied.
    """

    speed: tuple[float, float] | None = None
    tempo: tuple[float, float] | None = None
    pitch: tuple[float, float] | None = None
    tilt: tuple[float, float] | None = None
    eq_db: float = 0.0
    rt60: tuple[float, float] | None = None
    drr_db: tuple[float, float] = (0.0, 12.0)
    noise_snr: tuple[float, float] | None = None
    gain_db: tuple[float, float] | None = None
    bandlimit: tuple[float, float] | None = None
    prob: float = 0.5

    def __post_init__(self):
        checks = {"speed": (1e-3, 10.0), "tempo": (1e-3, 10.0), "pitch": (-24.0, 24.0), "tilt": (-12.0, 12.0),
                  "rt60": (1e-3, 5.0), "drr_db": (-30.0, 60.0), "noise_snr": (-20.0, 120.0), "gain_db": (-60.0, 0.0),
                  "bandlimit": (50.0, 96000.0)}
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if value is not None and not (len(value) == 2 and low <= value[0] <= value[1] <= high):
                raise ValueError(f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {value}")
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {self.prob}")
        if not 0.0 <= self.eq_db <= 24.0:
            raise ValueError(f"eq_db must be in [0, 24], got {self.eq_db}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name) is not None for name in
                   ("speed", "tempo", "pitch", "tilt", "rt60", "noise_snr", "gain_db", "bandlimit")) or self.eq_db > 0

    def as_dict(self) -> dict:
        return asdict(self)


def draw_parameters(options: AugmentOptions, rng: np.random.Generator, fs: int) -> dict:
    """The random parameters of one file (only the steps that will be applied)."""
    params: dict = {}

    def take(name):
        value = getattr(options, name)
        return value is not None and rng.random() < options.prob

    for name in ("speed", "tempo", "pitch"):
        if take(name):
            params[name] = round(float(rng.uniform(*getattr(options, name))), 4)
    if (options.tilt is not None or options.eq_db > 0) and rng.random() < options.prob:
        tilt = float(rng.uniform(*options.tilt)) if options.tilt is not None else 0.0
        bands = []
        if options.eq_db > 0:
            for _ in range(int(rng.integers(1, 4))):
                centre = float(np.exp(rng.uniform(math.log(150.0), math.log(0.4 * fs))))
                bands.append((round(centre, 1), round(float(rng.uniform(-options.eq_db, options.eq_db)), 2),
                              round(float(rng.uniform(0.5, 2.0)), 2)))
        params["tilt_db_per_octave"] = round(tilt, 3)
        params["eq_bands"] = bands
    if take("rt60"):
        params["rt60"] = round(float(rng.uniform(*options.rt60)), 3)
        params["drr_db"] = round(float(rng.uniform(*options.drr_db)), 2)
        params["rir_seed"] = int(rng.integers(2 ** 31))
    if take("noise_snr"):
        params["noise_snr"] = round(float(rng.uniform(*options.noise_snr)), 2)
        params["noise_colour"] = str(rng.choice(["white", "pink"]))
        params["noise_seed"] = int(rng.integers(2 ** 31))
    if take("gain_db"):
        params["gain_db"] = round(float(rng.uniform(*options.gain_db)), 2)
    # Drawn last: enabling the band limit leaves every other step's draws as they were.
    if take("bandlimit"):
        params["bandlimit_hz"] = round(float(rng.uniform(*options.bandlimit)), 1)
    return params


def apply(x: np.ndarray, fs: int, params: dict) -> np.ndarray:
    """Apply drawn parameters (all but ``gain_db``) in the fixed order. Shape: (L,) -> (L',)."""
    if "speed" in params:
        x = change_speed(x, params["speed"])
    if "tempo" in params:
        x = time_stretch(x, params["tempo"])
    if "pitch" in params:
        x = pitch_shift(x, params["pitch"])
    if "tilt_db_per_octave" in params:
        x = spectral_shape(x, fs, params["tilt_db_per_octave"], tuple(map(tuple, params["eq_bands"])))
    if "rt60" in params:
        rir = room_impulse_response(fs, params["rt60"], params["drr_db"], np.random.default_rng(params["rir_seed"]))
        x = reverberate(x, rir)
    if "noise_snr" in params:
        x = add_noise(x, params["noise_snr"], np.random.default_rng(params["noise_seed"]), params["noise_colour"])
    if "bandlimit_hz" in params:
        x = band_limit(x, fs, params["bandlimit_hz"])
    return x


def augment(x: np.ndarray, fs: int, options: AugmentOptions, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Draw parameters with ``rng`` and apply them (see :func:`apply`). Returns (augmented x, params)."""
    params = draw_parameters(options, rng, fs)
    return apply(x, fs, params), params
