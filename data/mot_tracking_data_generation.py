"""Build N-target MOT samples (DESIGN §3.2) from MOTChallenge sequences or synthetic trajectories.

Every sample is one ``.npz`` with ``det`` (T, K, 4) detector boxes in pixels (NaN rows = no
detection; the order inside a frame is shuffled for t >= 1 and carries no identity), ``gt``
(T, N, 4), ``gt_ids`` (N,), ``init`` (N, 4) = the detection of each target at frame 0,
``image_size`` (width, height), ``sequence`` and ``start_frame``. The output directory also gets
``index.csv`` (one row per sample) and ``metadata.json`` (arguments and dataset statistics).

MOTChallenge (the MOT17-3T protocol)::

    python data/mot_tracking_data_generation.py --mot-root MOT17/train --sequences MOT17-02-SDP \
        --out data/generated/mot17_3t --num-targets 3 --seq-len 60

reads ``SEQ/gt/gt.txt`` and ``SEQ/det/det.txt`` (``--det-file``), matches detections to the ground
truth per frame (Hungarian, IoU >= 0.5), slides a ``--seq-len`` window by ``--slide-step`` frames and
keeps targets annotated on every frame of the window, detected on its first frame and on at least
``--min-obs-ratio`` of its frames; up to ``--max-combinations`` random N-subsets per window.

Synthetic (the demo/test default)::

    python data/mot_tracking_data_generation.py --synthetic --out data/generated/mot_synthetic_3t

renders N trajectories of ``data/mot_generate_synthetic_data.py`` at ``--image-size``; detections
are the boxes plus Gaussian noise (std = ``--noise-ratio`` x width for x, x height for y), missed
with probability ``--miss-prob`` (never on frame 0), plus ``--clutter-rate`` random boxes per frame.
Harder variants, one seeded flag each (they combine):

- ``--frame-step 2``: half frame rate (trajectories drawn twice as long, every 2nd frame kept);
- ``--manoeuvres``: turns and stop-and-go (see ``data/mot_generate_synthetic_data.py``);
- ``--occlusion``: one target per sample is undetected for 1-2 runs of 8-15 consecutive frames
  (``--occlusion-runs``, ``--occlusion-len``), never on frame 0; it is detected on the frame before and
  after each run, so a run is exactly as long as drawn;
- ``--camera-motion pan|jitter|pan+jitter`` with ``--camera-magnitude`` px: one shift per frame, common to
  every box of a sample (ground truth, detections, clutter). A pan starts at a random frame of the first
  half and moves the view by the magnitude per frame in a random direction; a jitter adds an independent
  Gaussian shift of std = magnitude on every frame t >= 1.

Occlusion and camera motion draw from their own child generators (``rng.spawn``), so a sample differs
from the one of the same seed without them only by the occlusion runs and the shift.
"""

from __future__ import annotations

import argparse
import configparser
import csv
import itertools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.mot_generate_synthetic_data import TrajectoryParams, generate_trajectories  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402
from utils.output_dir import check_out_dir, staged_dir  # noqa: E402
from utils.mot_eval import iou_matrix  # noqa: E402
from utils.mot_io import load_mot_txt, ltwh_to_xyxy  # noqa: E402

SAMPLE_KEYS = ("det", "gt", "gt_ids", "init", "image_size", "sequence", "start_frame")
MATCH_IOU = 0.5


def write_sample(path: str | Path, *, det, gt, gt_ids, init, image_size, sequence: str,
                 start_frame: int) -> None:
    """Write one §3.2 sample atomically (a temporary file renamed into place).

    Shape:
        det: (T, K, 4), gt: (T, N, 4), gt_ids: (N,), init: (N, 4), image_size: (2,) = (width, height).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez_compressed(
            f, det=np.asarray(det, dtype=np.float32), gt=np.asarray(gt, dtype=np.float32),
            gt_ids=np.asarray(gt_ids, dtype=np.int64), init=np.asarray(init, dtype=np.float32),
            image_size=np.asarray(image_size, dtype=np.int64), sequence=np.asarray(str(sequence)),
            start_frame=np.asarray(int(start_frame), dtype=np.int64))
    tmp.replace(path)


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


# ----------------------------------------------------------------------------- MOTChallenge


@dataclass
class MOTSequence:
    """One MOTChallenge sequence on a dense frame grid (index f is frame number f + 1).

    Attributes:
        name: sequence directory name.
        image_size: (width, height).
        gt: (F, J, 4) ground-truth boxes of the J kept target ids, NaN where not annotated.
        gt_ids: (J,) original target ids.
        det: (F, D, 4) detections, NaN padded.
        match: (F, J) index in ``det[f]`` of the detection matched to each target, -1 if none.
    """

    name: str
    image_size: tuple[int, int]
    gt: np.ndarray
    gt_ids: np.ndarray
    det: np.ndarray
    match: np.ndarray


def read_image_size(seq_dir: Path, fallback: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) from ``SEQ/seqinfo.ini`` (imWidth, imHeight), else ``fallback``."""
    ini = seq_dir / "seqinfo.ini"
    if ini.is_file():
        cp = configparser.ConfigParser()
        try:
            cp.read(ini)
            return int(cp["Sequence"]["imWidth"]), int(cp["Sequence"]["imHeight"])
        except (configparser.Error, KeyError, ValueError) as err:
            raise UserError(f"{ini}: cannot read [Sequence] imWidth/imHeight ({err})") from None
    if fallback is None:
        raise UserError(f"{seq_dir} has no seqinfo.ini: give the image size with --image-size W H")
    return fallback


GT_COLUMNS = {"mot17": 9, "mot15": 10}   # the documented gt.txt layouts (MOT16/17/20 share mot17's)


def gt_layout(table: np.ndarray, layout: str, path: Path) -> str:
    """'mot17' (9-column gt with consider/class/visibility) or 'mot15' (10 columns, world coords).

    Raises:
        UserError: a column count that is not the layout's (or, with 'auto', neither documented count).
    """
    columns = table.shape[1]
    if layout == "auto":
        found = [name for name, count in GT_COLUMNS.items() if count == columns]
        if not found:
            raise UserError(f"{path}: {columns} columns per line; a MOTChallenge gt.txt has 9 (MOT16/17/20) "
                            "or 10 (MOT15)")
        return found[0]
    if columns != GT_COLUMNS[layout]:
        raise UserError(f"{path}: --layout {layout} needs {GT_COLUMNS[layout]} gt columns, the file has {columns}")
    return layout


def _frame_slices(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """Row bounds per frame of a table sorted by frame: rows of frame f+1 are bounds[f]:bounds[f+1]."""
    return np.searchsorted(frames, np.arange(1, num_frames + 2), side="left")


def match_frame(gt_boxes: np.ndarray, det_boxes: np.ndarray, iou_threshold: float = MATCH_IOU) -> np.ndarray:
    """Hungarian matching of one frame, maximising total IoU over pairs with IoU >= threshold.

    Shape:
        gt_boxes: (M, 4), det_boxes: (D, 4) -> (M,) detection index per gt box, -1 when unmatched.
    """
    out = np.full(len(gt_boxes), -1)
    if len(gt_boxes) == 0 or len(det_boxes) == 0:
        return out
    iou = iou_matrix(gt_boxes, det_boxes)
    iou = np.where(iou >= iou_threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(-iou)
    ok = iou[rows, cols] > 0
    out[rows[ok]] = cols[ok]
    return out


def load_sequence(seq_dir: Path, det_file: str = "det/det.txt", layout: str = "auto",
                  image_size: tuple[int, int] | None = None) -> MOTSequence:
    """Read gt + detections of one MOTChallenge sequence and match them frame by frame.

    Args:
        seq_dir: the sequence directory (holding ``gt/gt.txt``).
        det_file: detection/result file, relative to ``seq_dir`` unless absolute; ``{seq}`` is
            replaced by the sequence name.
        layout: 'auto', 'mot15' or 'mot17' (gt column layout, see module docstring).
        image_size: (width, height) used when there is no ``seqinfo.ini``.
    """
    gt_path = seq_dir / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise UserError(f"missing ground truth {gt_path} (a MOTChallenge sequence needs gt/gt.txt)")
    det_path = Path(det_file.replace("{seq}", seq_dir.name))
    det_path = det_path if det_path.is_absolute() else seq_dir / det_path
    if not det_path.is_file():
        raise UserError(f"missing detection file {det_path} (set --det-file)")
    size = read_image_size(seq_dir, image_size)
    gt_tab = load_mot_txt(gt_path)
    det_tab = load_mot_txt(det_path)
    if len(gt_tab) == 0:
        raise UserError(f"{gt_path} is empty")
    if gt_layout(gt_tab, layout, gt_path) == "mot17":
        gt_tab = gt_tab[(gt_tab[:, 6] == 1) & (gt_tab[:, 7] == 1)]   # "consider" pedestrians only
    for tab, path in ((gt_tab, gt_path), (det_tab, det_path)):
        if len(tab) and tab[:, 0].min() < 1:
            raise UserError(f"{path}: frame numbers must start at 1, found {int(tab[:, 0].min())}")
    if len(gt_tab) == 0:
        raise UserError(f"{gt_path}: no pedestrian row with consider flag 1")
    det_tab = det_tab[(det_tab[:, 4] > 0) & (det_tab[:, 5] > 0)]
    F = int(gt_tab[:, 0].max())
    det_tab = det_tab[det_tab[:, 0] <= F]
    gt_tab = gt_tab[np.argsort(gt_tab[:, 0], kind="stable")]
    det_tab = det_tab[np.argsort(det_tab[:, 0], kind="stable")]

    gt_ids, col = np.unique(gt_tab[:, 1].astype(np.int64), return_inverse=True)
    gt_frame = gt_tab[:, 0].astype(np.int64) - 1
    gt = np.full((F, len(gt_ids), 4), np.nan, dtype=np.float32)
    gt[gt_frame, col] = ltwh_to_xyxy(gt_tab[:, 2:6])

    det_frame = det_tab[:, 0].astype(np.int64) - 1
    bounds = _frame_slices(det_tab[:, 0], F)
    slot = np.arange(len(det_tab)) - bounds[det_frame]
    det = np.full((F, max(int(slot.max(initial=-1)) + 1, 1), 4), np.nan, dtype=np.float32)
    det[det_frame, slot] = ltwh_to_xyxy(det_tab[:, 2:6])

    match = np.full((F, len(gt_ids)), -1, dtype=np.int64)
    gt_bounds = _frame_slices(gt_tab[:, 0], F)
    for f in range(F):
        cols = col[gt_bounds[f]:gt_bounds[f + 1]]
        match[f, cols] = match_frame(gt[f, cols], det[f, :bounds[f + 1] - bounds[f]])
    return MOTSequence(seq_dir.name, size, gt, gt_ids, det, match)


def valid_windows(seq: MOTSequence, sequence_len: int, slide_step: int, min_obs_ratio: float):
    """Window starts and, per window, which targets may be tracked in it.

    A target is valid in a window if annotated on every frame, matched on the first frame and on
    at least ``min_obs_ratio`` of the frames.

    Returns:
        starts: (W,) first frame index of each window; valid: (W, J) bool.
    """
    F = seq.gt.shape[0]
    starts = np.arange(0, F - sequence_len + 1, slide_step)
    annotated = np.isfinite(seq.gt).all(-1)
    detected = seq.match >= 0
    ann = np.concatenate([np.zeros((1, annotated.shape[1]), int), np.cumsum(annotated, 0)])
    obs = np.concatenate([np.zeros((1, detected.shape[1]), int), np.cumsum(detected, 0)])
    ends = starts + sequence_len
    need = math.ceil(min_obs_ratio * sequence_len - 1e-9)
    valid = ((ann[ends] - ann[starts] == sequence_len) & detected[starts]
             & (obs[ends] - obs[starts] >= need))
    return starts, valid


def draw_subsets(num_valid: int, num_targets: int, max_combinations: int, rng: np.random.Generator) -> list:
    """Up to ``max_combinations`` distinct N-subsets of range(num_valid): all if few, else random."""
    total = math.comb(num_valid, num_targets)
    if total <= max_combinations:
        return [list(c) for c in itertools.combinations(range(num_valid), num_targets)]
    chosen: dict[tuple, None] = {}
    while len(chosen) < max_combinations:
        chosen.setdefault(tuple(sorted(rng.choice(num_valid, num_targets, replace=False).tolist())), None)
    return [list(c) for c in chosen]


def window_sample(seq: MOTSequence, start: int, targets: np.ndarray, sequence_len: int,
                  include_other: bool, rng: np.random.Generator) -> dict:
    """The sample of the targets ``targets`` (indices into ``seq.gt_ids``) on one window."""
    frames = np.arange(start, start + sequence_len)
    idx = seq.match[frames][:, targets]                              # (T, N)
    det_f = seq.det[frames]                                          # (T, D, 4)
    own = np.take_along_axis(det_f, np.maximum(idx, 0)[..., None], axis=1)
    own = np.where((idx >= 0)[..., None], own, np.nan)
    det = own
    if include_other:
        chosen = (idx[..., None] == np.arange(det_f.shape[1])).any(1)   # (T, D)
        other = np.isfinite(det_f).all(-1) & ~chosen
        order = np.argsort(~other, axis=1, kind="stable")            # present "other" boxes first
        num_other = int(other.sum(1).max())
        clutter = np.take_along_axis(det_f, order[:, :num_other, None], axis=1)
        present = np.take_along_axis(other, order[:, :num_other], axis=1)
        clutter = np.where(present[..., None], clutter, np.nan)
        det = np.concatenate([own, clutter], axis=1)
    det = shuffle_detections(det[None], rng)[0]
    return {"det": det, "gt": seq.gt[frames][:, targets], "gt_ids": seq.gt_ids[targets], "init": own[0],
            "image_size": np.asarray(seq.image_size), "sequence": seq.name, "start_frame": int(start) + 1}


def mot_samples(seq: MOTSequence, *, num_targets: int = 3, sequence_len: int = 60, slide_step: int = 40,
                min_obs_ratio: float = 0.65, max_combinations: int = 10, include_other: bool = False,
                rng: np.random.Generator) -> list[dict]:
    """All samples of one sequence (§3.2, MOTChallenge builder); empty if no window qualifies."""
    starts, valid = valid_windows(seq, sequence_len, slide_step, min_obs_ratio)
    samples = []
    for start, ok in zip(starts, valid):
        candidates = np.flatnonzero(ok)
        if len(candidates) < num_targets:
            continue
        for subset in draw_subsets(len(candidates), num_targets, max_combinations, rng):
            targets = candidates[subset]
            samples.append(window_sample(seq, int(start), targets, sequence_len, include_other, rng))
    return samples


def find_sequences(root: Path, names: str | None) -> list[Path]:
    """Sequence directories: the comma-separated ``names`` under ``root``, or every one holding gt/."""
    if not root.is_dir():
        raise UserError(f"--mot-root {root} is not a directory")
    if names:
        dirs = [root / n.strip() for n in names.split(",") if n.strip()]
        for d in dirs:
            if not d.is_dir():
                raise UserError(f"sequence directory not found: {d}")
        return dirs
    dirs = sorted(d for d in root.iterdir()
                  if d.is_dir() and ((d / "gt").is_dir() or (d / "seqinfo.ini").is_file()))
    if not dirs:
        raise UserError(f"no MOTChallenge sequence (a directory with gt/gt.txt) under {root}")
    return dirs


# ----------------------------------------------------------------------------- synthetic


def _centers(boxes: np.ndarray) -> np.ndarray:
    return 0.5 * (boxes[..., :2] + boxes[..., 2:])


def crossing_partner(anchor: np.ndarray, rng: np.random.Generator, params: TrajectoryParams,
                     max_rounds: int = 1000) -> np.ndarray:
    """A trajectory per anchor whose box overlaps the anchor's at a random frame.

    A fresh §3.1 trajectory is translated so that, at a random frame t*, its centre lies within a
    quarter box of the anchor's centre (so the boxes overlap); translations leaving the image are
    redrawn.

    Shape:
        anchor: (M, T, 4) normalised boxes -> (M, T, 4).
    """
    M, T, _ = anchor.shape
    out = np.empty_like(anchor)
    todo = np.arange(M)
    for _ in range(max_rounds):
        if len(todo) == 0:
            return out
        cand = generate_trajectories(len(todo), T, rng, params)
        t_star = rng.integers(0, T, size=len(todo))
        a, c = anchor[todo, t_star], cand[np.arange(len(todo)), t_star]  # (m, 4)
        size = np.minimum(a[:, 2:] - a[:, :2], c[:, 2:] - c[:, :2])
        shift = _centers(a) - _centers(c) + rng.uniform(-0.25, 0.25, size=size.shape) * size
        moved = cand + np.tile(shift, 2)[:, None, :]
        ok = (moved.min(axis=(1, 2)) >= 0) & (moved.max(axis=(1, 2)) <= 1)
        out[todo[ok]] = moved[ok]
        todo = todo[~ok]
    raise UserError("could not place crossing trajectories inside the image: lower --crossing-fraction")


def clutter_boxes(shape: tuple, rng: np.random.Generator, params: TrajectoryParams) -> np.ndarray:
    """Random pedestrian-like boxes (size law of §3.1) anywhere in the image, normalised. -> shape + (4,)."""
    w = np.clip(np.exp(rng.normal(params.width_log_mean, params.width_log_std, shape)), params.min_width, 0.5)
    h = np.clip(w * np.clip(rng.normal(params.aspect_mean, params.aspect_std, shape), 0.5, None), None, 0.95)
    x1, y1 = rng.uniform(size=shape) * (1 - w), rng.uniform(size=shape) * (1 - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1)


OCCLUSION_LEN = (8, 15)
OCCLUSION_RUNS = (1, 2)
CAMERA_MOTIONS = ("none", "pan", "jitter", "pan+jitter")


def occlusion_mask(B: int, T: int, N: int, rng: np.random.Generator, run_len: tuple[int, int] = OCCLUSION_LEN,
                   runs: tuple[int, int] = OCCLUSION_RUNS) -> tuple[np.ndarray, np.ndarray]:
    """Long occlusions: per sample, one random target undetected for ``runs`` runs of ``run_len`` frames.

    Runs never touch frame 0 and are separated by at least one frame; the frames just before and after
    each run are returned as ``visible`` so that random misses cannot lengthen a run.

    Returns:
        occluded, visible: (B, T, N) bool.
    """
    lo, hi = run_len
    need = runs[1] * (hi + 1)                                         # frame 0, the runs, the gaps between
    if need > T:
        raise UserError(f"occlusions of up to {runs[1]} runs of {hi} frames need --seq-len >= {need}, got {T}")
    num = rng.integers(runs[0], runs[1] + 1, size=B)
    length = rng.integers(lo, hi + 1, size=(B, runs[1])) * (np.arange(runs[1]) < num[:, None])
    free = T - 1 - length.sum(1) - (num - 1)                          # frames left for the gaps
    gaps = np.diff(np.sort(rng.integers(0, free[:, None] + 1, size=(B, runs[1] + 1)), 1), prepend=0, axis=1)
    gaps[:, 1:] += 1                                                  # at least one frame between runs
    starts = 1 + np.cumsum(gaps[:, :-1], 1) + np.cumsum(length, 1) - length   # (B, R)
    t = np.arange(T)[None, :, None]
    inside = (t >= starts[:, None]) & (t < (starts + length)[:, None]) & (length[:, None] > 0)   # (B, T, R)
    edge = ((t == starts[:, None] - 1) | (t == (starts + length)[:, None])) & (length[:, None] > 0)
    target = rng.integers(0, N, size=B)
    one = np.arange(N)[None, None, :] == target[:, None, None]       # (B, 1, N)
    return inside.any(-1)[..., None] & one, edge.any(-1)[..., None] & one


def camera_shift(B: int, T: int, motion: str, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame camera shift in pixels, common to every box of a sample (module docstring).

    Returns:
        (B, T, 4) shift of (x1, y1, x2, y2) (the same (dx, dy) on both corners).
    """
    if motion not in CAMERA_MOTIONS:
        raise UserError(f"--camera-motion must be one of {', '.join(CAMERA_MOTIONS)}, got {motion!r}")
    shift = np.zeros((B, T, 2))
    t = np.arange(T)[None, :, None]
    if "pan" in motion:
        angle = rng.uniform(0, 2 * np.pi, size=(B, 1, 1))
        start = rng.integers(0, max(T // 2, 1), size=(B, 1, 1))
        direction = np.concatenate([np.cos(angle), np.sin(angle)], -1)
        shift += magnitude * direction * np.maximum(t - start, 0)
    if "jitter" in motion:
        jitter = rng.normal(0.0, magnitude, size=(B, T, 2))
        jitter[:, 0] = 0.0
        shift += jitter
    return np.tile(shift, 2)


def synthetic_samples(num_samples: int, *, seq_len: int = 60, num_targets: int = 3,
                      image_size: tuple[int, int] = (1920, 1080), noise_ratio: float = 0.03,
                      miss_prob: float = 0.1, clutter_rate: float = 0.0, crossing_fraction: float = 0.0,
                      occlusion: bool = False, occlusion_len: tuple[int, int] = OCCLUSION_LEN,
                      occlusion_runs: tuple[int, int] = OCCLUSION_RUNS, camera_motion: str = "none",
                      camera_magnitude: float = 0.0, rng: np.random.Generator,
                      params: TrajectoryParams | None = None) -> list[dict]:
    """Synthetic §3.2 samples: N trajectories of §3.1 rendered in pixels with noisy detections.

    Args:
        num_samples: number of samples B.
        seq_len, num_targets: T and N.
        image_size: (width, height) in pixels.
        noise_ratio: detection noise std as a fraction of the box width (x) / height (y).
        miss_prob: probability that a target has no detection on a frame t >= 1.
        clutter_rate: mean number (Poisson) of extra random boxes per frame.
        crossing_fraction: fraction of samples built so that two targets overlap on some frame
            (the others are drawn independently and may cross by chance).
        occlusion, occlusion_len, occlusion_runs: long occlusions of one target (:func:`occlusion_mask`).
        camera_motion, camera_magnitude: shift common to all boxes (:func:`camera_shift`), pixels.
        rng: random generator (the only source of randomness).
        params: trajectory parameters, e.g. ``frame_step`` (half frame rate) or ``manoeuvre_prob``.

    Returns:
        list of sample dicts with the :data:`SAMPLE_KEYS`; ``det`` is (T, N + max clutter, 4).
    """
    B, T, N = num_samples, seq_len, num_targets
    params = params or TrajectoryParams()
    occlusion_rng, camera_rng = rng.spawn(2)                         # leave the main stream untouched
    traj = generate_trajectories(B * N, T, rng, params).reshape(B, N, T, 4).astype(np.float64)
    num_cross = round(crossing_fraction * B) if N >= 2 else 0
    if num_cross:
        traj[:num_cross, 1] = crossing_partner(traj[:num_cross, 0], rng, params)
    traj = np.take_along_axis(traj, rng.permuted(np.tile(np.arange(N), (B, 1)), axis=1)[..., None, None], 1)
    traj = traj[rng.permutation(B)]
    scale = np.tile(np.asarray(image_size, dtype=np.float64), 2)
    gt = traj.transpose(0, 2, 1, 3) * scale                          # (B, T, N, 4) pixels
    wh = np.tile(gt[..., 2:] - gt[..., :2], 2)
    det = gt + rng.normal(size=gt.shape) * noise_ratio * wh
    missed = rng.random((B, T, N)) < miss_prob
    missed[:, 0] = False
    if occlusion:
        occluded, visible = occlusion_mask(B, T, N, occlusion_rng, occlusion_len, occlusion_runs)
        missed = (missed & ~visible) | occluded
    det[missed] = np.nan
    counts = rng.poisson(clutter_rate, size=(B, T)) if clutter_rate > 0 else np.zeros((B, T), dtype=np.int64)
    clutter = clutter_boxes((B, T, int(counts.max())), rng, params) * scale
    clutter[np.arange(clutter.shape[2]) >= counts[..., None]] = np.nan
    num_slots = N + counts.max(1)
    det = shuffle_detections(np.concatenate([det, clutter], axis=2), rng, num_slots)
    if camera_motion != "none":
        shift = camera_shift(B, T, camera_motion, camera_magnitude, camera_rng)
        gt, det = gt + shift[:, :, None], det + shift[:, :, None]
    return [{"det": det[b, :, :num_slots[b]], "gt": gt[b], "gt_ids": np.arange(N), "init": det[b, 0, :N],
             "image_size": np.asarray(image_size), "sequence": "synthetic", "start_frame": 1}
            for b in range(B)]


# ----------------------------------------------------------------------------- writing / CLI


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


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--mot-root", type=Path, help="directory of MOTChallenge sequence directories")
    src.add_argument("--synthetic", action="store_true",
                     help="synthetic trajectories instead of MOTChallenge")
    ap.add_argument("--out", type=Path, default=Path("data/generated/mot_tracking"), help="output directory")
    ap.add_argument("--overwrite", action="store_true", help="replace samples already in --out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-targets", type=int, default=3, help="N, targets per sample")
    ap.add_argument("--seq-len", type=int, default=60, help="T, frames per sample (sequence_len)")
    ap.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), default=None,
                    help="image size in pixels (synthetic default 1920 1080; MOT: used without seqinfo.ini)")
    mot = ap.add_argument_group("MOTChallenge")
    mot.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    mot.add_argument("--det-file", default="det/det.txt",
                     help="detection/result file relative to each sequence dir, or absolute; "
                          "{seq} is replaced by the sequence name")
    mot.add_argument("--layout", choices=("auto", "mot15", "mot17"), default="auto",
                     help="gt column layout: mot15 = 10 columns, mot17 (MOT16/17/20) = 9 columns")
    mot.add_argument("--slide-step", type=int, default=40)
    mot.add_argument("--min-obs-ratio", type=float, default=0.65)
    mot.add_argument("--max-combinations", type=int, default=10)
    mot.add_argument("--include-other-detections", action="store_true",
                     help="also keep all other detections of each frame as clutter")
    syn = ap.add_argument_group("synthetic")
    syn.add_argument("--num-samples", type=int, default=500)
    syn.add_argument("--noise-ratio", type=float, default=0.03)
    syn.add_argument("--miss-prob", type=float, default=0.1)
    syn.add_argument("--clutter-rate", type=float, default=0.0)
    syn.add_argument("--crossing-fraction", type=float, default=0.0)
    syn.add_argument("--frame-step", type=int, default=1,
                     help="keep every k-th frame of trajectories drawn k times longer (2 = half frame rate)")
    syn.add_argument("--manoeuvres", action="store_true", help="trajectories with turns and stop-and-go")
    syn.add_argument("--occlusion", action="store_true",
                     help="one target per sample undetected for --occlusion-runs runs of --occlusion-len frames")
    syn.add_argument("--occlusion-len", type=int, nargs=2, default=list(OCCLUSION_LEN), metavar=("MIN", "MAX"))
    syn.add_argument("--occlusion-runs", type=int, nargs=2, default=list(OCCLUSION_RUNS), metavar=("MIN", "MAX"))
    syn.add_argument("--camera-motion", choices=CAMERA_MOTIONS, default="none",
                     help="shift common to every box of a sample")
    syn.add_argument("--camera-magnitude", type=float, default=4.0,
                     help="pan speed (px per frame) and jitter std (px) of --camera-motion")
    return ap.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    checks = [(args.num_targets >= 1, "--num-targets must be >= 1"),
              (args.seq_len >= 2, "--seq-len must be >= 2"),
              (args.slide_step >= 1, "--slide-step must be >= 1"),
              (0 < args.min_obs_ratio <= 1, "--min-obs-ratio must be in (0, 1]"),
              (args.max_combinations >= 1, "--max-combinations must be >= 1"),
              (args.num_samples >= 1, "--num-samples must be >= 1"),
              (args.noise_ratio >= 0, "--noise-ratio must be >= 0"),
              (0 <= args.miss_prob < 1, "--miss-prob must be in [0, 1)"),
              (args.clutter_rate >= 0, "--clutter-rate must be >= 0"),
              (0 <= args.crossing_fraction <= 1, "--crossing-fraction must be in [0, 1]"),
              (args.crossing_fraction == 0 or args.num_targets >= 2,
               "--crossing-fraction needs --num-targets >= 2"),
              (args.image_size is None or min(args.image_size) > 0, "--image-size must be positive"),
              (args.frame_step >= 1, "--frame-step must be >= 1"),
              (1 <= args.occlusion_len[0] <= args.occlusion_len[1], "--occlusion-len needs 1 <= MIN <= MAX"),
              (1 <= args.occlusion_runs[0] <= args.occlusion_runs[1], "--occlusion-runs needs 1 <= MIN <= MAX"),
              (args.camera_magnitude >= 0, "--camera-magnitude must be >= 0")]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def build_from_mot(args: argparse.Namespace, rng: np.random.Generator) -> tuple[list, list, dict]:
    seq_dirs = find_sequences(args.mot_root, args.sequences)
    if Path(args.det_file).is_absolute() and "{seq}" not in args.det_file and len(seq_dirs) > 1:
        raise UserError(f"--det-file {args.det_file} is one file for {len(seq_dirs)} sequences: "
                        "put {seq} in it")
    samples, names, per_seq, empty = [], [], {}, []
    for seq_dir in tqdm(seq_dirs, desc="sequences", disable=None):
        size = tuple(args.image_size) if args.image_size else None
        seq = load_sequence(seq_dir, args.det_file, args.layout, size)
        got = mot_samples(seq, num_targets=args.num_targets, sequence_len=args.seq_len,
                          slide_step=args.slide_step, min_obs_ratio=args.min_obs_ratio,
                          max_combinations=args.max_combinations,
                          include_other=args.include_other_detections, rng=rng)
        per_seq[seq.name] = len(got)
        if not got:
            empty.append(seq.name)
        counter: dict[int, int] = {}
        for s in got:
            k = counter[s["start_frame"]] = counter.get(s["start_frame"], -1) + 1
            names.append(f"{seq.name}_{s['start_frame']:06d}_{k:02d}")
        samples += got
    hint = f"try a smaller --num-targets / --min-obs-ratio (or --seq-len {args.seq_len})"
    if not samples:
        raise UserError(f"no window of {args.num_targets} valid targets in {', '.join(empty)}: {hint}")
    for name in empty:
        print(f"warning: no window of {args.num_targets} valid targets in {name} (skipped): {hint}",
              file=sys.stderr)
    return samples, names, {"samples_per_sequence": per_seq}


def main(argv=None) -> None:
    args = parse_args(argv)
    check_args(args)
    prepare_out_dir(args.out, args.overwrite)
    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        size = tuple(args.image_size) if args.image_size else (1920, 1080)
        params = TrajectoryParams(frame_step=args.frame_step, manoeuvre_prob=1.0 if args.manoeuvres else 0.0)
        samples = synthetic_samples(args.num_samples, seq_len=args.seq_len, num_targets=args.num_targets,
                                    image_size=size, noise_ratio=args.noise_ratio, miss_prob=args.miss_prob,
                                    clutter_rate=args.clutter_rate, crossing_fraction=args.crossing_fraction,
                                    occlusion=args.occlusion, occlusion_len=tuple(args.occlusion_len),
                                    occlusion_runs=tuple(args.occlusion_runs), camera_motion=args.camera_motion,
                                    camera_magnitude=args.camera_magnitude, rng=rng, params=params)
        names = [f"synthetic_{i:06d}" for i in range(len(samples))]
        extra = {"crossing_fraction_requested": args.crossing_fraction}
    else:
        samples, names, extra = build_from_mot(args, rng)
    meta = {"mode": "synthetic" if args.synthetic else "motchallenge",
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, **extra}
    rows = write_dataset(args.out, samples, names, meta)
    print(f"wrote {len(rows)} samples (T={args.seq_len}, N={args.num_targets}) to {args.out}, "
          f"plus {args.out / 'index.csv'} and {args.out / 'metadata.json'}")


if __name__ == "__main__":
    run_main(main)
