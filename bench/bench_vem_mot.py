"""Throughput and peak memory of the MOT VEM alone.

    python bench/bench_vem_mot.py [--batch-sizes 256 1024] [--threads 1] [--checkpoint PATH] [--profile]
                                  [--no-elbo] [--dvae-loss-every K] [--plain] [--tol TOL] [--n-iter N]
                                  [--init-iter N] [--config INI] [--compile] [--repeats 3]

Synthetic 3-target samples of T = 60 frames (data/mot_tracking_data_generation.py, 15 % missed detections), the
VEM settings of the shipped config (``config/cfg_dvae_vem_mot.ini``: iterations, windows, tau, z_mode,
dvae_var_scale, convergence_tol; ``--tol`` overrides the tolerance, 0 = fixed iteration counts; ``--n-iter`` /
``--init-iter`` override the caps ``N_iter_total`` / ``init_iter_number``), ELBO terms logged as mixdvae_mot.py
logs them (with the config's ``dvae_loss_every``; ``--dvae-loss-every`` overrides it, ``--no-elbo`` skips them),
tracks of the last iteration only. ``--plain`` runs the time loops on the SRNN's own one-step API instead of the
fused FastSRNN; ``--compile`` runs FastSRNN's per-frame E-S step through torch.compile (its compile time is the
warm-up time, reported apart from the timed run). The DVAE is the config's ``saved_dvae`` when present, else an
untrained SRNN of the reference size (the cost barely depends on the weights, the iteration count does); the
output says which. Each case runs in a fresh process, so its peak resident memory (ru_maxrss) is its own; it is
reported next to the resident memory just before the VEM starts. Both wall-clock and process CPU time are
reported: on a shared machine the CPU time is the better measure of the code's own cost. Each case times
``--repeats`` identical runs (same data, same seed) and reports the median.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "config" / "cfg_dvae_vem_mot.ini"
REFERENCE_NET = dict(x_dim=4, z_dim=4, activation="tanh", dense_x_h=[4], dim_RNN_h=8, num_RNN_h=1, dense_hx_g=[],
                     dim_RNN_g=0, num_RNN_g=1, dense_gz_z=[16, 8], dense_hz_x=[16], dense_hz_z=[8, 8],
                     dropout_p=0.0)


def shipped_settings(config: str, tol: float | None, log_elbo: bool, loss_every: int | None = None):
    """VEM settings, the SRNNDynamics keywords (z_mode, var_scale, es_mode, es_var) and the checkpoint path of the
    config (read as mixdvae_mot.py reads them)."""
    from model.vem_mot import VEMSettings
    from utils.config import load_config
    from utils.config_keys_mot import VEM_MOT

    cfg = load_config(config, VEM_MOT)
    vem, frame = cfg["VEM"], cfg["DataFrame"]
    settings = VEMSettings(n_iter=vem["N_iter_total"], init_iter=vem["init_iter_number"],
                           init_subseq_len=vem["init_subseq_len"], std_ratio=vem["std_ratio"],
                           temperature=vem["assignment_temperature"], clutter_logprob=vem["clutter_logprob"],
                           tol=vem["convergence_tol"], normalize=frame["normalize"],
                           normalize_range=tuple(frame["normalize_range"]),
                           dvae_loss_every=vem["dvae_loss_every"] if loss_every is None else loss_every,
                           log_elbo=log_elbo, save_all_iters=False)
    if tol is not None:
        settings = replace(settings, tol=tol)
    dynamics = {"z_mode": vem["z_mode"], "var_scale": vem["dvae_var_scale"], "es_mode": vem["dvae_es"],
                "es_var": vem["dvae_es_var"]}
    choice = cfg["Training"]["choice_dvae"].strip()                     # the main row's further DVAEs, if any
    return settings, dynamics, str(cfg["Training"]["saved_dvae"]) + (f"+{choice}" if choice else "")


def load_model(checkpoint: str):
    from utils.checkpoint import build_srnn, load_dvae

    path = Path(checkpoint)
    if path.is_file():
        model, ckpt = load_dvae(path, head="gaussian")
        return model, f"{path} (epoch {ckpt.get('epoch', '?')})"
    model = build_srnn(REFERENCE_NET, "gaussian").eval()
    return model, f"untrained reference-size SRNN ({model.num_parameters()} parameters; {path} not found)"


def run_case(batch: int, args) -> dict:
    import numpy as np
    import torch

    from data.mot_dataset import collate_mot
    from data.mot_tracking_data_generation import synthetic_samples
    from model.dvae_choice import DVAEChoice, run_row
    from model.vem_mot import SRNNDynamics, VEMSettings

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    settings, dyn_kwargs, shipped = shipped_settings(args.config, args.tol, not args.no_elbo, args.dvae_loss_every)
    if args.n_iter is not None:
        settings = replace(settings, n_iter=args.n_iter)
    if args.init_iter is not None:
        settings = replace(settings, init_iter=args.init_iter)
    samples = synthetic_samples(batch, seq_len=60, num_targets=3, miss_prob=0.15, crossing_fraction=0.5,
                                rng=np.random.default_rng(0))
    items = [{"det": torch.tensor(s["det"], dtype=torch.float32),
              "det_mask": torch.tensor(np.isfinite(s["det"]).all(-1)), "gt": torch.tensor(s["gt"]),
              "gt_ids": torch.tensor(s["gt_ids"]), "init": torch.tensor(s["init"], dtype=torch.float32),
              "image_size": torch.tensor(s["image_size"]), "name": str(i), "sequence": "", "start_frame": 1}
             for i, s in enumerate(samples)]
    data = collate_mot(items)
    options, sources = [], []
    paths = (args.checkpoint or str(shipped)).split("+")            # several: the row chooses one per sequence
    scales = args.option_var_scales or [dyn_kwargs["var_scale"]] * len(paths)
    if len(scales) != len(paths):
        raise SystemExit(f"--option-var-scales: {len(scales)} values for {len(paths)} checkpoints")
    for path, scale in zip(paths, scales):
        model, source = load_model(path)
        options.append(SRNNDynamics(model, fast=not args.plain,
                                    **{**dyn_kwargs, "var_scale": scale,
                                       "es_mode": dyn_kwargs["es_mode"] if model.increments else "filter"}))
        sources.append(source)
    dynamics, source = (options[0] if len(options) == 1 else DVAEChoice(options)), " + ".join(sources)
    if args.compile:                       # the shipped code never compiles: this measures what it would give
        for one in options:
            one.fast._step = torch.compile(one.fast._filter_step, dynamic=True)

    def run_vem(det, mask, init, dynamics, settings):
        return run_row(dynamics, det, mask, init, settings)

    warmup = time.perf_counter()
    run_vem(data["det"][:8], data["det_mask"][:8], data["init"][:8], dynamics,
            VEMSettings(n_iter=1, init_iter=1, save_all_iters=False))    # warm-up (allocator, lazy init, compile)
    warmup = time.perf_counter() - warmup
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    walls, cpus = [], []
    for _ in range(1 if args.profile else args.repeats):      # the same run each time (same seed)
        torch.manual_seed(0)
        wall, cpu = time.perf_counter(), time.process_time()
        if args.profile:
            from torch.profiler import ProfilerActivity, profile as torch_profile

            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                result = run_vem(data["det"], data["det_mask"], data["init"], dynamics, settings)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
        else:
            result = run_vem(data["det"], data["det_mask"], data["init"], dynamics, settings)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    wall, cpu = float(np.median(walls)), float(np.median(cpus))
    windows = -(-60 // settings.init_subseq_len)
    return {"batch": batch, "T": 60, "N": 3,
            "iterations": f"<= {settings.init_iter} x {windows} windows + <= {settings.n_iter}, tol {settings.tol:g}",
            "mean_iterations": round(float(result.iterations.double().mean()), 2),
            "fast": not args.plain, "compile": args.compile, "warmup_s": round(warmup, 2),
            "log_elbo": settings.log_elbo, "dvae_loss_every": settings.dvae_loss_every,
            "threads": torch.get_num_threads(),
            "repeats": len(walls), "wall_s_each": [round(w, 2) for w in walls], "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "seq_per_s_wall": round(batch / wall, 1), "seq_per_s_cpu": round(batch / cpu, 1),
            "rss_before_MiB": round(rss_before, 1),
            "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "dvae": source}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    ap.add_argument("--config", default=str(CONFIG), help="VEM settings and checkpoint (default: the shipped INI)")
    ap.add_argument("--checkpoint", default="",
                    help="DVAE checkpoint (default: the config's saved_dvae); A+B: a row that chooses per sequence")
    ap.add_argument("--option-var-scales", type=lambda t: [float(v) for v in t.split(",")], default=None,
                    help="E-S variance scale of each checkpoint of --checkpoint (default: the config's dvae_var_scale)")
    ap.add_argument("--no-elbo", action="store_true", help="skip the per-iteration ELBO terms")
    ap.add_argument("--dvae-loss-every", type=int,
                    help="the ELBO's DVAE loss every K iterations (default: the config's dvae_loss_every)")
    ap.add_argument("--plain", action="store_true", help="SRNN.step / SRNN.inference instead of FastSRNN")
    ap.add_argument("--tol", type=float, help="convergence tolerance (default: the config's; 0 = fixed counts)")
    ap.add_argument("--n-iter", type=int, help="N_iter_total, the cap when tol > 0 (default: the config's)")
    ap.add_argument("--init-iter", type=int, help="init_iter_number, a cap when tol > 0 (default: the config's)")
    ap.add_argument("--compile", action="store_true", help="torch.compile FastSRNN's per-frame E-S step")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table of each case on stderr")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case; the median is reported")
    ap.add_argument("--case", type=int, help=argparse.SUPPRESS)          # internal: run one batch size here
    args = ap.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args)))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, Python "
          f"{platform.python_version()}")
    rows = []
    for batch in args.batch_sizes:
        cmd = [sys.executable, __file__, "--case", str(batch), "--threads", str(args.threads), "--config",
               args.config, "--checkpoint", args.checkpoint, "--repeats", str(args.repeats)]
        cmd += ["--no-elbo"] * args.no_elbo
        if args.option_var_scales:
            cmd += ["--option-var-scales", ",".join(map(str, args.option_var_scales))]
        cmd += ["--profile"] * args.profile + ["--plain"] * args.plain + ["--compile"] * args.compile
        cmd += ["--tol", str(args.tol)] * (args.tol is not None)
        cmd += ["--n-iter", str(args.n_iter)] * (args.n_iter is not None)
        cmd += ["--init-iter", str(args.init_iter)] * (args.init_iter is not None)
        cmd += ["--dvae-loss-every", str(args.dvae_loss_every)] * (args.dvae_loss_every is not None)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        if args.profile:
            print(out.stderr)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"batch {batch:5d}: {r['seq_per_s_wall']:7.1f} seq/s wall (median of {r['repeats']}: {r['wall_s']} s), "
              f"{r['seq_per_s_cpu']:7.1f} seq/s CPU ({r['cpu_s']} s), peak RSS {r['peak_rss_MiB']} MiB "
              f"(before the VEM {r['rss_before_MiB']} MiB), {r['threads']} thread(s); warm-up {r['warmup_s']} s",
              flush=True)
    elbo = f"on, DVAE loss every {rows[0]['dvae_loss_every']} iteration(s)" if rows[0]["log_elbo"] else "off"
    print(f"DVAE: {rows[0]['dvae']} ({'FastSRNN' if rows[0]['fast'] else 'plain SRNN.step'}); iterations "
          f"{rows[0]['iterations']} (mean after the initialisation: {rows[0]['mean_iterations']}); ELBO terms {elbo}")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
