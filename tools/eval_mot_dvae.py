"""Reconstruction error of a MOT DVAE on noisy validation trajectories vs constant velocity.

    python tools/eval_mot_dvae.py model/pretrained/mot_srnn.pt data/generated/mot_synthetic/val

For box noise of 0, 3 and 6 % of the box size (std = ratio x width on x coordinates, x height on y
coordinates) it reports, in pixels at 1920x1080 (mean over frames 3..T of the L2 norm over the 4
coordinates, against the *clean* trajectory):
- DVAE: teacher-forced reconstruction of the noisy input (encoder posterior-mean z, decoder mean);
- CV: one-step constant-velocity prediction 2 o_{t-1} - o_{t-2} from the noisy inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.trajectory_dataset import TrajectoryDataset
from utils.checkpoint import load_dvae
from utils.errors import run_main

PIXELS = torch.tensor([1920.0, 1080.0, 1920.0, 1080.0])


def add_box_noise(x: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise with std = ratio x (width for x1, x2; height for y1, y2). x: (B, T, 4)."""
    size = torch.stack([x[..., 2] - x[..., 0], x[..., 3] - x[..., 1]], -1).repeat(1, 1, 2)
    return x + ratio * size * torch.randn(x.shape, generator=gen)


def l2_px(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over batch and frames 3..T of the L2 distance in pixels; a, b (B, T, 4) normalised."""
    return torch.linalg.norm((a - b)[:, 2:] * PIXELS, dim=-1).mean()


@torch.no_grad()
def evaluate(model, clean: torch.Tensor, ratios=(0.0, 0.03, 0.06), seed: int = 0, batch: int = 1000) -> list[dict]:
    rows = []
    for ratio in ratios:
        gen = torch.Generator().manual_seed(seed)
        dvae, cv, n = 0.0, 0.0, 0
        for i in range(0, clean.shape[0], batch):
            x = clean[i:i + batch]
            noisy = add_box_noise(x, ratio, gen)
            recon = model.reconstruct(noisy)[0]
            pred = torch.cat([noisy[:, :2], 2 * noisy[:, 1:-1] - noisy[:, :-2]], dim=1)
            dvae += l2_px(recon, x).item() * x.shape[0]
            cv += l2_px(pred, x).item() * x.shape[0]
            n += x.shape[0]
        rows.append({"noise_ratio": ratio, "dvae_px": dvae / n, "cv_px": cv / n})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("val_dir", help="folder of trajectory .npz files (e.g. data/generated/mot_synthetic/val)")
    ap.add_argument("--seq-len", type=int, default=60)
    ap.add_argument("--max-seq", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args()
    model, ckpt = load_dvae(args.checkpoint, head="gaussian")
    clean = TrajectoryDataset(args.val_dir, args.seq_len).boxes[: args.max_seq]
    rows = evaluate(model, clean, seed=args.seed)
    print(f"checkpoint {args.checkpoint} (epoch {ckpt.get('epoch')}), {clean.shape[0]} sequences of {args.seq_len}")
    print(f"{'box noise':>10} {'DVAE recon [px]':>16} {'const. velocity [px]':>21}")
    for r in rows:
        print(f"{100 * r['noise_ratio']:9.0f}% {r['dvae_px']:16.2f} {r['cv_px']:21.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run_main(main)
