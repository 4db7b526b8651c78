"""Mixtures written by ``data/scass_mixture_audio_generation.py``, as STFTs and waveforms (§6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.errors import UserError
from utils.npz_io import read_npz
from utils.stft import STFT

_KEYS = ("mixture", "s1", "s2", "fs")


class MixtureDataset(Dataset):
    """Every ``*.npz`` mixture of a directory (sorted by name).

    Waveforms are loaded and checked in ``__init__`` (all files must share the STFT's ``fs``
    and the same number of frames, equal to ``sequence_len`` when given); STFTs are computed
    per item.

    Args:
        data_dir: directory of mixture ``.npz`` files.
        stft: the STFT used by the separation model.
        sequence_len: expected number of frames per mixture (optional).

    Item (dict):
        'mix_stft': (T, F) complex64; 'mixture', 's1', 's2': (L,) float32;
        's1_power', 's2_power': (T, F) float32 (|STFT|²); 'name': file stem.

    Raises:
        UserError: missing/empty directory, unreadable file, missing key, NaN or inf samples, or a
            file whose fs or number of frames differs.
    """

    def __init__(self, data_dir, stft: STFT, sequence_len: int | None = None):
        self.data_dir = Path(data_dir)
        self.stft = stft
        if not self.data_dir.is_dir():
            raise UserError(f"mixture directory not found: {self.data_dir}")
        self.files = sorted(self.data_dir.glob("*.npz"))
        if not self.files:
            raise UserError(f"no mixture .npz files in {self.data_dir}")
        self.names = [p.stem for p in self.files]
        self.waveforms = []
        expected = sequence_len
        for path in self.files:
            data = read_npz(path, _KEYS, "a mixture")
            fs = int(data["fs"])
            shapes = {k: data[k].shape for k in ("mixture", "s1", "s2")}
            if len(set(shapes.values())) != 1 or len(shapes["mixture"]) != 1:
                raise UserError(f"mixture file {path}: mixture, s1 and s2 must be 1-D signals of one length, got "
                                + ", ".join(f"{k} {v}" for k, v in shapes.items()))
            signals = np.stack([data[k].astype(np.float32) for k in ("mixture", "s1", "s2")])
            bad = ~np.isfinite(signals)
            if bad.any():   # one NaN would spread through the STFT and the whole item's estimate
                counts = ", ".join(f"{k} {int(n)}" for k, n in zip(("mixture", "s1", "s2"), bad.sum(1)) if n)
                raise UserError(f"mixture file {path}: non-finite (NaN or inf) samples ({counts}); "
                                "remove or regenerate the file")
            if fs != stft.fs:
                raise UserError(f"mixture file {path} is sampled at {fs} Hz, the STFT at {stft.fs} Hz")
            frames = stft.num_frames(signals.shape[-1])
            expected = frames if expected is None else expected
            if frames != expected:
                raise UserError(f"mixture file {path} has {frames} STFT frames "
                                f"({signals.shape[-1]} samples), expected {expected}")
            self.waveforms.append(torch.from_numpy(signals))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        mixture, s1, s2 = self.waveforms[index]
        spec = self.stft.stft(self.waveforms[index])          # (3, T, F)
        power = spec[1:].abs().square()
        return {"mix_stft": spec[0], "mixture": mixture, "s1": s1, "s2": s2,
                "s1_power": power[0], "s2_power": power[1], "name": self.names[index]}


def collate(items: list[dict]) -> dict:
    """Stack dataset items along a new batch dimension (names are kept as a list).

    Shape:
        'mix_stft': (B, T, F); 'mixture', 's1', 's2': (B, L); 's1_power', 's2_power': (B, T, F).
    """
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0] if key != "name"}
    batch["name"] = [item["name"] for item in items]
    return batch
