"""Benchmark of the SC-ASS VEM (docs/method.md §6) and of the metric computation (§8.2).

    python bench/bench_vem_scass.py                 # reference size: B 64, T 50, F 513, 70 iterations
    python bench/bench_vem_scass.py --iters 5       # quicker; per-iteration figures are extrapolated
    python bench/bench_vem_scass.py --skip-vem --metric-workers 1 2   # metrics only, serial and 2 processes

Prints mixtures per second of the VEM alone with two reference-size SRNNs (untrained weights:
timing does not depend on them), where the time goes (E-S recursion, E-Z, E-W, per iteration),
the arithmetic it needs (multiply-adds of the dense layers and LSTMs) against what this machine's
matrix products deliver, the metric computation time per mixture (alone, and for a batch of mixtures scored
as mixdvae_scass.py scores them: three methods, in 1 or more worker processes), and the peak memory (RSS).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # as mixdvae_scass.py (BSS-eval's solves)

import numpy as np
import torch

from model.vem_scass import VEMSettings, e_s, e_w, e_z, observation_variance, run_vem
from utils.checkpoint import build_srnn

REFERENCE_NETWORK = dict(x_dim=513, z_dim=16, activation="tanh", dense_x_h=[256], dim_RNN_h=128, num_RNN_h=1,
                         dense_hx_g=[256], dim_RNN_g=128, num_RNN_g=1, dense_gz_z=[64, 32], dense_hz_x=[256],
                         dense_hz_z=[64, 32], dropout_p=0.0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def macs_per_frame(net: dict) -> dict[str, int]:
    """Multiply-adds per (mixture, frame, source) of the recursion step and of the encoder part E-Z adds."""
    def mlp(d_in, sizes):
        total = 0
        for size in sizes:
            total, d_in = total + d_in * size, size
        return total, d_in

    x, z, h, g = net["x_dim"], net["z_dim"], net["dim_RNN_h"], net["dim_RNN_g"]
    phi, d_phi = mlp(x, net["dense_x_h"])
    lstm_h = 4 * h * (d_phi + h)
    dec, d_dec = mlp(h + z, net["dense_hz_x"])
    step = phi + lstm_h + dec + d_dec * x
    hx, d_hx = mlp(h + x, net["dense_hx_g"])
    inf, d_inf = mlp(g + z, net["dense_gz_z"])
    encoder_extra = hx + 4 * g * (d_hx + g) + inf + 2 * d_inf * z
    return {"E-S step": step, "E-Z (reusing h)": encoder_extra}


def matmul_gflops(m: int, k: int, n: int, repeats: int = 50) -> float:
    a, w = torch.randn(m, k), torch.randn(n, k)
    for _ in range(5):
        a @ w.T
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ w.T
    return 2 * m * k * n * repeats / (time.perf_counter() - t0) / 1e9


def bench_vem(args) -> None:
    torch.manual_seed(0)
    dvaes = [build_srnn(REFERENCE_NETWORK, "is").eval() for _ in range(2)]
    x = torch.randn(args.batch, args.frames, REFERENCE_NETWORK["x_dim"], dtype=torch.complex64)
    opts = VEMSettings(n_iter=args.iters, es_power=args.es_power)
    run_vem(dvaes, x[:2, :5], VEMSettings(n_iter=2))                                   # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    run_vem(dvaes, x, opts)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"VEM alone: batch {args.batch} x {args.frames} frames x {x.shape[-1]} bins, 2 sources, {args.iters} "
          f"iterations: {seconds:.2f} s -> {args.batch / seconds:.2f} mixtures/s wall; process CPU time "
          f"{cpu:.2f} s over {torch.get_num_threads()} thread(s) -> {args.batch * torch.get_num_threads() / cpu:.2f} "
          "mixtures/s if every thread had a core to itself")

    # Where the time goes, one iteration after the first (recursive E-S, E-Z reusing h, E-W).
    with torch.inference_mode():
        v_x = observation_variance(x.real.square() + x.imag.square(), opts.ratio_v_theta_x, opts.v_x_floor)
        eta = torch.full((args.batch, 2, *x.shape[1:]), 0.5)
        z = e_z(dvaes, torch.rand(args.batch, 2, *x.shape[1:]), "sample")
        parts = {}
        t0 = time.perf_counter()
        mu, v, _, power, h = e_s(dvaes, x, v_x, eta, z, opts.es_power)
        parts["E-S (time recursion, 2 DVAE steps per frame)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        e_z(dvaes, power, "sample", h)
        parts["E-Z (encoder, reusing the E-S recurrence)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        e_w(x, v_x, mu, v)
        parts["E-W"] = time.perf_counter() - t0
    total = sum(parts.values())
    if args.iters != 70:
        print(f"  extrapolated to 70 iterations: {args.batch / (seconds + (70 - args.iters) * total):.2f} mixtures/s")
    print("one iteration:")
    for name, sec in parts.items():
        print(f"  {name:<48s} {sec * 1e3:8.1f} ms  ({100 * sec / total:4.1f} %)")
    macs = macs_per_frame(REFERENCE_NETWORK)
    iter_macs = sum(macs.values()) * args.batch * args.frames * 2
    print("arithmetic per iteration: " + ", ".join(f"{k} {v / 1e6:.1f} M" for k, v in macs.items())
          + f" multiply-adds per mixture-frame-source -> {2 * iter_macs / 1e9:.1f} GFLOP "
          f"({2 * iter_macs * 70 / 1e9 / args.batch:.1f} GFLOP per mixture at 70 iterations)")
    rate = 2 * iter_macs / total / 1e9
    ceiling = matmul_gflops(args.batch, 513, 256)
    print(f"achieved {rate:.1f} GFLOP/s; a ({args.batch} x 513) @ (513 x 256) matrix product runs at "
          f"{ceiling:.1f} GFLOP/s here -> at most {ceiling * 1e9 / (2 * iter_macs * 70 / args.batch):.1f} "
          "mixtures/s if every operation ran at that speed")


def bench_metrics(args) -> None:
    from utils.audio_metrics import ALL_METRICS, get_metrics

    fs, length = 16000, (args.frames - 1) * 256
    rng = np.random.default_rng(0)
    t = np.arange(length) / fs
    s1 = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    s2 = rng.normal(0, 0.1, length) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    clean = np.stack([s1, s2])
    mix = clean.sum(0)
    est = clean + 0.05 * rng.normal(0, 0.1, clean.shape)
    get_metrics(mix, clean, est, fs, ALL_METRICS)                                     # warm-up (imports)
    print(f"metrics of one mixture ({length / fs:.2f} s, 2 sources; estimate and mixture scored), "
          f"median of {args.metric_items}:")
    for group in (("si_sdr", "rmse"), ("pesq",), ("estoi",), ("sdr", "sir", "sar"), ALL_METRICS):
        times = []
        for _ in range(args.metric_items):
            t0 = time.perf_counter()
            get_metrics(mix, clean, est, fs, group, item="bench")
            times.append(time.perf_counter() - t0)
        label = "+".join(group) if group != ALL_METRICS else "all (one method)"
        print(f"  {label:<28s} {np.median(times) * 1e3:8.1f} ms")
    print("  (mixdvae_scass.py calls the full set once per method: MixDVAE, NMF, IBM; the Mixture row reuses them)")
    from utils.audio_metrics import score_items

    items = []
    for k in range(args.metric_batch):              # distinct mixtures: the mixture's scores are cached per item
        noisy = clean * (1 + 0.01 * k)
        items.append((noisy.sum(0), noisy, {m: noisy + (j + 1) * 0.05 * rng.normal(0, 0.1, clean.shape)
                                            for j, m in enumerate(("MixDVAE", "NMF", "IBM"))}, f"mix{k}"))
    for workers in args.metric_workers:
        t0, c0 = time.perf_counter(), time.process_time()
        score_items(items, fs, ALL_METRICS, workers=workers)       # the workers' start-up is included
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  batch of {len(items)} mixtures x 3 methods + mixture, {workers} process(es): {wall:.2f} s wall "
              f"-> {1e3 * wall / len(items):.1f} ms per mixture ({cpu:.2f} s CPU in the main process)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--iters", type=int, default=70)
    ap.add_argument("--es-power", default="sample", choices=("sample", "expected"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--metric-items", type=int, default=5, help="mixtures timed for the metrics")
    ap.add_argument("--metric-batch", type=int, default=32, help="mixtures of the batch scored as the script does")
    ap.add_argument("--metric-workers", type=int, nargs="+", default=[1, 2], help="worker processes to time")
    ap.add_argument("--skip-metrics", action="store_true")
    ap.add_argument("--skip-vem", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, python {platform.python_version()}")
    if not args.skip_vem:
        bench_vem(args)
        print(f"peak memory (RSS) after the VEM: {peak_rss_mb():.0f} MB")
    if not args.skip_metrics:
        bench_metrics(args)
        print(f"peak memory (RSS): {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
