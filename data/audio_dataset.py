"""Single-source power-spectrogram sequences for DVAE pre-training (§4 audio data)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from utils.audio_io import list_audio_files, load_audio, trim_silence
from utils.errors import UserError
from utils.stft import STFT

log = logging.getLogger(__name__)


class SpectrogramDataset(Dataset):
    """Power spectrogram |STFT|² of every audio file under a directory, cut into sequences.

    All files are loaded, optionally trimmed (30 dB) and transformed once, in ``__init__``.
    Two ways to cut them into ``sequence_len``-frame sequences:

    - full tiling (default): non-overlapping sequences, the remainder of each file dropped;
    - ``use_random_seq``: one random crop per file per epoch. Crops are a function of
      ``(seed, epoch, index)``; call :meth:`set_epoch` at the start of every epoch to get new
      crops (the same crops are returned until then).

    Files shorter than ``sequence_len`` frames, and silent files, are skipped (counted in a log
    line).

    Args:
        data_dir: directory searched recursively for .wav/.flac files.
        stft: the :class:`utils.stft.STFT` defining fs and the frames.
        sequence_len: frames per sequence.
        trim: remove leading/trailing silence (``utils.audio_io.trim_silence``, 30 dB).
        use_random_seq: random crops instead of tiling.
        seed: seed of the random crops.

    Shape:
        item: (sequence_len, F) float32.

    Raises:
        UserError: missing or empty directory, no audio files, every file silent, or no file
            long enough for one sequence.
    """

    def __init__(self, data_dir, stft: STFT, sequence_len: int, trim: bool = True,
                 use_random_seq: bool = False, seed: int = 0):
        self.data_dir = Path(data_dir)
        self.sequence_len = int(sequence_len)
        self.use_random_seq = bool(use_random_seq)
        self.seed = int(seed)
        self.epoch = 0
        if self.sequence_len < 1:
            raise UserError(f"sequence_len must be >= 1, got {sequence_len}")
        files = list_audio_files(self.data_dir)
        if not files:
            raise UserError(f"no .wav/.flac files in {self.data_dir}")

        self.files: list[Path] = []
        self.spectrograms: list[torch.Tensor] = []
        num_silent = num_short = 0
        for path in tqdm(files, desc=f"spectrograms {self.data_dir.name}", disable=None, leave=False):
            x = load_audio(path, stft.fs)
            if trim:
                x = trim_silence(x)
            if len(x) == 0 or not np.any(x):
                num_silent += 1
                continue
            power = stft.stft(torch.from_numpy(x)).abs().square().float()
            if power.shape[0] < self.sequence_len:
                num_short += 1
                continue
            self.files.append(path)
            self.spectrograms.append(power)

        if num_silent == len(files):
            raise UserError(f"every audio file in {self.data_dir} is silent")
        if not self.spectrograms:
            raise UserError(f"no audio file in {self.data_dir} is at least {self.sequence_len} frames long "
                            f"({self.sequence_len * stft.hop / stft.fs:.2f} s)")
        if num_silent or num_short:
            log.info("%s: skipped %d silent file(s) and %d file(s) shorter than %d frames",
                     self.data_dir, num_silent, num_short, self.sequence_len)

        frames = torch.tensor([s.shape[0] for s in self.spectrograms])
        per_file = frames // self.sequence_len
        self._tiles = torch.stack([
            torch.repeat_interleave(torch.arange(len(frames)), per_file),
            torch.cat([torch.arange(n) * self.sequence_len for n in per_file.tolist()]),
        ], dim=1)
        log.info("%s: %d files, %d frames, %d %s sequences of %d frames", self.data_dir, len(frames),
                 int(frames.sum()), len(self), "random" if self.use_random_seq else "tiled",
                 self.sequence_len)

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops of ``epoch`` (only matters with ``use_random_seq``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.spectrograms) if self.use_random_seq else len(self._tiles)

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.use_random_seq:
            power = self.spectrograms[index]
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, power.shape[0] - self.sequence_len + 1))
        else:
            file_index, start = self._tiles[index].tolist()
            power = self.spectrograms[file_index]
        return power[start:start + self.sequence_len]
