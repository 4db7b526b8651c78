"""Tracking results in the MOTChallenge layout TrackEval reads, so external tools can score a run.

Under the run directory::

    trackers/<benchmark>-<split>/<method>/data/<seq>.txt     one result file per sample and method
    gt/<benchmark>-<split>/<seq>/gt/gt.txt                   the sample's ground truth
    gt/<benchmark>-<split>/<seq>/seqinfo.ini                 its length and image size
    seqmaps/<benchmark>-<split>.txt                          the list of sequences

Every sample is one sequence ``<seq>`` (the sample's file name). For a sample cut from a MOTChallenge
sequence, frames are numbered as in the original sequence (the window starts at ``start_frame``;
``seqLength`` runs to the window's last frame, the frames before it are empty) and identities are the
original ones: ground-truth target n has id ``gt_ids[n]``, and so has the source started on it
(synthetic samples, whose ids start at 0, are written from id 1).

Scoring the tree with TrackEval::

    trackeval.datasets.MotChallenge2DBox({"GT_FOLDER": run/"gt", "TRACKERS_FOLDER": run/"trackers",
        "SEQMAP_FOLDER": run/"seqmaps", "BENCHMARK": <benchmark>, "SPLIT_TO_EVAL": <split>})

gives the HOTA the run reports (a test checks it to 1e-6).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from utils.mot_io import mot_lines
from utils.output_dir import atomic_write

DECIMALS = 6    # box coordinates as the run scored them, so an external score matches the run's


def safe_name(text: str) -> str:
    """A folder or file name: letters, digits, ``_``, ``-`` and ``.`` (others, e.g. ``/`` or spaces, become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text)) or "_"


def track_ids(gt_ids) -> np.ndarray:
    """The ids written for targets ``gt_ids`` (and their sources): the original ones, shifted by one when
    they start at 0 (synthetic samples number their targets from 0; MOTChallenge ids are positive)."""
    ids = np.asarray(gt_ids, dtype=np.int64)
    return ids + 1 if len(ids) and ids.min() < 1 else ids


class TrackEvalExport:
    """Writes a run's ground truth and tracks, batch by batch, in the layout above.

    Args:
        root: the run directory.
        benchmark: e.g. ``MixDVAE`` or ``MOT17``.
        split: e.g. ``test``.
    """

    def __init__(self, root: str | Path, benchmark: str, split: str):
        self.root = Path(root)
        self.benchmark, self.split = safe_name(benchmark), safe_name(split)
        self.names: list[str] = []

    @property
    def gt_set(self) -> str:
        return f"{self.benchmark}-{self.split}"

    def add_ground_truth(self, batch: dict) -> None:
        """``gt.txt`` and ``seqinfo.ini`` of every sample of a :func:`data.mot_dataset.collate_mot` batch."""
        gt = np.asarray(batch["gt"], dtype=np.float64)
        for b, name in enumerate(batch["names"]):
            start, T = int(batch["start_frames"][b]), gt.shape[1]
            width, height = (int(round(float(v))) for v in batch["image_size"][b])
            folder = self.root / "gt" / self.gt_set / name
            (folder / "gt").mkdir(parents=True, exist_ok=True)
            text, _ = mot_lines(gt[b], first_frame=start, ids=track_ids(batch["gt_ids"][b]), tail="1,1",
                                decimals=DECIMALS)
            atomic_write(folder / "gt" / "gt.txt", text)      # consider = 1, class 1 = pedestrian, visibility 1
            atomic_write(folder / "seqinfo.ini", f"[Sequence]\nname={name}\nimDir=img1\nframeRate=30\n"
                         f"seqLength={start + T - 1}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n")
            self.names.append(name)

    def add_tracks(self, method: str, batch: dict, tracks: np.ndarray) -> None:
        """Result files of ``method`` for the samples of ``batch``; source n gets the id of target n.

        Shape: tracks (B, T, N, 4) pixels ``(x1, y1, x2, y2)``, NaN where a source has no box.
        """
        folder = self.root / "trackers" / self.gt_set / safe_name(method) / "data"
        folder.mkdir(parents=True, exist_ok=True)
        for b, name in enumerate(batch["names"]):
            text, _ = mot_lines(tracks[b], first_frame=int(batch["start_frames"][b]),
                                ids=track_ids(batch["gt_ids"][b]), decimals=DECIMALS)
            atomic_write(folder / f"{name}.txt", text)

    def write_seqmap(self, names: Sequence[str] | None = None) -> Path:
        """``seqmaps/<benchmark>-<split>.txt``: a ``name`` header, then one sequence per line."""
        (self.root / "seqmaps").mkdir(parents=True, exist_ok=True)
        rows = ["name", *(names if names is not None else self.names)]
        return atomic_write(self.root / "seqmaps" / f"{self.gt_set}.txt", "\n".join(rows) + "\n")
