"""Draw docs/mixdvae_overview.png, the README's one-glance diagram of the MixDVAE VEM."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).resolve().parents[1] / "docs" / "mixdvae_overview.png"


def box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)


def arrow(ax, a, b, text="", style="-|>"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, color="0.25"))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.03, text, ha="center", fontsize=8, color="0.2")


def main() -> None:
    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0.02, 0.98)
    ax.axis("off")
    box(ax, 0.01, 0.62, 0.2, 0.3, "pre-trained DVAE\n(SRNN) x N\nsingle-source\ndynamics", "#dbe9f6")
    box(ax, 0.01, 0.08, 0.2, 0.3, "observations\ndetector boxes o_tk\nor mixture STFT x_ft", "#f6e3db")
    box(ax, 0.32, 0.62, 0.2, 0.3, "E-Z\nz_n from the encoder\non source estimates\n(+ fine-tuning)", "#e4f2de")
    box(ax, 0.32, 0.08, 0.2, 0.3, "E-W\nassignment posterior\n(eta: who produced\nwhich observation)", "#e4f2de")
    box(ax, 0.63, 0.35, 0.2, 0.3, "E-S\nsource posterior\nDVAE prediction fused\nwith assigned obs.", "#e4f2de")
    box(ax, 0.87, 0.35, 0.12, 0.3, "tracks /\nseparated\nsources", "#f3f0d8")
    arrow(ax, (0.21, 0.77), (0.32, 0.77))
    arrow(ax, (0.21, 0.23), (0.32, 0.23))
    arrow(ax, (0.52, 0.74), (0.63, 0.58), "z, h")
    arrow(ax, (0.52, 0.26), (0.63, 0.42), "eta")
    arrow(ax, (0.73, 0.35), (0.52, 0.16), "m, Sigma")
    arrow(ax, (0.73, 0.65), (0.52, 0.85), "m")
    arrow(ax, (0.83, 0.5), (0.87, 0.5))
    ax.text(0.575, 0.5, "VEM\niterations", ha="center", va="center", fontsize=8, style="italic", color="0.35")
    fig.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
