"""N-target samples from MOTChallenge sequences (the MOT17-3T protocol).

Reads ``SEQ/gt/gt.txt`` and a detection file (``SEQ/det/det.txt`` or any MOTChallenge result file) in
the MOT15 or MOT16/17/20 column layout, matches detections to the ground truth per frame (Hungarian,
IoU >= 0.5), slides a window of ``sequence_len`` frames by ``slide_step`` frames and keeps targets
annotated on every frame of the window, detected on its first frame and on at least ``min_obs_ratio``
of its frames; up to ``max_combinations`` random N-subsets per window. ``start_frame`` of a sample is
the original frame number of its first frame and ``gt_ids`` the original identities.
"""

from __future__ import annotations

import argparse
import configparser
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from data.mot_samples import MATCH_IOU, shuffle_detections
from utils.boxes import valid_boxes
from utils.errors import UserError
from utils.mot_eval import iou_matrix
from utils.mot_io import load_mot_txt, ltwh_to_xyxy


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
    det_tab = det_tab[valid_boxes(ltwh_to_xyxy(det_tab[:, 2:6]))]
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
    """All samples of one sequence (MOTChallenge builder); empty if no window qualifies."""
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

