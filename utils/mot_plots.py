"""Figures of a MOT run: tracks over detections and ground truth, MOTA/IDF1 per iteration.

Matplotlib is imported inside the functions (Agg backend) so that importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _centres(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) (x1, y1, x2, y2) -> (..., 2) (x centre, y centre)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return 0.5 * (boxes[..., :2] + boxes[..., 2:])


def plot_tracks(path: str | Path, det: np.ndarray, gt: np.ndarray, tracks: Mapping[str, np.ndarray],
                title: str = "") -> None:
    """One row per method, x-centre and y-centre against the frame: detections (grey dots), ground truth
    (dashed black) and the method's tracks (one colour per source).

    Shape:
        det (T, K, 4) pixels, NaN rows missing; gt (T, N, 4); tracks[method] (T, S, 4).
    """
    plt = _pyplot()
    rows = max(len(tracks), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.8 * rows), sharex=True, squeeze=False)
    frames = np.arange(det.shape[0])
    det_c, gt_c = _centres(det), _centres(gt)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, (method, trk) in enumerate(tracks.items()):
        trk_c = _centres(trk)
        for c, axis_name in enumerate(("x", "y")):
            ax = axes[r, c]
            ax.plot(np.repeat(frames, det.shape[1]), det_c[..., c].ravel(), ".", color="0.6", ms=3,
                    label="detections")
            for n in range(gt.shape[1]):
                ax.plot(frames, gt_c[:, n, c], "--", color="k", lw=1, label="ground truth" if n == 0 else None)
            for s in range(trk.shape[1]):
                ax.plot(frames, trk_c[:, s, c], "-", color=colours[s % len(colours)], lw=1.5,
                        label=f"source {s + 1}")
            ax.set_ylabel(f"{axis_name} centre (px)")
            ax.set_title(f"{method}", fontsize=9, loc="left")
            if axis_name == "y":
                ax.invert_yaxis()                                  # image y grows downwards
        axes[r, 0].legend(fontsize=7, loc="best", ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_iteration_curves(path: str | Path, curves: Mapping[str, Mapping[str, np.ndarray]],
                          references: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """MOTA and IDF1 (%) against the VEM iteration (0 = after the initialisation).

    Args:
        curves: method -> {"mota": (I,), "idf1": (I,)} fractions.
        references: optional method -> {"mota": v, "idf1": v} drawn as horizontal lines (e.g. SORT).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("mota", "idf1")):
        for method, values in curves.items():
            ax.plot(np.arange(len(values[metric])), 100 * np.asarray(values[metric]), label=method)
        for method, values in (references or {}).items():
            ax.axhline(100 * values[metric], ls=":", color="0.4", label=method)
        ax.set_xlabel("VEM iteration (0 = after initialisation)")
        ax.set_ylabel(f"{metric.upper()} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
