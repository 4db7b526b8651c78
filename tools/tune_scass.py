"""Tune MixDVAE and supervised NMF with the same budget on a separation validation set, then test the picks.

    python tools/tune_scass.py --data data/generated/real_speech_mixtures --tune 40 --out output/tuning_scass

The first ``--tune`` mixtures (by name) are the tuning subset, the others are held out. Grids (each method
gets the same number of configurations, checked unless ``--allow-unequal``):

- MixDVAE: ``--ratios`` (``ratio_v_theta_x``) x ``--z-modes``, plus the runs ``--extra RATIO:Z_MODE:LR,...``
  (LR > 0 fine-tunes the DVAEs: one Adam step per VEM iteration, so the steps are the iterations), each
  scored with every ``--outputs`` mode (``[VEM] output``) after every iteration count in ``--iters`` (one
  VEM run gives them all);
- NMF: ``--atoms`` x ``--betas`` dictionaries (learned on ``--nmf-train-flute/speech``, cached), each
  separated with every count in ``--sep-iters``.

Every configuration is scored by the mean SI-SDR of both sources over the tuning subset; per method the
best one is evaluated on the held-out mixtures next to the shipped defaults, the mixture and the IBM
(``tools/scass_table.py``: bootstrap 95 % CIs, paired differences against the tuned NMF). Writes to
``--out``: ``grid_mixdvae.csv`` / ``grid_nmf.csv`` (one row per configuration; finished runs are not
repeated, so two processes can fill the two grids and an interrupted run resumes), ``best.json`` and
``tuning.md`` (top configurations per method, the held-out table), and ``heldout/`` (scass_table output).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.scass_output import OUTPUTS  # noqa: E402
from tools import scass_table  # noqa: E402
from tools.scass_runs import DEFAULT_DVAES, NMF_TRAIN, MixDVAEPoint, ModelCache, NMFPoint, load_set, \
    mixdvae_scores, nmf_scores, reference_stft  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402

METHODS = ("mixdvae", "nmf")
COLUMNS = {"mixdvae": ("ratio_v_theta_x", "z_mode", "finetune_lr", "output", "n_iter", "flute", "speech",
                       "si_sdr_flute", "si_sdr_speech", "score", "seconds"),
           "nmf": ("n_components", "beta", "iterations_separation", "train_flute", "train_speech", "si_sdr_flute",
                   "si_sdr_speech", "score", "seconds")}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def words(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def extra_runs(text: str) -> list[tuple[float, str, float]]:
    runs = []
    for item in words(text):
        parts = item.split(":")
        try:
            ratio, z_mode, lr = float(parts[0]), parts[1], float(parts[2])
        except (ValueError, IndexError):
            raise UserError(f"--extra {item!r}: expected RATIO:Z_MODE:LR, e.g. 0.1:sample:1e-4") from None
        if len(parts) != 3 or z_mode not in ("sample", "mean") or lr < 0 or ratio <= 0:
            raise UserError(f"--extra {item!r}: expected RATIO:Z_MODE:LR with ratio > 0, z_mode sample or mean, "
                            "lr >= 0 (0 = no fine-tuning)")
        runs.append((ratio, z_mode, lr))
    return runs


def mixdvae_runs(args) -> list[MixDVAEPoint]:
    """One VEM run per point, at the largest iteration count (the others are snapshots)."""
    base = MixDVAEPoint(n_iter=max(args.iters), flute=args.dvae_flute, speech=args.dvae_speech)
    runs = [replace(base, ratio_v_theta_x=r, z_mode=z) for r, z in itertools.product(args.ratios, args.z_modes)]
    runs += [replace(base, ratio_v_theta_x=r, z_mode=z, finetune_lr=lr) for r, z, lr in args.extra]
    return runs


def nmf_dictionaries(args) -> list[NMFPoint]:
    return [NMFPoint(n_components=k, beta=b, train_flute=args.nmf_train_flute, train_speech=args.nmf_train_speech)
            for k, b in itertools.product(args.atoms, args.betas)]


def budgets(args) -> dict[str, int]:
    return {"mixdvae": len(mixdvae_runs(args)) * len(args.outputs) * len(args.iters),
            "nmf": len(nmf_dictionaries(args)) * len(args.sep_iters)}


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def mixdvae_key(row: dict) -> tuple:
    """Rows of grid files written before ``output`` existed are posterior-mean rows."""
    return (f"{float(row['ratio_v_theta_x']):g}", row["z_mode"], f"{float(row['finetune_lr']):g}",
            row.get("output") or "mean", int(row["n_iter"]), row["flute"], row["speech"])


def nmf_key(row: dict) -> tuple:
    return (int(row["n_components"]), row["beta"], int(row["iterations_separation"]), row["train_flute"],
            row["train_speech"])


def upgrade_grid(path: Path, method: str) -> list[dict]:
    """The rows of a grid file, rewritten first with today's columns if an older tune_scass wrote it (MixDVAE
    rows from before ``output`` existed are posterior-mean rows)."""
    if not path.is_file():
        return []
    rows = read_rows(path)
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    if header and header != list(COLUMNS[method]):
        rows = [{"output": "mean", **r} for r in rows] if method == "mixdvae" else rows
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(COLUMNS[method]))
            writer.writeheader()
            writer.writerows(rows)
    return rows


def run_grid(method: str, args, data, models: ModelCache) -> None:
    """Score every configuration of ``method`` not yet in its grid file."""
    path = args.out / f"grid_{method}.csv"
    done = {(mixdvae_key if method == "mixdvae" else nmf_key)(r) for r in upgrade_grid(path, method)}
    new_file = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS[method]))
        if new_file:
            writer.writeheader()

        def write(row: dict, label: str) -> None:
            writer.writerow(row)
            f.flush()
            print(f"[{method}] {label}: {row['si_sdr_flute']:.2f} / {row['si_sdr_speech']:.2f} dB "
                  f"(score {row['score']:.2f}, {row['seconds']:.0f} s)", flush=True)

        if method == "mixdvae":
            runs = mixdvae_runs(args)
            for i, point in enumerate(runs):
                rows = [{"ratio_v_theta_x": point.ratio_v_theta_x, "z_mode": point.z_mode,
                         "finetune_lr": point.finetune_lr, "output": m, "n_iter": n, "flute": point.flute,
                         "speech": point.speech} for m in args.outputs for n in args.iters]
                if all(mixdvae_key({k: str(v) for k, v in r.items()}) in done for r in rows):
                    continue
                t0 = time.perf_counter()
                scores = mixdvae_scores(point, data, models, snapshots=args.iters, outputs=args.outputs,
                                        seed=args.seed)
                seconds = time.perf_counter() - t0
                for row in rows:
                    row.update(_score_columns(scores[row["output"], row["n_iter"]]), seconds=round(seconds, 1))
                    write(row, f"{i + 1}/{len(runs)} ratio {point.ratio_v_theta_x:g} z {point.z_mode} "
                               f"finetune lr {point.finetune_lr:g} output {row['output']} iters {row['n_iter']}")
            return
        dictionaries = nmf_dictionaries(args)
        for i, point in enumerate(dictionaries):
            for n in args.sep_iters:
                row = {"n_components": point.n_components, "beta": point.beta, "iterations_separation": n,
                       "train_flute": point.train_flute, "train_speech": point.train_speech}
                if nmf_key({k: str(v) for k, v in row.items()}) in done:
                    continue
                t0 = time.perf_counter()
                scores = nmf_scores(replace(point, iterations_separation=n), data, models)
                row.update(_score_columns(scores), seconds=round(time.perf_counter() - t0, 1))
                write(row, f"{i + 1}/{len(dictionaries)} K {point.n_components} {point.beta} sep iters {n}")


def _score_columns(scores: np.ndarray) -> dict:
    flute, speech = np.nanmean(scores, axis=0)
    return {"si_sdr_flute": round(float(flute), 3), "si_sdr_speech": round(float(speech), 3),
            "score": round(float((flute + speech) / 2), 3)}


def grid_rows(method: str, args) -> list[dict] | None:
    """This run's configurations from the grid file, or None while some are missing."""
    rows = read_rows(args.out / f"grid_{method}.csv")
    if method == "mixdvae":
        wanted = {mixdvae_key({"ratio_v_theta_x": str(p.ratio_v_theta_x), "z_mode": p.z_mode,
                               "finetune_lr": str(p.finetune_lr), "output": m, "n_iter": str(n), "flute": p.flute,
                               "speech": p.speech}) for p in mixdvae_runs(args) for m in args.outputs
                  for n in args.iters}
        key = mixdvae_key
    else:
        wanted = {nmf_key({"n_components": str(p.n_components), "beta": p.beta, "iterations_separation": str(n),
                           "train_flute": p.train_flute, "train_speech": p.train_speech})
                  for p in nmf_dictionaries(args) for n in args.sep_iters}
        key = nmf_key
    chosen = {key(r): r for r in rows if key(r) in wanted}
    return list(chosen.values()) if len(chosen) == len(wanted) else None


def method_text(method: str, row: dict) -> str:
    """The tuned configuration as a ``tools/scass_table.py --method`` spec."""
    if method == "mixdvae":
        return (f"mixdvae,ratio_v_theta_x={row['ratio_v_theta_x']},z_mode={row['z_mode']},"
                f"finetune_lr={row['finetune_lr']},output={row.get('output') or 'mean'},n_iter={row['n_iter']},"
                f"flute={row['flute']},speech={row['speech']}")
    return (f"nmf,n_components={row['n_components']},beta={row['beta']},"
            f"iterations_separation={row['iterations_separation']},train_flute={row['train_flute']},"
            f"train_speech={row['train_speech']}")


def top_table(method: str, rows: list[dict], count: int) -> list[str]:
    keys = [c for c in COLUMNS[method] if c not in ("si_sdr_flute", "si_sdr_speech", "score", "seconds",
                                                    "flute", "speech", "train_flute", "train_speech")]
    lines = ["| " + " | ".join(keys) + " | SI-SDR flute | SI-SDR speech | mean |",
             "|" + "---|" * (len(keys) + 3)]
    for r in sorted(rows, key=lambda r: -float(r["score"]))[:count]:
        scores = " | ".join(f"{float(r[k]):.2f}" for k in ("si_sdr_flute", "si_sdr_speech", "score"))
        lines.append("| " + " | ".join(r[k] for k in keys) + f" | {scores} |")
    return lines


def report(args, num_mixtures: int) -> None:
    """best.json, the held-out evaluation (scass_table) and tuning.md, once both grids are complete."""
    rows = {m: grid_rows(m, args) for m in METHODS}
    missing = [m for m, r in rows.items() if r is None]
    if missing:
        print(f"grids not complete yet ({', '.join(missing)}): run again (e.g. --methods "
              f"{','.join(missing)}) for the report")
        return
    best = {m: max(r, key=lambda row: float(row["score"])) for m, r in rows.items()}
    specs = {"MixDVAE tuned": method_text("mixdvae", best["mixdvae"]), "NMF tuned": method_text("nmf", best["nmf"])}
    methods = [f"MixDVAE shipped=mixdvae,flute={args.dvae_flute},speech={args.dvae_speech}",
               f"MixDVAE tuned={specs['MixDVAE tuned']}", "NMF shipped=nmf,dictionary=" + args.nmf_shipped,
               f"NMF tuned={specs['NMF tuned']}", "IBM=ibm", "Mixture=mixture"]
    held_out = args.out / "heldout"
    scass_table.main(["--out", str(held_out), "--set", f"held out={args.data}", "--skip", str(args.tune),
                      "--reference", "NMF tuned", "--seed", str(args.seed), "--nmf-cache", str(args.nmf_cache),
                      *itertools.chain.from_iterable(("--method", m) for m in methods)])
    sizes = budgets(args)
    summary = {"data": str(args.data), "tuning_mixtures": args.tune, "held_out_mixtures": num_mixtures - args.tune,
               "selected_by": "mean SI-SDR of both sources on the tuning mixtures", "budget": sizes,
               "grids": {"ratios": args.ratios, "z_modes": args.z_modes, "extra": args.extra, "outputs": args.outputs,
                         "iters": args.iters, "atoms": args.atoms, "betas": args.betas, "sep_iters": args.sep_iters},
               "best": {m: {**best[m], "spec": method_text(m, best[m])} for m in METHODS},
               "held_out": json.loads((held_out / "table.json").read_text())["results"]}
    (args.out / "best.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"Tuning on the first {args.tune} mixtures of `{args.data}` (by name), {sizes['mixdvae']} MixDVAE and "
             f"{sizes['nmf']} NMF configurations, selected by the mean SI-SDR of both sources.", "",
             "Best MixDVAE configurations:", "", *top_table("mixdvae", rows["mixdvae"], args.top), "",
             "Best NMF configurations:", "", *top_table("nmf", rows["nmf"], args.top), "",
             f"The picks on the {num_mixtures - args.tune} held-out mixtures:", "",
             (held_out / "table.md").read_text()]
    (args.out / "tuning.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out / 'tuning.md'} and {args.out / 'best.json'}")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="validation mixtures (folder of .npz)")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--tune", type=int, default=40, help="the first TUNE mixtures tune, the rest are held out")
    ap.add_argument("--methods", type=words, default=list(METHODS), help="grids to fill in this process")
    ap.add_argument("--ratios", type=floats, default=floats("0.03,0.1,0.3"), help="MixDVAE ratio_v_theta_x")
    ap.add_argument("--z-modes", type=words, default=["sample"], help="MixDVAE z_mode")
    ap.add_argument("--extra", type=extra_runs, default=[],
                    help="further MixDVAE runs RATIO:Z_MODE:LR (LR > 0: fine-tuning at that learning rate), "
                         "e.g. 0.1:mean:0,0.1:sample:1e-4")
    ap.add_argument("--outputs", type=words, default=list(OUTPUTS), help="MixDVAE output ([VEM] output)")
    ap.add_argument("--iters", type=ints, default=ints("40,70"), help="MixDVAE N_iter_total")
    ap.add_argument("--dvae-flute", default=DEFAULT_DVAES[0])
    ap.add_argument("--dvae-speech", default=DEFAULT_DVAES[1])
    ap.add_argument("--atoms", type=ints, default=ints("16,32"), help="NMF n_components")
    ap.add_argument("--betas", type=words, default=["kl", "is"], help="NMF divergence")
    ap.add_argument("--sep-iters", type=ints, default=ints("50,100,200"), help="NMF iterations_separation")
    ap.add_argument("--nmf-train-flute", default=NMF_TRAIN[0])
    ap.add_argument("--nmf-train-speech", default=NMF_TRAIN[1])
    ap.add_argument("--nmf-shipped", default="model/pretrained/nmf_surrogate.npz",
                    help="the shipped NMF dictionaries (the default row of the held-out table)")
    ap.add_argument("--nmf-cache", type=Path, default=Path("output/nmf_cache_tools"), help="NMF dictionary cache")
    ap.add_argument("--top", type=int, default=5, help="configurations per method listed in tuning.md")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--allow-unequal", action="store_true", help="run even if the budgets differ")
    args = ap.parse_args(argv)
    bad = sorted(set(args.methods) - set(METHODS))
    if bad:
        raise UserError(f"--methods: cannot tune {', '.join(bad)}; choose from {', '.join(METHODS)}")
    if any(z not in ("sample", "mean") for z in args.z_modes):
        raise UserError(f"--z-modes: expected sample and/or mean, got {args.z_modes}")
    if not args.outputs or any(m not in OUTPUTS for m in args.outputs):
        raise UserError(f"--outputs: expected some of {', '.join(OUTPUTS)}, got {args.outputs}")
    if any(b not in ("kl", "is") for b in args.betas):
        raise UserError(f"--betas: expected kl and/or is, got {args.betas}")
    if not (args.ratios and args.z_modes and args.iters and args.atoms and args.betas and args.sep_iters):
        raise UserError("every grid (--ratios, --z-modes, --iters, --atoms, --betas, --sep-iters) needs a value")
    if min(args.iters + args.sep_iters + args.atoms) < 1 or min(args.ratios) <= 0:
        raise UserError("iterations and atoms must be >= 1 and ratios > 0")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    sizes = budgets(args)
    torch.set_num_threads(args.num_threads)
    if len(set(sizes.values())) > 1 and not args.allow_unequal:
        raise UserError(f"unequal tuning budgets {sizes}: change the grids (or --allow-unequal)")
    print(f"configurations per method: {', '.join(f'{k} {v}' for k, v in sizes.items())}"
          + (" (equal budget)" if len(set(sizes.values())) == 1 else " (UNEQUAL budget)"), flush=True)
    stft = reference_stft()
    data = load_set(args.data, stft)
    if not 0 < args.tune < len(data.names):
        raise UserError(f"--tune {args.tune}: {args.data} has {len(data.names)} mixtures; keep some held out")
    print(f"tuning on {data.names[0]}..{data.names[args.tune - 1]}, holding out {len(data.names) - args.tune}",
          flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    args.nmf_cache.mkdir(parents=True, exist_ok=True)
    models = ModelCache(stft, args.nmf_cache)
    tuning = data.subset(range(args.tune))
    for method in args.methods:
        run_grid(method, args, tuning, models)
    report(args, len(data.names))


if __name__ == "__main__":
    run_main(main)
