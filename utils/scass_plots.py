"""Figures of an SC-ASS run: spectrograms and metric per VEM iteration.

Each function writes one PNG atomically (temporary file, then rename), so an interrupted
run never leaves a half-written figure under the final name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from utils.output_dir import atomic_write

DB_RANGE = 80.0  # dynamic range shown in the spectrograms


def to_db(power: np.ndarray) -> np.ndarray:
    """Power in dB, floored at -200 dB."""
    return 10 * np.log10(np.maximum(power, 1e-20))


def save_figure(fig, path: str | Path, dpi: int = 90) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def plot_spectrograms(path: str | Path, mix_power: np.ndarray, true_power: np.ndarray, est_power: np.ndarray,
                      eta: np.ndarray, fs: int, hop: int, source_names: Sequence[str], title: str = "") -> Path:
    """Mixture, true and estimated source spectrograms (dB, shared colour scale) and the eta masks.

    Layout: row 1 = mixture, true sources; row 2 = eta of source 1 (the soft mask of the flute;
    with two sources the speech mask is 1 - eta), estimated sources.

    Shape:
        mix_power (T, F); true_power, est_power, eta (N, T, F).
    """
    num_src, num_frames = true_power.shape[:2]
    extent = (0.0, num_frames * hop / fs, 0.0, fs / 2000.0)   # seconds, kHz
    vmax = float(to_db(mix_power).max())
    vmin = vmax - DB_RANGE
    fig, axes = plt.subplots(2, num_src + 1, figsize=(3.6 * (num_src + 1), 5.6), squeeze=False)
    panels = [(axes[0, 0], to_db(mix_power), "mixture", "db")]
    panels += [(axes[0, n + 1], to_db(true_power[n]), f"true s{n + 1} ({source_names[n]})", "db")
               for n in range(num_src)]
    panels += [(axes[1, n + 1], to_db(est_power[n]), f"MixDVAE s{n + 1} ({source_names[n]})", "db")
               for n in range(num_src)]
    panels.append((axes[1, 0], eta[0], f"eta s1 ({source_names[0]})", "mask"))
    for ax, image, label, kind in panels:
        kw = dict(vmin=vmin, vmax=vmax, cmap="magma") if kind == "db" else dict(vmin=0.0, vmax=1.0, cmap="viridis")
        im = ax.imshow(image.T, origin="lower", aspect="auto", extent=extent, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_metric_per_iteration(path: str | Path, values: np.ndarray, input_values: np.ndarray,
                              source_names: Sequence[str], metric: str = "SI-SDR (dB)", title: str = "") -> Path:
    """Mean metric of the VEM estimates after every iteration, one line per source, mixture dashed.

    Shape:
        values (I, N) (iteration i = row i, plotted as i + 1); input_values (N,).
    """
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    iters = np.arange(1, values.shape[0] + 1)
    for n, name in enumerate(source_names):
        line, = ax.plot(iters, values[:, n], marker="." if len(iters) < 30 else None, label=f"s{n + 1} {name}")
        ax.axhline(input_values[n], color=line.get_color(), linestyle="--", linewidth=1,
                   label=f"s{n + 1} mixture")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("VEM iteration")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
