"""Pre-training throughput: seconds per epoch and peak memory.

    python bench/bench_pretrain.py [--threads N]

MOT: reference SRNN (1.5 k parameters) on 20 000 synthetic sequences of 60 frames, batch 256.
Audio: reference SRNN (x_dim 513, ~1 M parameters) on 800 random power spectrogram sequences of
50 frames (about the size of the surrogate corpus), batch 256. One training epoch each, without
(ss = 0) and with (ss = 0.5, two passes) scheduled sampling. Each case runs in a fresh process
so that its peak resident memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MOT_NET = dict(x_dim=4, z_dim=4, activation="tanh", dense_x_h=[4], dim_RNN_h=8, num_RNN_h=1, dense_hx_g=[],
               dim_RNN_g=0, num_RNN_g=1, dense_gz_z=[16, 8], dense_hz_x=[16], dense_hz_z=[8, 8], dropout_p=0.0)
AUDIO_NET = dict(x_dim=513, z_dim=16, activation="tanh", dense_x_h=[256], dim_RNN_h=128, num_RNN_h=1,
                 dense_hx_g=[256], dim_RNN_g=128, num_RNN_g=1, dense_gz_z=[64, 32], dense_hz_x=[256],
                 dense_hz_z=[64, 32], dropout_p=0.0)


def run_case(case: str, ss: float, threads: int) -> dict:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from data.mot_generate_synthetic_data import generate_trajectories
    from train_dvae_single import run_epoch
    from utils.checkpoint import build_srnn

    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    if case == "mot":
        data = torch.from_numpy(generate_trajectories(20000, 60, np.random.default_rng(0)))
        model, beta = build_srnn(MOT_NET, "gaussian"), 1.0
    else:
        data = torch.rand(800, 50, 513) ** 4 * 10
        model, beta = build_srnn(AUDIO_NET, "is"), 0.01
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(data, batch_size=256, shuffle=True)
    t0 = time.perf_counter()
    run_epoch(model, loader, beta, 1.0, ss, opt)
    sec = time.perf_counter() - t0
    return {"case": case, "ss_prob": ss, "sequences": len(data), "seconds_per_epoch": round(sec, 2),
            "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "threads": torch.get_num_threads(), "parameters": model.num_parameters()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--ss", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.ss, args.threads)))
        return
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {platform.system()}, python {platform.python_version()}")
    print(f"{'case':6} {'ss':>4} {'sequences':>9} {'s/epoch':>8} {'peak RSS MiB':>13} {'threads':>7} {'params':>8}")
    for case in ("mot", "audio"):
        for ss in (0.0, 0.5):
            out = subprocess.run([sys.executable, __file__, "--case", case, "--ss", str(ss), "--threads",
                                  str(args.threads)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['case']:6} {r['ss_prob']:4.1f} {r['sequences']:9d} {r['seconds_per_epoch']:8.2f} "
                  f"{r['peak_rss_MiB']:13.1f} {r['threads']:7d} {r['parameters']:8d}")


if __name__ == "__main__":
    main()
