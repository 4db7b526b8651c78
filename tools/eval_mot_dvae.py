"""How good is a MOT DVAE, against the trivial answers on the same noisy input (docs/method.md §4)?

    python tools/eval_mot_dvae.py data/generated/mot_synthetic/val model/pretrained/mot_srnn.pt [more.pt ...]

Single targets, no assignment: each validation trajectory gets Gaussian box noise of 0, 3 and 6 % of the
box size (std = ratio x width on x coordinates, x height on y coordinates, as the tracking generator).
Every estimator sees the noisy boxes and is scored against the *clean* trajectory, in pixels at
1920 x 1080, over frames 3..T:

- ``identity``: the noisy boxes themselves;
- ``CV one-step``: the constant-velocity prediction 2 o_{t-1} - o_{t-2} (causal, does not see o_t);
- ``CV smoother``: a constant-velocity Kalman + RTS smoother (model/kf_vem.py) with the true noise variance;
  its process noise is the best of a small grid on this very data (an optimistic baseline);
- per checkpoint, ``one-step``: the DVAE's causal prediction mu_theta(x_{<t}) with the prior-mean z
  (:meth:`SRNN.predict`), and ``recon``: its reconstruction with the posterior-mean z (:meth:`SRNN.reconstruct`;
  causal or non-causal as the checkpoint's encoder is);
- per increments checkpoint, ``E-S filter`` / ``E-S smoother``: the DVAE as the dynamics of a one-target VEM
  (``run_vem`` with N = K = 1, one window, 10 iterations, z_mode mean, ``--var-scale``, the true noise as
  std_ratio), for each ``[VEM] dvae_es``: the paper's E-S recursion, its variance-propagating form, and that
  form followed by the backward pass.

``--gap L`` adds a second table: frames 30..30+L-1 of every trajectory are missing (a long occlusion), and the
error is measured over those frames only (and over the frames after the gap), for the CV smoother and the
one-target VEM rows (each ``--gap-var-scales`` x ``--gap-es-vars``, the ``[VEM] dvae_es_var`` of the rows); this
is where the dynamics model must carry the track alone.

Columns: ``px`` = mean over frames of the L2 norm over the 4 coordinates (pixels); ``x1 y1 x2 y2`` = RMSE per
coordinate (pixels); ``z2`` = mean squared z-score of the error under the model's own variance (1 = calibrated,
> 1 over-confident; the CV smoother uses its posterior variance; blank for estimators without a variance).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.trajectory_dataset import TrajectoryDataset
from model.fast_srnn import ES_MODES, ES_VARS
from model.kf_vem import kalman_smoother
from model.vem_mot import SRNNDynamics, VEMSettings, box_sizes, run_vem
from utils.checkpoint import load_dvae
from utils.errors import UserError, run_main

PIXELS = torch.tensor([1920.0, 1080.0, 1920.0, 1080.0])
RATIOS = (0.0, 0.03, 0.06)
CV_ACCEL_GRID = (0.001, 0.003, 0.01, 0.03)    # CV smoother process noise / box size, best of these is reported
NOISE_FLOOR = 1e-4                             # std ratio used as the "known" noise at 0 % (a tiny variance)


def noise_std(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Box-noise std (B, T, 4): ratio x (width for x1, x2; height for y1, y2). x (B, T, 4)."""
    return ratio * box_sizes(x, -1)


def score(est: torch.Tensor, clean: torch.Tensor, var: torch.Tensor | None = None) -> dict[str, float]:
    """Errors of est vs clean, (B, T, 4) normalised, frames 3..T: L2 px, per-coordinate RMSE px, z-score^2."""
    err = (est - clean)[:, 2:]
    out = {"px": torch.linalg.norm(err * PIXELS, dim=-1).mean().item()}
    rmse = (err * PIXELS).square().mean((0, 1)).sqrt()
    out.update({name: rmse[i].item() for i, name in enumerate(("x1", "y1", "x2", "y2"))})
    out["z2"] = float("nan") if var is None else (err.square() / var[:, 2:]).mean().item()
    return out


def cv_one_step(noisy: torch.Tensor) -> torch.Tensor:
    """2 o_{t-1} - o_{t-2} (frames 1, 2: the noisy box). (B, T, 4) -> (B, T, 4)."""
    return torch.cat([noisy[:, :2], 2 * noisy[:, 1:-1] - noisy[:, :-2]], dim=1)


def cv_smoother(noisy: torch.Tensor, std: torch.Tensor, accel_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Constant-velocity RTS smoother on every coordinate, observations with their true noise variance."""
    var = std.clamp_min(NOISE_FLOOR * box_sizes(noisy, -1)).square()
    prec = (1.0 / var).permute(1, 2, 0)                                  # (T, 4, B)
    info = prec * noisy.permute(1, 2, 0)
    size = box_sizes(noisy[:, 0], -1).T                                  # (4, B)
    mean, post_var = kalman_smoother(prec, info, noisy[:, 0].T, var[:, 0].T, accel_ratio * size, 0.1 * size)
    return mean.permute(2, 0, 1), post_var.permute(2, 0, 1)


def one_target_vem(model: torch.nn.Module, noisy: torch.Tensor, ratio: float, es_mode: str, var_scale: float,
                   missing: slice | None = None, es_var: str = "model") -> tuple[torch.Tensor, torch.Tensor]:
    """The DVAE inside a one-target, one-detection VEM (every detection is the source's): (mean, var),
    (B, T, 4) normalised, from the noisy boxes (B, T, 4) normalised; the first noisy box starts the track."""
    T = noisy.shape[1]
    settings = VEMSettings(n_iter=10, init_iter=1, init_subseq_len=T, std_ratio=max(ratio, NOISE_FLOOR),
                           temperature=1.0, log_elbo=False)
    dynamics = SRNNDynamics(model, z_mode="mean", var_scale=var_scale, es_mode=es_mode, es_var=es_var)
    det = (noisy * PIXELS)[:, :, None].clone()
    if missing is not None:
        det[:, missing] = float("nan")
    result = run_vem(det, None, det[:, 0], dynamics, settings)
    return result.tracks[:, :, 0] / PIXELS, result.var[:, :, 0] / PIXELS.square()


@torch.no_grad()
def evaluate(clean: torch.Tensor, models: dict[str, torch.nn.Module], ratios=RATIOS, seed: int = 0,
             batch: int = 1000, var_scale: float = 4.0) -> list[dict]:
    """Rows of {noise, estimator, px, x1, y1, x2, y2, z2}, averaged over sequences."""
    rows = []
    for ratio in ratios:
        gen = torch.Generator().manual_seed(seed)
        sums: dict[str, dict[str, float]] = {}
        for i in range(0, clean.shape[0], batch):
            x = clean[i:i + batch]
            std = noise_std(x, ratio)
            noisy = x + std * torch.randn(x.shape, generator=gen)
            ests: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {
                "identity": (noisy, None), "CV one-step": (cv_one_step(noisy), None)}
            for a in CV_ACCEL_GRID:
                ests[f"CV smoother (q={a})"] = cv_smoother(noisy, std, a)
            for name, model in models.items():
                ests[f"{name} one-step"] = model.predict(noisy)
                ests[f"{name} recon"] = model.reconstruct(noisy)
                if model.increments:
                    for es_mode in ES_MODES:
                        ests[f"{name} E-S {es_mode} (var x{var_scale:g})"] = one_target_vem(
                            model, noisy, ratio, es_mode, var_scale)
            for est_name, (est, var) in ests.items():
                acc = sums.setdefault(est_name, {"n": 0.0})
                for k, v in score(est, x, var).items():
                    acc[k] = acc.get(k, 0.0) + v * x.shape[0]
                acc["n"] += x.shape[0]
        means = {name: {k: v / acc["n"] for k, v in acc.items() if k != "n"} for name, acc in sums.items()}
        smoothers = [name for name in means if name.startswith("CV smoother")]
        best = min(smoothers, key=lambda name: means[name]["px"])
        for name, vals in means.items():
            if name in smoothers and name != best:
                continue
            rows.append({"noise_ratio": ratio, "estimator": name, **vals})
    return rows


@torch.no_grad()
def evaluate_gap(clean: torch.Tensor, models: dict[str, torch.nn.Module], gap_len: int, gap_start: int = 30,
                 ratio: float = 0.03, seed: int = 0, var_scales=(1.0, 4.0), es_vars=("model",)) -> list[dict]:
    """Rows of {estimator, gap_px, after_px}: errors (px) inside a gap of ``gap_len`` missing frames and over
    the frames after it, at ``ratio`` noise; every increments DVAE as a one-target VEM for each E-S and
    variance scale in ``var_scales`` and E-S variance in ``es_vars``; the CV smoother with each process noise of
    the grid."""
    gen = torch.Generator().manual_seed(seed)
    std = noise_std(clean, ratio)
    noisy = clean + std * torch.randn(clean.shape, generator=gen)
    gap = slice(gap_start, gap_start + gap_len)

    def errors(est: torch.Tensor) -> tuple[float, float]:
        px = torch.linalg.norm((est - clean) * PIXELS, dim=-1)
        return px[:, gap].mean().item(), px[:, gap.stop:].mean().item()

    seen_std = std.clone()
    seen_std[:, gap] = float("inf")                                     # precision 0 inside the gap
    rows = [("CV smoother", f"q={a}", *errors(cv_smoother(noisy, seen_std, a)[0])) for a in CV_ACCEL_GRID]
    for name, model in models.items():
        if not model.increments:
            continue
        for es_mode in ES_MODES:
            for scale, es_var in itertools.product(var_scales, es_vars):
                est = one_target_vem(model, noisy, ratio, es_mode, scale, missing=gap, es_var=es_var)[0]
                rows.append((f"{name} E-S {es_mode}", f"var x{scale:g}" + (" (fixed)" if es_var == "fixed" else ""),
                             *errors(est)))
    return [{"estimator": e, "setting": s, "gap_px": g, "after_px": a} for e, s, g, a in rows]


@torch.no_grad()
def paired_cis(clean: torch.Tensor, models: dict[str, torch.nn.Module], ratios=RATIOS[1:], seed: int = 0,
               num_boot: int = 2000) -> list[dict]:
    """Per checkpoint and noise level, paired per-sequence differences (px, frames 3..T) with 95 % bootstrap
    CIs: recon - identity, and one-step - CV one-step (< 0: the DVAE is better), and the share of sequences
    where the DVAE is better. Same noise draws as :func:`evaluate`."""
    def per_seq(est: torch.Tensor) -> torch.Tensor:
        return torch.linalg.norm((est - clean)[:, 2:] * PIXELS, dim=-1).mean(1)

    rows = []
    for ratio in ratios:
        gen = torch.Generator().manual_seed(seed)
        noisy = clean + noise_std(clean, ratio) * torch.randn(clean.shape, generator=gen)
        idx = torch.randint(0, clean.shape[0], (num_boot, clean.shape[0]), generator=torch.Generator().manual_seed(1))
        for name, model in models.items():
            for what, est, ref in (("recon - identity", model.reconstruct(noisy)[0], noisy),
                                   ("one-step - CV one-step", model.predict(noisy)[0], cv_one_step(noisy))):
                d = per_seq(est) - per_seq(ref)
                lo, hi = torch.quantile(d[idx].mean(1), torch.tensor([0.025, 0.975])).tolist()
                rows.append({"noise_ratio": ratio, "checkpoint": name, "difference": what, "mean_px": d.mean().item(),
                             "ci_low": lo, "ci_high": hi, "dvae_better_share": (d < 0).float().mean().item()})
    return rows


def markdown(rows: list[dict]) -> str:
    """One markdown table: estimator x noise level."""
    lines = ["| noise | estimator | px | x1 | y1 | x2 | y2 | z² |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        z2 = "" if r["z2"] != r["z2"] else f"{r['z2']:.2f}"
        lines.append(f"| {100 * r['noise_ratio']:.0f} % | {r['estimator']} | {r['px']:.2f} | {r['x1']:.2f} | "
                     f"{r['y1']:.2f} | {r['x2']:.2f} | {r['y2']:.2f} | {z2} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("val_dir", help="folder of trajectory .npz files (e.g. data/generated/mot_synthetic/val)")
    ap.add_argument("checkpoints", nargs="+", help="MOT DVAE checkpoints (name=path or path)")
    ap.add_argument("--seq-len", type=int, default=60)
    ap.add_argument("--max-seq", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--var-scale", type=float, default=4.0, help="E-S variance inflation of the one-target VEM rows")
    ap.add_argument("--ci", action="store_true",
                    help="also print paired recon - identity and one-step - CV differences with 95 %% CIs")
    ap.add_argument("--gap", type=int, default=0, help="also score a gap of this many missing frames (0 = no)")
    ap.add_argument("--gap-var-scales", type=lambda t: [float(v) for v in t.split(",")], default=[1.0, 4.0],
                    help="variance scales of the gap table's one-target VEM rows")
    ap.add_argument("--gap-es-vars", type=lambda t: [v.strip() for v in t.split(",")], default=["model"],
                    help="E-S variances of the gap table's rows: model and/or fixed ([VEM] dvae_es_var)")
    args = ap.parse_args()
    if any(v not in ES_VARS for v in args.gap_es_vars):
        raise UserError(f"--gap-es-vars: expected some of {', '.join(ES_VARS)}, got {args.gap_es_vars}")
    torch.set_num_threads(1)
    models = {}
    for spec in args.checkpoints:
        name, _, path = spec.rpartition("=")
        model, ckpt = load_dvae(path, head="gaussian")
        models[name or Path(path).stem] = model
        print(f"{name or Path(path).stem}: {path} (epoch {ckpt.get('epoch')}, {model.num_parameters()} parameters)")
    clean = TrajectoryDataset(args.val_dir, args.seq_len).boxes[: args.max_seq]
    rows = evaluate(clean, models, seed=args.seed, var_scale=args.var_scale)
    print(f"{clean.shape[0]} validation sequences of {args.seq_len} frames, errors in pixels at 1920x1080, "
          "frames 3..T")
    print(markdown(rows))
    if args.ci:
        ci_rows = paired_cis(clean, models, seed=args.seed)
        print("\npaired per-sequence differences, px (< 0: the DVAE is better), 95 % bootstrap CI")
        print("| noise | checkpoint | difference | mean | 95 % CI | DVAE better in |\n|---|---|---|---|---|---|")
        for r in ci_rows:
            print(f"| {100 * r['noise_ratio']:.0f} % | {r['checkpoint']} | {r['difference']} | {r['mean_px']:+.3f} | "
                  f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | {100 * r['dvae_better_share']:.1f} % |")
        rows = rows + ci_rows
    if args.gap:
        gap_rows = evaluate_gap(clean, models, args.gap, var_scales=args.gap_var_scales, es_vars=args.gap_es_vars)
        print(f"\ngap of {args.gap} missing frames (30..{29 + args.gap}) at 3 % noise: error inside the gap / after it")
        print("| estimator | setting | gap px | after px |\n|---|---|---|---|")
        for r in gap_rows:
            print(f"| {r['estimator']} | {r['setting']} | {r['gap_px']:.2f} | {r['after_px']:.2f} |")
        rows = rows + [{"gap_len": args.gap, **r} for r in gap_rows]
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run_main(main)
