"""The N-target MOT sample format: write one sample, write a whole set, and the statistics of its index.

A sample is one ``.npz`` with ``det`` (T, K, 4) detector boxes in pixels (NaN rows = no detection; the
order inside a frame is shuffled for t >= 1 and carries no identity), ``gt`` (T, N, 4), ``gt_ids``
(N,), ``init`` (N, 4) = the detection of each target at frame 0, ``image_size`` (width, height),
``sequence`` and ``start_frame``. A set is a folder of samples plus ``index.csv`` (one row per sample)
and ``metadata.json`` (arguments and dataset statistics). The builders are
``data/mot_from_motchallenge.py`` and ``data/mot_synthetic_samples.py``; the command line is
``data/mot_tracking_data_generation.py``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.mot_eval import iou_matrix
from utils.output_dir import atomic_write, check_out_dir, staged_dir

SAMPLE_KEYS = ("det", "gt", "gt_ids", "init", "image_size", "sequence", "start_frame")
MATCH_IOU = 0.5


def write_sample(path: str | Path, *, det, gt, gt_ids, init, image_size, sequence: str,
                 start_frame: int) -> None:
    """Write one sample atomically (a temporary file renamed into place).

    Shape:
        det: (T, K, 4), gt: (T, N, 4), gt_ids: (N,), init: (N, 4), image_size: (2,) = (width, height).
    """
    atomic_write(Path(path), lambda tmp: np.savez_compressed(
            tmp, det=np.asarray(det, dtype=np.float32), gt=np.asarray(gt, dtype=np.float32),
            gt_ids=np.asarray(gt_ids, dtype=np.int64), init=np.asarray(init, dtype=np.float32),
            image_size=np.asarray(image_size, dtype=np.int64), sequence=np.asarray(str(sequence)),
            start_frame=np.asarray(int(start_frame), dtype=np.int64)))


def shuffle_detections(det: np.ndarray, rng: np.random.Generator, num_slots=None) -> np.ndarray:
    """Randomly permute the detection slots of every frame t >= 1 (frame 0 keeps its order).

    Args:
        det: detections, NaN rows missing.
        num_slots: (B,) slots actually used per sample (the rest stay at the end); default all K.

    Shape:
        det: (B, T, K, 4) -> (B, T, K, 4)
    """
    B, T, K, _ = det.shape
    keys = rng.random((B, T, K))
    keys[:, 0] = np.arange(K)
    if num_slots is not None:
        keys = np.where(np.arange(K) >= np.asarray(num_slots)[:, None, None], np.inf, keys)
    order = np.argsort(keys, axis=-1, kind="stable")
    return np.take_along_axis(det, order[..., None], axis=2)


def has_crossing(gt: np.ndarray) -> bool:
    """True when two targets' boxes overlap (IoU > 0) on some frame. gt: (T, N, 4)."""
    iou = iou_matrix(gt, gt)
    return bool(np.triu(iou > 0, k=1).any())


def sample_stats(sample: dict) -> dict:
    """Index-row statistics of a sample: sizes, target detection rate, crossing."""
    det, gt = sample["det"], sample["gt"]
    iou = iou_matrix(gt, det)                                        # (T, N, K)
    return {"num_frames": gt.shape[0], "num_targets": gt.shape[1], "num_detection_slots": det.shape[1],
            "gt_ids": " ".join(str(i) for i in np.asarray(sample["gt_ids"]).tolist()),
            "target_detection_rate": round(float((iou >= MATCH_IOU).any(-1).mean()), 4),
            "crossing": has_crossing(gt)}


OWNED = ("*.npz", "index.csv", "metadata.json")   # what a sample set holds (see utils.output_dir)


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` holding a set (unless ``overwrite``) or other files."""
    check_out_dir(out, overwrite, OWNED)


def write_dataset(out: Path, samples: list[dict], names: list[str], metadata: dict) -> list[dict]:
    """Write the samples, ``index.csv`` and ``metadata.json`` (with crossing / detection statistics) into a
    temporary folder, then swap it in as ``out`` (a failed run leaves an earlier set as it was)."""
    with staged_dir(out) as staging:
        rows = []
        for sample, name in tqdm(list(zip(samples, names)), desc="writing", unit="sample", disable=None):
            write_sample(staging / f"{name}.npz", **sample)
            rows.append({"file": f"{name}.npz", "sequence": sample["sequence"],
                         "start_frame": sample["start_frame"], **sample_stats(sample)})
        with (staging / "index.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        metadata = {**metadata, "num_samples": len(rows),
                    "crossing_fraction_obtained": round(float(np.mean([r["crossing"] for r in rows])), 4),
                    "target_detection_rate": round(float(np.mean([r["target_detection_rate"] for r in rows])), 4)}
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return rows

