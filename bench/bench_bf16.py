"""BF16 against FP32 matrix products on this CPU, at the shapes of the VEMs' DVAE passes.

    python bench/bench_bf16.py [--threads 1]

For each (M x K) @ (K x N) product: GFLOP/s in float32, in bfloat16 (operands already bf16), and in
bfloat16 including the conversion of the float32 activation (what autocast does at every call).
Timed in process CPU time (the machine is shared), median of 5 repeats.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

SHAPES = {
    "SC-ASS phi_x: 64 x 513 @ 513 x 256": (64, 513, 256),
    "SC-ASS LSTM: 64 x 384 @ 384 x 512": (64, 384, 512),
    "SC-ASS decoder out: 64 x 256 @ 256 x 513": (64, 256, 513),
    "SC-ASS E-Z, all frames: 3200 x 513 @ 513 x 256": (3200, 513, 256),
    "MOT E-S step: 3072 x 16 @ 16 x 32 (feature-major)": (3072, 16, 32),
    "large: 1024 x 1024 @ 1024 x 1024": (1024, 1024, 1024),
}


def gflops(fn, flop: float, repeats: int) -> float:
    for _ in range(3):
        fn()
    runs = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(repeats):
            fn()
        runs.append(time.process_time() - t0)
    runs.sort()
    return flop * repeats / max(runs[2], 1e-9) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'product':<52s} {'fp32':>8s} {'bf16':>8s} {'bf16+cast':>10s}  GFLOP/s")
    for name, (m, k, n) in SHAPES.items():
        a, w = torch.randn(m, k), torch.randn(k, n)
        a16, w16 = a.bfloat16(), w.bfloat16()
        flop = 2.0 * m * k * n
        repeats = max(3, int(2e9 / flop))
        f32 = gflops(lambda a=a, w=w: a @ w, flop, repeats)
        b16 = gflops(lambda a16=a16, w16=w16: a16 @ w16, flop, repeats)
        cast = gflops(lambda a=a, w16=w16: a.bfloat16() @ w16, flop, repeats)
        print(f"{name:<52s} {f32:8.1f} {b16:8.1f} {cast:10.1f}")


if __name__ == "__main__":
    main()
