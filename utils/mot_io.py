"""MOTChallenge text files: read gt/det/result tables, write and read tracks.

A MOTChallenge line is ``frame, id, left, top, width, height, conf, x, y, z`` (frames and ids
1-based, boxes in pixels; gt files of MOT16/17/20 end with ``consider, class, visibility`` instead).
Tracks inside the project are ``(T, S, 4)`` arrays of ``(x1, y1, x2, y2)`` with NaN where a source
has no box; :func:`write_tracks` / :func:`read_tracks` convert between the two.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.errors import UserError
from utils.output_dir import atomic_write

_SPLIT = re.compile(r"[,\s]+")
MAX_FRAMES = 1_000_000    # beyond any MOTChallenge sequence; a larger frame number is a damaged file


def load_mot_txt(path: str | Path, min_columns: int = 6) -> np.ndarray:
    """Parse a MOTChallenge text file (comma- or space-separated numbers, blank lines ignored).

    Args:
        path: gt.txt, det.txt or a tracker result file.
        min_columns: fewest columns a line may have.

    Returns:
        (rows, columns) float64 array; (0, min_columns) for an empty file.

    Raises:
        UserError: missing file, or a malformed line (named by file and line number): not numbers, a
            NaN or inf, a frame number outside [1, MAX_FRAMES], too few columns or a changing count.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MOTChallenge file not found: {path}")
    rows, width = [], None
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            fields = _SPLIT.split(text.strip(","))
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise UserError(f"{path}:{lineno}: expected comma-separated numbers, "
                                f"got {text[:60]!r}") from None
            if not all(math.isfinite(v) for v in values):
                raise UserError(f"{path}:{lineno}: non-finite number (nan or inf) in {text[:60]!r}")
            if not 1 <= values[0] <= MAX_FRAMES:
                raise UserError(f"{path}:{lineno}: frame number {values[0]:g} outside [1, {MAX_FRAMES}]")
            if len(values) < min_columns:
                raise UserError(f"{path}:{lineno}: expected at least {min_columns} columns, "
                                f"got {len(values)}")
            if width is not None and len(values) != width:
                raise UserError(f"{path}:{lineno}: {len(values)} columns where earlier lines have {width}")
            width = len(values)
            rows.append(values)
    if not rows:
        return np.zeros((0, min_columns))
    return np.asarray(rows, dtype=np.float64)


def ltwh_to_xyxy(ltwh: np.ndarray) -> np.ndarray:
    """(..., 4) (left, top, width, height) -> (..., 4) (x1, y1, x2, y2)."""
    return np.concatenate([ltwh[..., :2], ltwh[..., :2] + ltwh[..., 2:4]], axis=-1)


MIN_BOX_PX = 1.0   # smallest width/height of a written track box


def repair_boxes(tracks: np.ndarray, min_size: float = MIN_BOX_PX) -> tuple[np.ndarray, int]:
    """Make every finite box a proper box: width and height at least ``min_size``, same centre.

    A degenerate VEM setting (e.g. a tiny assignment temperature) can yield x2 < x1; MOTChallenge files
    and IoU scoring need x2 > x1, y2 > y1. Returns the repaired copy and how many boxes were changed.

    Shape: tracks (..., 4) (x1, y1, x2, y2) -> same.
    """
    tracks = np.array(tracks, dtype=np.float64 if np.asarray(tracks).dtype == np.float64 else np.float32)
    size = tracks[..., 2:] - tracks[..., :2]
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(tracks).all(-1)[..., None] & (size < min_size)
    if not bad.any():
        return tracks, 0
    centre = 0.5 * (tracks[..., :2] + tracks[..., 2:])
    half = np.where(bad, min_size / 2, size / 2)
    fixed = np.concatenate([np.where(bad, centre - half, tracks[..., :2]),
                            np.where(bad, centre + half, tracks[..., 2:])], axis=-1)
    return fixed.astype(tracks.dtype), int(bad.any(-1).sum())


def mot_lines(tracks, conf=None, first_frame: int = 1, ids=None, tail: str = "-1,-1,-1",
              decimals: int = 3) -> tuple[str, int]:
    """MOTChallenge lines ``frame,id,left,top,width,height,conf,<tail>`` of a dense track array.

    Args:
        tracks: (x1, y1, x2, y2) pixel boxes, NaN rows skipped; degenerate boxes repaired (:func:`repair_boxes`).
        conf: optional column-7 values (default 1).
        first_frame: the frame number of ``tracks[0]`` (1 for a file of its own; the window's first frame in
            the original sequence for a sample cut from one).
        ids: the id of each track (default ``1..S``).
        tail: the columns after ``conf`` (world coordinates in result files; ``class,visibility`` in gt files).
        decimals: digits after the point of the box coordinates.

    Shape:
        tracks: (T, S, 4), conf: (T, S), ids: (S,)

    Returns:
        (text, number of lines).
    """
    tracks = np.asarray(tracks.detach().cpu() if hasattr(tracks, "detach") else tracks, dtype=np.float64)
    tracks = repair_boxes(tracks)[0]
    T, S, _ = tracks.shape
    conf = np.ones((T, S)) if conf is None else np.broadcast_to(np.asarray(conf, dtype=np.float64), (T, S))
    ids = np.arange(1, S + 1) if ids is None else np.asarray(ids, dtype=np.int64)
    t, s = np.nonzero(np.isfinite(tracks).all(-1))
    box = tracks[t, s]
    table = np.column_stack([t + first_frame, ids[s], box[:, :2], box[:, 2:] - box[:, :2], conf[t, s]])
    d = decimals
    text = "".join(f"{int(r[0])},{int(r[1])},{r[2]:.{d}f},{r[3]:.{d}f},{r[4]:.{d}f},{r[5]:.{d}f},{r[6]:.4g},{tail}\n"
                   for r in table)
    return text, len(table)


def write_tracks(path: str | Path, tracks, conf=None, **options) -> int:
    """Write one sample's tracks as a MOTChallenge result file (written atomically).

    Args:
        path: output ``.txt`` file.
        tracks, conf, options: as :func:`mot_lines`.

    Returns:
        number of lines written. By default frame t is written as ``t + 1``, source s as id ``s + 1``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text, count = mot_lines(tracks, conf, **options)
    atomic_write(path, text)
    return count


def write_results(out_dir: str | Path, names: Sequence[str], tracks) -> list[Path]:
    """Write ``out_dir/<name>.txt`` for every sample of a batch.

    Shape:
        tracks: (B, T, S, 4), ``len(names) == B``.

    Returns:
        the written paths.
    """
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.txt" for name in names]
    for path, sample in zip(paths, tracks):
        write_tracks(path, sample)
    return paths


def read_tracks(path: str | Path, num_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a MOTChallenge result (or gt) file into a dense track array.

    Args:
        path: MOTChallenge text file; frames 1-based.
        num_frames: T; default the largest frame number in the file.

    Returns:
        tracks: (T, S, 4) float64 (x1, y1, x2, y2), NaN where id s has no box at frame t;
        ids: (S,) the file's ids in increasing order (track s has id ``ids[s]``).
    """
    table = load_mot_txt(path)
    frames = table[:, 0].astype(np.int64)
    if len(frames) and frames.min() < 1:
        raise UserError(f"{path}: frame numbers must start at 1, found {frames.min()}")
    T = int(frames.max()) if num_frames is None and len(frames) else int(num_frames or 0)
    ids, s = np.unique(table[:, 1].astype(np.int64), return_inverse=True)
    tracks = np.full((T, len(ids), 4), np.nan)
    inside = frames <= T
    tracks[frames[inside] - 1, s[inside]] = ltwh_to_xyxy(table[inside, 2:6])
    return tracks, ids
