"""What torch.compile does to one frame of the SC-ASS VEM's E-S recursion (model/vem_scass.py ``e_s``).

    python bench/bench_compile_scass.py [--threads 1] [--batch 64] [--repeats 5]

One frame = both shipped DVAEs' ``SRNN.step`` (4.1)+(4.3), the Wiener-like fusion (6.3) and the power fed back
(the body of ``e_s``'s time loop; the shipped code never compiles it). Prints the compile time (first two
calls of the compiled frame, dynamic shapes) and the time per frame of the eager and the compiled function,
measured alternately ``--repeats`` times (min and median), wall and process CPU time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from model.vem_scass import V_THETA_FLOOR, e_s_posterior, source_power  # noqa: E402
from utils.checkpoint import load_dvae  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=20, help="frames per timed measurement")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dvaes = [load_dvae(ROOT / "model" / "pretrained" / f"{n}_srnn.pt", head="is")[0] for n in ("flute", "speech")]
    B, F = args.batch, dvaes[0].x_dim
    x = torch.randn(B, F, dtype=torch.complex64)
    v_x = torch.rand(B, F) + 0.1
    eta = torch.full((B, len(dvaes), F), 1.0 / len(dvaes))
    zs = [torch.randn(B, d.z_dim) for d in dvaes]

    def frame(power_prev, states):
        v_theta, new = [], []
        for n, dvae in enumerate(dvaes):
            (v,), state = dvae.step(power_prev[:, n], zs[n], states[n])
            v_theta.append(v)
            new.append(state)
        v_theta = torch.stack(v_theta, 1).clamp_min(V_THETA_FLOOR)
        mu, v = e_s_posterior(x[:, None], v_x[:, None], eta, v_theta)
        return source_power(mu, v, "sample"), new

    def timed(fn) -> tuple[float, float]:
        with torch.inference_mode():
            power, states = fn(torch.rand(B, len(dvaes), F), [None] * len(dvaes))
            fn(power, states)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.frames):
                fn(power, states)
            return (time.perf_counter() - t0) / args.frames * 1e3, (time.process_time() - c0) / args.frames * 1e3

    compiled = torch.compile(frame, dynamic=True)
    t0 = time.perf_counter()
    with torch.inference_mode():
        power, states = compiled(torch.rand(B, len(dvaes), F), [None] * len(dvaes))
        compiled(power, states)
    print(f"{args.threads} thread(s), batch {B}, F {F}: compile {time.perf_counter() - t0:.1f} s")
    eager, comp = [], []
    for _ in range(args.repeats):
        eager.append(timed(frame))
        comp.append(timed(compiled))
    for name, values in (("eager", eager), ("compiled", comp)):
        wall, cpu = sorted(v[0] for v in values), sorted(v[1] for v in values)
        print(f"  {name:<8s} ms per frame: wall min {wall[0]:.2f} median {wall[len(wall) // 2]:.2f}; "
              f"CPU min {cpu[0]:.2f} median {cpu[len(cpu) // 2]:.2f}")


if __name__ == "__main__":
    main()
