"""Torch Dataset of N-target MOT samples and the batch collate function.

A detection is *present* when its box is finite with positive width and height. Zero-area or
inverted boxes are turned into missing detections (NaN) with a warning naming the file, so that
``det_mask`` and the NaN rows of ``det`` always agree. Samples of a batch may have different
numbers of detection slots K; :func:`collate_mot` pads them with missing (NaN) slots.

Typical use::

    ds = MOTSampleDataset("data/generated/mot_synthetic_3t")
    batch = collate_mot([ds[i] for i in range(len(ds))])      # or DataLoader(ds, collate_fn=collate_mot)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from utils.boxes import valid_boxes
from utils.errors import UserError
from utils.npz_io import read_npz

_ARRAYS = ("det", "gt", "gt_ids", "init", "image_size")


def detection_mask(det: np.ndarray) -> np.ndarray:
    """Present detections: finite boxes with x2 > x1 and y2 > y1.

    Shape:
        det: (..., 4) -> (...,) bool
    """
    return valid_boxes(det)


class MOTSampleDataset(Dataset):
    """The ``.npz`` samples directly under ``data_dir``, in sorted file-name order.

    Each item is a dict: ``det`` (T, K, 4) float32 tensor (NaN = missing), ``det_mask`` (T, K)
    bool, ``gt`` (T, N, 4), ``gt_ids`` (N,) int64, ``init`` (N, 4), ``image_size`` (2,) float32
    (width, height), and ``name`` (file stem), ``sequence``, ``start_frame``.
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise UserError(f"MOT data directory not found: {self.data_dir}")
        self.files = sorted(self.data_dir.glob("*.npz"))
        if not self.files:
            raise UserError(f"no .npz samples in {self.data_dir} (generate them with: "
                            "python data/mot_tracking_data_generation.py --synthetic --out DIR)")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        path = self.files[i]
        arrays = read_npz(path, (*_ARRAYS, "sequence", "start_frame"), "a MOT sample")
        sequence, start_frame = str(arrays["sequence"]), int(arrays["start_frame"])
        det = arrays["det"].astype(np.float32)
        if det.ndim != 3 or det.shape[-1] != 4 or arrays["gt"].ndim != 3 or len(det) != len(arrays["gt"]):
            raise UserError(f"{path}: expected det (T, K, 4) and gt (T, N, 4), got {det.shape} and "
                            f"{arrays['gt'].shape}")
        mask = detection_mask(det)
        bad = int((np.isfinite(det).all(-1) & ~mask).sum())
        if bad:
            warnings.warn(f"{path}: {bad} zero-area or inverted detection box(es) treated as missing",
                          stacklevel=2)
        det[~mask] = np.nan
        return {"det": torch.from_numpy(det), "det_mask": torch.from_numpy(mask),
                "gt": torch.from_numpy(arrays["gt"].astype(np.float32)),
                "gt_ids": torch.from_numpy(arrays["gt_ids"].astype(np.int64)),
                "init": torch.from_numpy(arrays["init"].astype(np.float32)),
                "image_size": torch.from_numpy(arrays["image_size"].astype(np.float32)),
                "name": path.stem, "sequence": sequence, "start_frame": start_frame}


def collate_mot(items: list[dict]) -> dict:
    """Stack samples into a batch, padding detection slots to the largest K with missing entries.

    Returns:
        dict with tensors ``det`` (B, T, K, 4), ``det_mask`` (B, T, K), ``gt`` (B, T, N, 4),
        ``gt_ids`` (B, N), ``init`` (B, N, 4), ``image_size`` (B, 2), and lists ``names``,
        ``sequences``, ``start_frames``.
    """
    shapes = {(it["gt"].shape[0], it["gt"].shape[1]) for it in items}
    if len(shapes) > 1:
        raise UserError("samples of one batch must share T and N, got (T, N) in "
                        f"{sorted(shapes)} ({', '.join(it['name'] for it in items[:4])}, ...)")
    K = max(it["det"].shape[1] for it in items)
    det = torch.full((len(items), items[0]["det"].shape[0], K, 4), float("nan"))
    mask = torch.zeros(det.shape[:3], dtype=torch.bool)
    for b, it in enumerate(items):
        det[b, :, :it["det"].shape[1]] = it["det"]
        mask[b, :, :it["det"].shape[1]] = it["det_mask"]
    return {"det": det, "det_mask": mask, "gt": torch.stack([it["gt"] for it in items]),
            "gt_ids": torch.stack([it["gt_ids"] for it in items]),
            "init": torch.stack([it["init"] for it in items]),
            "image_size": torch.stack([it["image_size"] for it in items]),
            "names": [it["name"] for it in items], "sequences": [it["sequence"] for it in items],
            "start_frames": [it["start_frame"] for it in items]}
