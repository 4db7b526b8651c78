"""Time of the tracking metric tables (motmetrics CLEAR-MOT/ID + TrackEval HOTA per method), serial and in
worker processes, as ``mixdvae_mot.py`` computes them at the end of a run (``[Eval] metric_workers``).

    python bench/bench_mot_metrics.py [--samples 300] [--methods 8] [--workers 1 2]

Synthetic samples (T 60, N 3, the generator of data/mot_tracking_data_generation.py) tracked by "methods" that
are the ground truth with box noise, occasional identity swaps and missed boxes; prints the wall and CPU time
of ``Scores.tables`` for every worker count and checks that the tables are equal.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from data.mot_tracking_data_generation import synthetic_samples  # noqa: E402
from utils.mot_scores import Scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--methods", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    samples = synthetic_samples(args.samples, seq_len=60, num_targets=3, miss_prob=0.15, crossing_fraction=0.5,
                                rng=rng)
    gt = np.stack([s["gt"] for s in samples]).astype(np.float64)                     # (B, T, N, 4)
    scores = Scores(0.5)
    scores.names.extend(str(b) for b in range(args.samples))
    t0 = time.perf_counter()
    for m in range(args.methods):
        tracks = gt + rng.normal(0, 2.0 + m, gt.shape)
        swap = rng.random(gt.shape[:2]) < 0.02
        tracks[swap] = tracks[swap][:, ::-1]
        tracks[rng.random(gt.shape[:3]) < 0.05] = np.nan
        scores.add(f"method{m}", gt, tracks)
    print(f"{args.samples} samples x {args.methods} methods; per-batch accumulation {time.perf_counter() - t0:.1f} s")
    first = None
    for workers in args.workers:
        t0, c0 = time.perf_counter(), time.process_time()
        tables = scores.tables(workers)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  tables, {workers} process(es): {wall:.1f} s wall, {cpu:.1f} s CPU in the main process", flush=True)
        if first is None:
            first = tables
        for m in first:
            pd.testing.assert_frame_equal(tables[m], first[m], check_exact=True)
    print("  tables equal across worker counts")


if __name__ == "__main__":
    main()
