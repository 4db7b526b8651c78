"""STFT specification (§6): sizes, frame count convention, perfect reconstruction."""

import math

import numpy as np
import pytest
import torch

from utils.errors import UserError
from utils.stft import STFT

torch.set_num_threads(1)


@pytest.fixture
def stft():
    return STFT(fs=16000, wlen_sec=0.064, hop_percent=0.25, zp_percent=0)


def test_reference_sizes(stft):
    assert (stft.wlen, stft.hop, stft.nfft, stft.num_freqs) == (1024, 256, 1024, 513)


def test_window_length_rounds_up_to_power_of_two():
    assert STFT(16000, 0.05, 0.25).wlen == 1024       # 800 samples -> 1024
    assert STFT(8000, 0.064, 0.5).wlen == 512
    assert STFT(16000, 0.064, 0.25, zp_percent=1).num_freqs == 1025


def test_segment_of_sequence_len_frames(stft):
    segment = stft.segment_samples(50)
    assert segment == 49 * 256
    assert stft.num_frames(segment) == 50
    assert stft.stft(torch.zeros(segment)).shape == (50, 513)


@pytest.mark.parametrize("length", [1, 700, 1024, 12544, 16001])
def test_frame_count_matches_num_frames(stft, length):
    assert stft.stft(torch.zeros(length)).shape[-2] == stft.num_frames(length) == 1 + length // 256


def test_round_trip_random_signal_batched(stft):
    x = torch.randn(2, 3, 12544 + 37, generator=torch.Generator().manual_seed(0))
    spec = stft.stft(x)
    assert spec.shape == (2, 3, 1 + x.shape[-1] // 256, 513)
    assert spec.dtype == torch.complex64
    assert (stft.istft(spec, x.shape[-1]) - x).abs().max() < 1e-5


def test_round_trip_float64_and_zero_padding():
    stft = STFT(16000, 0.064, 0.25, zp_percent=1)
    x = torch.randn(5000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    spec = stft.stft(x)
    assert spec.dtype == torch.complex128 and spec.shape == (20, 1025)
    assert (stft.istft(spec, 5000) - x).abs().max() < 1e-12


def test_sine_window_and_frames_first_layout(stft):
    # A 1 kHz cosine lands in bin 1000 / (16000 / 1024) = 64 in every interior frame.
    t = np.arange(16000) / 16000
    spec = stft.stft(np.cos(2 * math.pi * 1000 * t).astype(np.float32))
    assert (spec[4:-4].abs().argmax(dim=-1) == 64).all()
    # Window sum sin^2 = wlen / 2, so the peak magnitude of a unit cosine is sum(w) / 2.
    window_sum = np.sin(np.pi * (np.arange(1024) + 0.5) / 1024).sum()
    assert spec[10, 64].abs().item() == pytest.approx(window_sum / 2, rel=1e-3)


def test_from_config_accepts_ini_strings():
    stft = STFT.from_config({"wlen_sec": "64e-3", "hop_percent": "0.25", "fs": "16000",
                             "zp_percent": "0", "trim": "False"})
    assert (stft.wlen, stft.hop, stft.num_freqs, stft.trim) == (1024, 256, 513, False)
    assert STFT.from_config(stft.as_dict()).as_dict() == stft.as_dict()


@pytest.mark.parametrize("section, message", [
    ({"wlen_sec": "0.064", "hop_percent": "0.25", "fs": "16000"}, "zp_percent"),
    ({"wlen_sec": "abc", "hop_percent": "0.25", "fs": "16000", "zp_percent": "0"}, "wlen_sec"),
    ({"wlen_sec": "0.064", "hop_percent": "0.25", "fs": "16000", "zp_percent": "0", "trim": "maybe"}, "trim"),
    ({"wlen_sec": "0.064", "hop_percent": "2", "fs": "16000", "zp_percent": "0"}, "hop_percent"),
])
def test_from_config_errors_name_the_key(section, message):
    with pytest.raises(UserError, match=message):
        STFT.from_config(section)
