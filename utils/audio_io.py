"""Audio file I/O: load as mono float32 at a target rate, trim silence, write atomically."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from utils.errors import UserError
from utils.output_dir import atomic_write

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")


def list_audio_files(data_dir) -> list[Path]:
    """Every .wav/.flac file under ``data_dir`` (recursive), sorted.

    Raises:
        UserError: the directory does not exist.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserError(f"audio directory not found: {data_dir}")
    return sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def load_audio(path, fs: int) -> np.ndarray:
    """Read an audio file as a mono float32 signal sampled at ``fs``.

    Multi-channel files are folded to mono by averaging the channels; other sampling
    rates are resampled with a polyphase filter. Both are logged (INFO) with the file name.

    Shape:
        returns (L,) float32.

    Raises:
        UserError: the file is missing, cannot be decoded, or holds NaN or inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}")
    try:
        x, file_fs = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise UserError(f"cannot read audio file {path}: {err}") from None
    bad = int((~np.isfinite(x)).any(axis=1).sum())
    if bad:   # one rule for every reader: NaN would crash trimming and poison losses and mixtures
        raise UserError(f"audio file {path} has {bad} non-finite (NaN or inf) sample(s); repair or remove it")
    if x.shape[1] > 1:
        log.info("%s: %d channels folded to mono by averaging", path, x.shape[1])
    x = x.mean(axis=1)
    if file_fs != fs:
        log.info("%s: resampled from %d Hz to %d Hz", path, file_fs, fs)
        g = math.gcd(int(file_fs), int(fs))
        x = resample_poly(x, int(fs) // g, int(file_fs) // g)
    return np.ascontiguousarray(x, dtype=np.float32)


def frame_energies(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Energy (sum of squares) of frames ``x[i*hop : i*hop + frame_length]``.

    The signal is zero-padded at the end so the last samples belong to a frame.

    Shape:
        x: (L,) -> (num_frames,) with num_frames = 1 + ceil(max(L - frame_length, 0) / hop).
    """
    num = 1 + math.ceil(max(len(x) - frame_length, 0) / hop)
    padded = np.zeros((num - 1) * hop + frame_length, dtype=np.float64)
    padded[:len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop]
    return np.einsum("ij,ij->i", frames, frames)


def trim_silence(x: np.ndarray, top_db: float = 30.0, frame_length: int = 1024,
                 hop: int = 256) -> np.ndarray:
    """Remove leading and trailing frames quieter than ``top_db`` below the loudest frame.

    Keeps ``x[first*hop : last*hop + frame_length]`` where ``first``/``last`` are the first and
    last frames whose energy is at least ``max_energy * 10**(-top_db/10)``. An all-zero
    signal trims to an empty array.

    Shape:
        x: (L,) -> (L',) with L' <= L.
    """
    energy = frame_energies(x, frame_length, hop)
    peak = energy.max(initial=0.0)
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(energy >= peak * 10.0 ** (-top_db / 10.0))
    return x[loud[0] * hop: loud[-1] * hop + frame_length]


def write_wav(path, x: np.ndarray, fs: int, subtype: str = "PCM_16") -> Path:
    """Write a mono wav atomically (temporary file in the same directory, then ``os.replace``).

    A reader never sees a partially written file under ``path``. Use ``subtype="FLOAT"`` for
    signals that may exceed [-1, 1] (PCM_16 clips).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: sf.write(tmp, np.asarray(x, dtype=np.float32), int(fs), subtype=subtype,
                                                   format="WAV"))
