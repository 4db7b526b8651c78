"""Torch Dataset of single-object box trajectories for MOT pre-training."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.errors import UserError
from utils.npz_io import read_npz

log = logging.getLogger(__name__)


class TrajectoryDataset(Dataset):
    """All ``boxes`` arrays of the ``.npz`` files under ``data_dir``, cut to ``sequence_len`` frames.

    Each item is a (sequence_len, 4) float32 tensor of normalised (x1, y1, x2, y2).
    Sequences longer than ``sequence_len`` are tiled into non-overlapping windows; windows holding NaN
    or inf coordinates are skipped with a notice naming the file and the count.
    """

    def __init__(self, data_dir: str | Path, sequence_len: int):
        data_dir = Path(data_dir)
        files = sorted(data_dir.rglob("*.npz"))
        if not files:
            raise UserError(f"no .npz trajectory files in {str(data_dir)!r} "
                            "(generate them with: python data/mot_generate_synthetic_data.py --out DIR)")
        chunks = []
        for f in files:
            boxes = read_npz(f, ("boxes",), "single-object trajectories")["boxes"].astype(np.float32)
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise UserError(f"{f}: 'boxes' must have shape (num_seq, T, 4), got {boxes.shape}")
            n_win = boxes.shape[1] // sequence_len
            if n_win == 0:
                raise UserError(f"{f}: sequences have {boxes.shape[1]} frames < sequence_len {sequence_len}")
            boxes = boxes[:, : n_win * sequence_len].reshape(-1, sequence_len, 4)
            finite = np.isfinite(boxes).all(axis=(1, 2))
            if not finite.all():
                log.info("%s: skipped %d of %d sequences holding NaN or inf coordinates", f,
                         int((~finite).sum()), len(finite))
            chunks.append(boxes[finite])
        self.boxes = torch.from_numpy(np.concatenate(chunks))
        if len(self.boxes) == 0:
            raise UserError(f"no usable trajectory in {str(data_dir)!r}: every sequence holds NaN or inf "
                            "coordinates")

    def __len__(self) -> int:
        return self.boxes.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.boxes[i]


def add_box_noise(x: torch.Tensor, max_ratio: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Pre-training input noise: each sequence gets Gaussian box noise of std ``r x`` box width (x coordinates)
    / height (y coordinates), with r ~ U(0, max_ratio) drawn per sequence (clean to noisy in one batch).

    Shape: x (B, T, 4) normalised boxes -> (B, T, 4).
    """
    wh = x[..., 2:] - x[..., :2]
    size = torch.cat([wh, wh], dim=-1)
    ratio = max_ratio * torch.rand(x.shape[0], 1, 1, generator=gen)
    return x + ratio * size * torch.randn(x.shape, generator=gen)
