"""Torch Dataset of single-object box trajectories (DESIGN §3.1) for MOT pre-training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.errors import UserError


class TrajectoryDataset(Dataset):
    """All ``boxes`` arrays of the ``.npz`` files under ``data_dir``, cut to ``sequence_len`` frames.

    Each item is a (sequence_len, 4) float32 tensor of normalised (x1, y1, x2, y2).
    Sequences longer than ``sequence_len`` are tiled into non-overlapping windows.
    """

    def __init__(self, data_dir: str | Path, sequence_len: int):
        data_dir = Path(data_dir)
        files = sorted(data_dir.rglob("*.npz"))
        if not files:
            raise UserError(f"no .npz trajectory files in {str(data_dir)!r} "
                            "(generate them with: python data/mot_generate_synthetic_data.py --out DIR)")
        chunks = []
        for f in files:
            try:
                with np.load(f) as npz:
                    boxes = np.asarray(npz["boxes"], dtype=np.float32)
            except (OSError, ValueError, KeyError) as err:
                raise UserError(f"{f}: not a trajectory file with a 'boxes' array ({err})") from None
            if boxes.ndim != 3 or boxes.shape[-1] != 4:
                raise UserError(f"{f}: 'boxes' must have shape (num_seq, T, 4), got {boxes.shape}")
            n_win = boxes.shape[1] // sequence_len
            if n_win == 0:
                raise UserError(f"{f}: sequences have {boxes.shape[1]} frames < sequence_len {sequence_len}")
            boxes = boxes[:, : n_win * sequence_len].reshape(-1, sequence_len, 4)
            chunks.append(boxes[np.isfinite(boxes).all(axis=(1, 2))])
        self.boxes = torch.from_numpy(np.concatenate(chunks))

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
