"""Copy a training checkpoint to model/pretrained/ without the optimizer state (smaller file).

    python tools/ship_checkpoint.py output/<run>/best.pt model/pretrained/mot_srnn.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.checkpoint import read_checkpoint
from utils.errors import run_main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    args = ap.parse_args()
    ckpt = read_checkpoint(args.src)
    ckpt.pop("optimizer", None)
    ckpt["source_run"] = args.src.parent.name
    args.dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.dst.with_name(args.dst.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(args.dst)
    print(f"wrote {args.dst} (epoch {ckpt.get('epoch')}, validation loss {ckpt.get('val_loss'):.4f}, "
          f"{args.dst.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    run_main(main)
