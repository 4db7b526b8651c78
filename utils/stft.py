"""Short-time Fourier transform with perfect reconstruction (§6, STFT paragraph).

Sine analysis/synthesis window of ``wlen = 2**ceil(log2(wlen_sec * fs))`` samples,
hop ``int(hop_percent * wlen)``, FFT size ``wlen * (1 + zp_percent)``. Frames are
centred (the signal is zero-padded by ``nfft // 2`` on each side, as
``torch.stft(center=True)``), so a signal of ``L`` samples has ``1 + L // hop``
frames and a segment of ``(T - 1) * hop`` samples has exactly ``T`` frames.
Synthesis is weighted overlap-add normalised by the summed squared window, which
inverts the analysis exactly wherever the window overlap is non-zero (everywhere,
thanks to the centring).

Spectrograms are frames-first: ``(..., time, freq)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from utils.errors import UserError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class STFT:
    """Sine-window STFT / inverse STFT pair (§6).

    Args:
        fs: sampling rate in Hz.
        wlen_sec: nominal window length in seconds (rounded up to a power of two in samples).
        hop_percent: hop as a fraction of the window length (0.25 -> 75 % overlap).
        zp_percent: zero padding of each frame as a fraction of the window length.
        trim: whether datasets built with this STFT trim leading/trailing silence
            (carried here because it lives in the INI ``[STFT]`` section).

    Attributes:
        wlen, hop, nfft, num_freqs (= F): sizes in samples / bins.
    """

    def __init__(self, fs: int, wlen_sec: float, hop_percent: float, zp_percent: float = 0.0,
                 trim: bool = True):
        if fs <= 0 or wlen_sec <= 0 or not 0 < hop_percent <= 1 or zp_percent < 0:
            raise UserError(f"invalid STFT parameters: fs={fs}, wlen_sec={wlen_sec}, "
                            f"hop_percent={hop_percent}, zp_percent={zp_percent}")
        self.fs = int(fs)
        self.wlen_sec = float(wlen_sec)
        self.hop_percent = float(hop_percent)
        self.zp_percent = float(zp_percent)
        self.trim = bool(trim)
        self.wlen = 2 ** math.ceil(math.log2(wlen_sec * fs))
        self.hop = int(hop_percent * self.wlen)
        self.nfft = int(self.wlen * (1 + zp_percent))
        self.num_freqs = self.nfft // 2 + 1
        n = torch.arange(self.wlen, dtype=torch.float64)
        self._window = torch.sin(math.pi * (n + 0.5) / self.wlen)

    @classmethod
    def from_config(cls, section: dict) -> STFT:
        """Build from an INI ``[STFT]`` section (values may be strings or numbers).

        Keys: ``wlen_sec``, ``hop_percent``, ``fs``, ``zp_percent``, ``trim`` (bool).
        """
        def get(key, convert):
            if key not in section:
                raise UserError(f"[STFT] section has no key '{key}'")
            value = section[key]
            try:
                return convert(value)
            except (TypeError, ValueError):
                raise UserError(f"[STFT] {key} = {value!r} is not a valid {convert.__name__}") from None

        def to_bool(value):
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(value)
        to_bool.__name__ = "boolean"

        return cls(fs=get("fs", lambda v: int(float(v))), wlen_sec=get("wlen_sec", float),
                   hop_percent=get("hop_percent", float), zp_percent=get("zp_percent", float),
                   trim=get("trim", to_bool) if "trim" in section else True)

    def as_dict(self) -> dict:
        """The ``[STFT]`` parameters, e.g. to store in a checkpoint."""
        return {"fs": self.fs, "wlen_sec": self.wlen_sec, "hop_percent": self.hop_percent,
                "zp_percent": self.zp_percent, "trim": self.trim}

    def num_frames(self, num_samples: int) -> int:
        """Number of frames of a signal of ``num_samples`` samples (centred frames)."""
        return 1 + int(num_samples) // self.hop

    def segment_samples(self, num_frames: int) -> int:
        """Length in samples of a segment whose STFT has exactly ``num_frames`` frames."""
        return (int(num_frames) - 1) * self.hop

    def _window_like(self, x: torch.Tensor) -> torch.Tensor:
        real = x.real if x.is_complex() else x
        return self._window.to(device=x.device, dtype=real.dtype)

    def stft(self, x) -> torch.Tensor:
        """Analysis.

        Args:
            x: real signal(s), tensor or array.

        Shape:
            x: (..., L) -> (..., T, F) with T = 1 + L // hop, F = nfft // 2 + 1.

        Returns:
            complex tensor (complex64 for float32 input, complex128 for float64).
        """
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.float()
        lead, length = x.shape[:-1], x.shape[-1]
        spec = torch.stft(x.reshape(-1, length), n_fft=self.nfft, hop_length=self.hop,
                          win_length=self.wlen, window=self._window_like(x), center=True,
                          pad_mode="constant", return_complex=True)
        return spec.transpose(-1, -2).reshape(*lead, spec.shape[-1], self.num_freqs)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Synthesis (weighted overlap-add), exact inverse of :meth:`stft`.

        Shape:
            spec: (..., T, F) complex -> (..., length) real.
        """
        spec = torch.as_tensor(spec)
        lead, frames = spec.shape[:-2], spec.shape[-2]
        flat = spec.reshape(-1, frames, self.num_freqs).transpose(-1, -2)
        x = torch.istft(flat, n_fft=self.nfft, hop_length=self.hop, win_length=self.wlen,
                        window=self._window_like(spec), center=True, length=int(length))
        return x.reshape(*lead, int(length))

    def __repr__(self) -> str:
        return (f"STFT(fs={self.fs}, wlen={self.wlen}, hop={self.hop}, nfft={self.nfft}, "
                f"F={self.num_freqs}, trim={self.trim})")
