"""Tracking quality and cost of one MixDVAE VEM variant on a test split, with 95 % bootstrap intervals.

    python bench/quality_mot.py [--data DIR] [--tol TOL] [--n-iter N] [--init-iter N] [--plain]
                                [--out FILE.json]

Runs MixDVAE with the shipped config's settings and checkpoint (``config/cfg_dvae_vem_mot.ini``; ``--tol``
overrides ``convergence_tol``, ``--n-iter`` / ``--init-iter`` the caps ``N_iter_total`` / ``init_iter_number``)
on every sample of ``--data`` (default: the synthetic test split, data/generated/mot_sets/synthetic/test) and
prints MOTA, IDF1 and HOTA with percentile bootstrap intervals over samples (utils/mot_experiments.py), the mean
number of iterations after the initialisation, and the VEM's wall and CPU time. Used for the before/after
quality table of the README's Performance section: a speed change must keep every figure within the
fixed-iteration run's interval.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_vem_mot import CONFIG, load_model, shipped_settings  # noqa: E402
from model.vem_mot import SRNNDynamics, run_vem  # noqa: E402
from utils.mot_experiments import bootstrap_ci, load_split, score_samples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data/generated/mot_sets/synthetic/test"))
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--tol", type=float, help="convergence tolerance (default: the config's; 0 = fixed counts)")
    ap.add_argument("--n-iter", type=int, help="VEM iterations after the initialisation, a cap when tol > 0 "
                    "(default: the config's N_iter_total)")
    ap.add_argument("--init-iter", type=int, help="iterations per initialisation window, a cap when tol > 0 "
                    "(default: the config's init_iter_number)")
    ap.add_argument("--plain", action="store_true", help="SRNN.step / SRNN.inference instead of FastSRNN")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the figures and per-sample counts to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings, dyn_kwargs, checkpoint = shipped_settings(args.config, args.tol, log_elbo=False)
    if args.n_iter is not None:
        settings = replace(settings, n_iter=args.n_iter)
    if args.init_iter is not None:
        settings = replace(settings, init_iter=args.init_iter)
    model, source = load_model(str(checkpoint))
    split = load_split(args.data)
    dynamics = SRNNDynamics(model, fast=not args.plain,
                            **{**dyn_kwargs, "es_mode": dyn_kwargs["es_mode"] if model.increments else "filter"})
    torch.manual_seed(args.seed)
    tracks, iterations = [], []
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, split["det"].shape[0], args.batch):
        sl = slice(start, start + args.batch)
        result = run_vem(split["det"][sl], split["det_mask"][sl], split["init"][sl], dynamics, settings,
                         split["image_size"][sl])
        tracks.append(result.tracks.numpy())
        iterations.append(result.iterations.numpy())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_sample = score_samples(split["gt"].numpy(), np.concatenate(tracks))
    ci = bootstrap_ci(per_sample, num_boot=2000)
    iters = np.concatenate(iterations)
    B = len(iters)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} thread(s); {B} samples of {args.data}; "
          f"DVAE {source} ({'FastSRNN' if not args.plain else 'plain'}, E-S {dynamics.es_mode}), tol {settings.tol:g}, "
          f"caps {settings.init_iter} per window + {settings.n_iter}")
    for k in ("mota", "idf1", "hota"):
        value, low, high = ci[k]
        print(f"  {k.upper():5s} {100 * value:7.3f} %  [{100 * low:.3f}, {100 * high:.3f}]")
    print(f"  iterations after the initialisation: mean {iters.mean():.2f}, max {iters.max()}; "
          f"VEM {wall:.1f} s wall, {cpu:.1f} s CPU -> {B / cpu:.1f} samples/s (CPU)")
    if args.out:
        Path(args.out).write_text(json.dumps({
            "data": args.data, "tol": settings.tol, "n_iter": settings.n_iter, "init_iter": settings.init_iter,
            "fast": not args.plain, "samples": B,
            "ci": ci,
            "mean_iterations": float(iters.mean()), "wall_s": wall, "cpu_s": cpu,
            "per_sample": {k: v.tolist() for k, v in per_sample.items()}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
