"""Separation quality and cost of the SC-ASS VEM on a mixture set, with 95 % bootstrap intervals.

    python bench/quality_scass.py --data DIR [--iters 70] [--threads 2] [--out FILE.json]

Runs MixDVAE with the shipped config (``config/cfg_dvae_vem_scass.ini``: checkpoints, STFT, [VEM]
settings, including ``output``) on every mixture of ``--data`` (e.g. 100 surrogate test mixtures made with
data/scass_mixture_audio_generation.py) and prints the SI-SDR of each source and of their mean, with
percentile bootstrap intervals over mixtures, the SI-SDR after every ``--every``-th iteration (how
fast the VEM converges), and the VEM's wall and CPU time. ``--bf16`` runs the DVAE passes under CPU
autocast to bfloat16 (the fusion algebra stays in float32).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from data.mixture_dataset import MixtureDataset, collate  # noqa: E402
from model.scass_output import source_estimates  # noqa: E402
from model.vem_scass import VEMSettings, run_vem  # noqa: E402
from utils.audio_metrics import si_sdr  # noqa: E402
from utils.checkpoint import load_dvae  # noqa: E402
from utils.config import load_config  # noqa: E402
from utils.config_keys_scass import VEM_SCASS  # noqa: E402
from utils.stft import STFT  # noqa: E402


def bootstrap(values: np.ndarray, num_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95 % percentile bootstrap interval over items. Shape: values (B,)."""
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), (num_boot, len(values)))].mean(1)
    return float(values.mean()), *(float(q) for q in np.percentile(draws, [2.5, 97.5]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", default=str(ROOT / "config" / "cfg_dvae_vem_scass.ini"))
    ap.add_argument("--iters", type=int, help="VEM iterations (default: the config's N_iter_total)")
    ap.add_argument("--tol", type=float, help="convergence tolerance (default: the config's)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=5, help="score the estimates after every k-th iteration")
    ap.add_argument("--bf16", action="store_true", help="DVAE passes under CPU autocast to bfloat16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, VEM_SCASS)
    vem, tr = cfg["VEM"], cfg["Training"]
    options = VEMSettings(n_iter=vem["N_iter_total"], ratio_v_theta_x=vem["ratio_v_theta_x"],
                         v_x_floor=vem["v_x_floor"], es_power=vem["es_power"], z_mode=vem["z_mode"],
                         mixture_power_db=vem["mixture_power_db"], tol=vem["convergence_tol"])
    options = replace(options, **{k: v for k, v in (("n_iter", args.iters), ("tol", args.tol)) if v is not None})
    stft = STFT.from_config(cfg["STFT"])
    dvaes = [load_dvae(Path(tr[k]), head="is")[0] for k in ("saved_dvae_s1", "saved_dvae_s2")]
    dataset = MixtureDataset(args.data, stft, cfg["DataFrame"]["sequence_len"])
    batches = [collate([dataset[i] for i in range(s, min(s + args.batch, len(dataset)))])
               for s in range(0, len(dataset), args.batch)]
    torch.manual_seed(args.seed)
    scores, per_iter, iterations, seconds, cpu = [], {}, [], 0.0, 0.0
    for batch in batches:
        length = batch["mixture"].shape[-1]
        clean = torch.stack([batch["s1"], batch["s2"]], dim=1).double().numpy()

        def score(mu: torch.Tensor, v: torch.Tensor, length: int = length, clean: np.ndarray = clean,
                  x: torch.Tensor = batch["mix_stft"]) -> np.ndarray:
            est = stft.istft(source_estimates(x, mu, v, vem["output"]), length).double().numpy()   # (B, N, L)
            return np.array([[si_sdr(c, e) for c, e in zip(cb, eb)] for cb, eb in zip(clean, est)])

        def on_iteration(i, mu, v, eta, score=score):
            if (i + 1) % args.every == 0:
                per_iter.setdefault(i + 1, []).append(score(mu, v))

        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
        t0, c0 = time.perf_counter(), time.process_time()
        with autocast:
            result = run_vem(dvaes, batch["mix_stft"], options, on_iteration=None if args.every <= 0 else on_iteration)
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        scores.append(score(result.mu, result.v))
        iterations.append(np.asarray(result.history.get("iterations", [options.n_iter] * len(clean))))
    sdr = np.concatenate(scores)                                                       # (B, N)
    iters = np.concatenate(iterations)
    ci = {"s1": bootstrap(sdr[:, 0]), "s2": bootstrap(sdr[:, 1]), "mean": bootstrap(sdr.mean(1))}
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} thread(s), batch {args.batch}; {len(sdr)} "
          f"mixtures of {args.data}; {options.n_iter} iterations cap, tol {options.tol:g}, bf16 {args.bf16}, "
          f"output {vem['output']}")
    for k, (value, low, high) in ci.items():
        print(f"  SI-SDR {k:4s} {value:7.3f} dB  [{low:.3f}, {high:.3f}]")
    if per_iter:
        print("  SI-SDR (mean of sources) after iteration: " + ", ".join(
            f"{i}: {np.concatenate(v).mean():.3f}" for i, v in sorted(per_iter.items())))
    print(f"  mean iterations {iters.mean():.1f}; VEM {seconds:.1f} s wall, {cpu:.1f} s CPU (incl. per-iteration "
          f"scoring) -> {len(sdr) / seconds:.2f} mixtures/s wall")
    if args.out:
        Path(args.out).write_text(json.dumps({"ci": ci, "sdr": sdr.tolist(), "mean_iterations": float(iters.mean()),
                                              "seconds": seconds, "cpu_s": cpu}, indent=1) + "\n")


if __name__ == "__main__":
    main()
