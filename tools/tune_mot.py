"""Tune MixDVAE and the KF-VEM baselines with the same grid budget on a validation split.

    python tools/tune_mot.py --data data/generated/mot_sets/synthetic/val --out output/tuning/synthetic \
        --dvae model/pretrained/mot_srnn.pt

Grids (every combination; each method gets the same number of points, checked):

- MixDVAE (one per ``--dvae [NAME=]PATH``): ``--taus`` x ``--init-lens`` x ``--z-modes`` x ``--var-scales``
  (``dvae_var_scale``) x ``--dvae-es`` x ``--es-vars`` (``dvae_es_var``);
- KF-VEM filter and KF-VEM smoother, each on its own: ``--taus`` x ``--init-lens`` x ``--accels``
  (``accel_std_ratio``).

The VEM's other settings (``N_iter_total``, ``init_iter_number``, ``std_ratio``, normalisation) come from
``--config`` (default ``config/cfg_dvae_vem_mot.ini``) unless ``--n-iter`` / ``--init-iter`` are given.

Several validation splits: repeat ``--data`` (and ``--clutter-data`` for splits whose every VEM gets the
clutter class ``--clutter-logprob``, default -10 there). Each grid point then runs on every split and is
scored by the **mean** over the splits of IDF1, MOTA and HOTA (IDs summed); ``grid.csv`` keeps the
per-split IDF1 in ``splits``. One split gives the plain scores, as before.

Writes to ``--out``:

- ``grid.csv``: one row per method and grid point: settings, IDF1, MOTA, IDs, HOTA (%), seconds;
  points already in it are not run again (an interrupted run resumes);
- ``best.md`` / ``best.json``: per method, the grid point with the highest validation IDF1 (ties: MOTA,
  then HOTA). Nothing is hand-picked; ``best.json`` feeds ``tools/mot_results_table.py --tuning``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.fast_srnn import ES_MODES, ES_VARS  # noqa: E402

from utils.errors import UserError, run_main  # noqa: E402
from utils.mot_experiments import KINDS, MethodRunner, MethodSpec, dataset_metrics, load_split, parse_dvae, \
    reference_vem_settings, score_samples  # noqa: E402

GRID_COLUMNS = ("method", "kind", "checkpoint", "assignment_temperature", "init_subseq_len", "z_mode", "dvae_var_scale",
                "dvae_es", "dvae_es_var", "accel_std_ratio", "idf1", "mota", "ids", "hota", "seconds", "splits")
TUNED = ("mixdvae", "kf_filter", "kf_smoother")


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def grids(args: argparse.Namespace) -> dict[str, list[MethodSpec]]:
    """Method label -> its grid of specs."""
    kinds = [k.strip() for k in args.methods.split(",") if k.strip()]
    bad = sorted(set(kinds) - set(TUNED))
    if bad:
        raise UserError(f"--methods: cannot tune {', '.join(bad)}; choose from {', '.join(TUNED)}")
    out: dict[str, list[MethodSpec]] = {}
    for kind in kinds:
        if kind == "mixdvae":
            if not args.dvae:
                raise UserError("--methods mixdvae needs at least one --dvae [NAME=]PATH")
            for text in args.dvae:
                label, path = parse_dvae(text)
                out[label] = [MethodSpec(label, kind, path, tau, init, z_mode=z, dvae_var_scale=v, dvae_es=es,
                                         dvae_es_var=ev)
                              for tau, init, z, v, es, ev in itertools.product(args.taus, args.init_lens, args.z_modes,
                                                                               args.var_scales, args.dvae_es,
                                                                               args.es_vars)]
        else:
            out[KINDS[kind]] = [MethodSpec(KINDS[kind], kind, None, tau, init, accel_std_ratio=a)
                                for tau, init, a in itertools.product(args.taus, args.init_lens, args.accels)]
    return out


def point_key(spec: MethodSpec) -> tuple:
    dvae = spec.kind == "mixdvae"
    return (spec.label, str(spec.checkpoint or ""), f"{spec.assignment_temperature:g}", str(spec.init_subseq_len),
            spec.z_mode if dvae else "", f"{spec.dvae_var_scale:g}" if dvae else "", spec.dvae_es if dvae else "",
            spec.dvae_es_var if dvae else "", "" if dvae else f"{spec.accel_std_ratio:g}")


def row_key(row: dict) -> tuple:
    return (row["method"], row["checkpoint"], f"{float(row['assignment_temperature']):g}", row["init_subseq_len"],
            row["z_mode"], f"{float(row.get('dvae_var_scale') or 1):g}" if row["z_mode"] else "",
            (row.get("dvae_es") or "filter") if row["z_mode"] else "",
            (row.get("dvae_es_var") or "model") if row["z_mode"] else "",
            f"{float(row['accel_std_ratio']):g}" if row["accel_std_ratio"] else "")


def read_grid(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    if tuple(reader.fieldnames or ()) != GRID_COLUMNS:
        raise UserError(f"{path}: written by another version of this tool (columns {reader.fieldnames}); "
                        "choose a new --out")
    return rows


def pooled_metrics(per_split: list[dict]) -> dict:
    """Mean IDF1 / MOTA / HOTA over the splits (fractions), IDs summed: one score per grid point."""
    return {"idf1": float(np.mean([m["idf1"] for m in per_split])),
            "mota": float(np.mean([m["mota"] for m in per_split])),
            "hota": float(np.mean([m["hota"] for m in per_split])),
            "ids": int(sum(int(m["ids"]) for m in per_split))}


def split_name(path: Path) -> str:
    """``.../mot_sets/occlusion/val`` -> ``occlusion/val``."""
    return "/".join(path.parts[-2:])


def best_rows(rows: list[dict]) -> dict[str, dict]:
    """Per method, the row with the highest IDF1 (then MOTA, then HOTA)."""
    best: dict[str, dict] = {}
    for row in rows:
        key = tuple(float(row[k]) for k in ("idf1", "mota", "hota"))
        old = best.get(row["method"])
        if old is None or key > tuple(float(old[k]) for k in ("idf1", "mota", "hota")):
            best[row["method"]] = row
    return best


def settings_of(row: dict, clutter_logprob: float | None) -> dict:
    out = {"kind": row["kind"], "assignment_temperature": float(row["assignment_temperature"]),
           "init_subseq_len": int(row["init_subseq_len"])}
    if row["kind"] == "mixdvae":
        out.update(checkpoint=row["checkpoint"], z_mode=row["z_mode"],
                   dvae_var_scale=float(row.get("dvae_var_scale") or 1), dvae_es=row.get("dvae_es") or "filter",
                   dvae_es_var=row.get("dvae_es_var") or "model")
    else:
        out["accel_std_ratio"] = float(row["accel_std_ratio"])
    if clutter_logprob is not None:
        out["clutter_logprob"] = clutter_logprob
    return out


def best_markdown(best: dict[str, dict], budget: int, data: str) -> str:
    lines = [f"Best validation point per method on `{data}` (selected by IDF1; {budget} grid points per method; "
             "IDF1, MOTA in % over the split, IDs summed, HOTA = mean of the per-sample HOTA in %)", "",
             "| method | tau | init_subseq_len | z_mode, var_scale / accel_std_ratio | IDF1 | MOTA | IDs | HOTA |",
             "|---|---|---|---|---|---|---|---|"]
    for label, r in best.items():
        third = (f"{r['z_mode']}, var x{float(r.get('dvae_var_scale') or 1):g} ({r.get('dvae_es_var') or 'model'}), "
                 f"E-S {r.get('dvae_es') or 'filter'}"
                 if r["kind"] == "mixdvae"
                 else f"accel {float(r['accel_std_ratio']):g}")
        lines.append(f"| {label} | {float(r['assignment_temperature']):g} | {r['init_subseq_len']} | {third} | "
                     f"{float(r['idf1']):.2f} | {float(r['mota']):.2f} | {r['ids']} | {float(r['hota']):.2f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", default=[],
                    help="validation split (directory of sample .npz); repeat to score the mean over splits")
    ap.add_argument("--clutter-data", type=Path, action="append", default=[],
                    help="a validation split run with the clutter class (--clutter-logprob, default -10); repeatable")
    ap.add_argument("--out", type=Path, required=True, help="output directory (grid.csv, best.md, best.json)")
    ap.add_argument("--methods", default="mixdvae,kf_filter,kf_smoother", help="comma list of " + ", ".join(TUNED))
    ap.add_argument("--dvae", action="append", default=[], metavar="[NAME=]PATH",
                    help="MixDVAE checkpoint (repeatable; NAME labels the row MixDVAE-NAME)")
    ap.add_argument("--taus", type=floats, default=floats("0.01,0.03,0.1,0.3,1"), help="assignment_temperature")
    ap.add_argument("--init-lens", type=ints, default=ints("5,10,20,30"), help="init_subseq_len")
    ap.add_argument("--z-modes", type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
                    default=["sample", "mean"], help="MixDVAE z_mode")
    ap.add_argument("--var-scales", type=floats, default=floats("1"), help="MixDVAE dvae_var_scale")
    ap.add_argument("--dvae-es", type=lambda s: [v.strip() for v in s.split(",") if v.strip()], default=["filter"],
                    help="MixDVAE dvae_es: filter, propagate and/or smoother")
    ap.add_argument("--es-vars", type=lambda s: [v.strip() for v in s.split(",") if v.strip()], default=["model"],
                    help="MixDVAE dvae_es_var: model, fixed and/or adaptive")
    ap.add_argument("--accels", type=floats, default=floats("0.003,0.01"), help="KF-VEM accel_std_ratio")
    ap.add_argument("--config", default="config/cfg_dvae_vem_mot.ini",
                    help="INI giving N_iter_total, init_iter_number, std_ratio, normalisation")
    ap.add_argument("--n-iter", type=int, default=None, help="N_iter_total (default: --config)")
    ap.add_argument("--init-iter", type=int, default=None, help="init_iter_number (default: --config)")
    ap.add_argument("--clutter-logprob", type=float, default=None, help="clutter class for every method")
    ap.add_argument("--upsample", type=int, default=1,
                    help="run every VEM at this many times the data's frame rate (model/frame_rate.py)")
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--iou-threshold", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--allow-unequal", action="store_true", help="run even if the grids differ in size")
    args = ap.parse_args(argv)
    if not args.data and not args.clutter_data:
        raise UserError("give at least one validation split: --data DIR (or --clutter-data DIR)")
    if any(z not in ("sample", "mean") for z in args.z_modes):
        raise UserError(f"--z-modes: expected sample and/or mean, got {args.z_modes}")
    if any(v not in ES_MODES for v in args.dvae_es):
        raise UserError(f"--dvae-es: expected some of {', '.join(ES_MODES)}, got {args.dvae_es}")
    if any(v not in ES_VARS for v in args.es_vars):
        raise UserError(f"--es-vars: expected some of {', '.join(ES_VARS)}, got {args.es_vars}")
    if not (args.taus and args.init_lens and args.z_modes and args.var_scales and args.dvae_es and args.es_vars
            and args.accels):
        raise UserError("every grid (--taus, --init-lens, --z-modes, --var-scales, --accels) needs at least one value")
    if any(v <= 0 for v in args.var_scales):
        raise UserError(f"--var-scales: expected positive numbers, got {args.var_scales}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    specs = grids(args)
    sizes = {label: len(g) for label, g in specs.items()}
    if len(set(sizes.values())) > 1 and not args.allow_unequal:
        raise UserError(f"unequal tuning budgets {sizes}: give --z-modes and --accels the same number of values "
                        "(or --allow-unequal)")
    budget = max(sizes.values())
    print(f"grid points per method: {', '.join(f'{k} {v}' for k, v in sizes.items())}"
          + (" (equal budget)" if len(set(sizes.values())) == 1 else " (UNEQUAL budget)"))
    base = reference_vem_settings(args.config, n_iter=args.n_iter, init_iter=args.init_iter,
                                  clutter_logprob=args.clutter_logprob)
    clutter = -10.0 if args.clutter_logprob is None else args.clutter_logprob
    clutter_base = reference_vem_settings(args.config, n_iter=args.n_iter, init_iter=args.init_iter,
                                          clutter_logprob=clutter)
    print(f"VEM: N_iter_total {base.n_iter}, init_iter_number {base.init_iter}, std_ratio {base.std_ratio}, "
          f"clutter_logprob {base.clutter_logprob}; seed {args.seed}")
    grid_path = args.out / "grid.csv"
    rows = read_grid(grid_path)                                  # before the data: a stale file fails fast
    done = {row_key(r) for r in rows}
    args.out.mkdir(parents=True, exist_ok=True)
    splits = []                                                  # (name, batch, gt, runner)
    for path, setting in [(p, base) for p in args.data] + [(p, clutter_base) for p in args.clutter_data]:
        batch = load_split(path)
        splits.append((split_name(path), batch, batch["gt"].numpy(),
                       MethodRunner(setting, args.batch_size, args.seed, args.upsample)))
        print(f"data: {len(splits[-1][2])} samples from {path}"
              + (f" (clutter class {setting.clutter_logprob:g})" if setting is clutter_base else ""))
    if len(splits) > 1:
        print(f"each grid point is scored by the mean over {len(splits)} splits")
    new_file = not grid_path.is_file()
    with grid_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(GRID_COLUMNS))
        if new_file:
            writer.writeheader()
        for label, grid in specs.items():
            for i, spec in enumerate(grid):
                if point_key(spec) in done:
                    continue
                t0 = time.perf_counter()
                per_split = [dataset_metrics(score_samples(gt, runner.run(spec, batch), args.iou_threshold))
                             for _, batch, gt, runner in splits]
                m = pooled_metrics(per_split)
                row = {"method": label, "kind": spec.kind, "checkpoint": spec.checkpoint or "",
                       "assignment_temperature": spec.assignment_temperature,
                       "init_subseq_len": spec.init_subseq_len,
                       "z_mode": spec.z_mode if spec.kind == "mixdvae" else "",
                       "dvae_var_scale": spec.dvae_var_scale if spec.kind == "mixdvae" else "",
                       "dvae_es": spec.dvae_es if spec.kind == "mixdvae" else "",
                       "dvae_es_var": spec.dvae_es_var if spec.kind == "mixdvae" else "",
                       "accel_std_ratio": spec.accel_std_ratio if spec.kind != "mixdvae" else "",
                       "idf1": round(100 * float(m["idf1"]), 3), "mota": round(100 * float(m["mota"]), 3),
                       "ids": int(m["ids"]), "hota": round(100 * float(m["hota"]), 3),
                       "seconds": round(time.perf_counter() - t0, 2),
                       "splits": ";".join(f"{name}:{100 * float(ms['idf1']):.3f}"
                                          for (name, *_), ms in zip(splits, per_split))}
                writer.writerow(row)
                f.flush()
                rows.append({k: str(v) for k, v in row.items()})
                third = (f"z {spec.z_mode} var x{spec.dvae_var_scale:g} ({spec.dvae_es_var}) E-S {spec.dvae_es}"
                         if spec.kind == "mixdvae"
                         else f"accel {spec.accel_std_ratio:g}")
                print(f"[{label} {i + 1}/{len(grid)}] tau {spec.assignment_temperature:g} init "
                      f"{spec.init_subseq_len} " + third
                      + f": IDF1 {row['idf1']:.2f} MOTA {row['mota']:.2f} IDs {row['ids']} HOTA {row['hota']:.2f}"
                      f" ({row['seconds']:.0f} s)", flush=True)
    wanted = {point_key(s) for g in specs.values() for s in g}
    best = best_rows([r for r in rows if row_key(r) in wanted])
    data = ", ".join(str(p) for p in [*args.data, *args.clutter_data])
    table = best_markdown(best, budget, data)
    (args.out / "best.md").write_text(table)
    selected_by = "validation IDF1" if len(splits) == 1 else f"mean validation IDF1 over {len(splits)} splits"
    summary = {"data": data, "grid_points_per_method": sizes, "selected_by": selected_by,
               "vem": {"N_iter_total": base.n_iter, "init_iter_number": base.init_iter, "std_ratio": base.std_ratio,
                       "clutter_logprob": base.clutter_logprob, "upsample": args.upsample},
               "grids": {"taus": args.taus, "init_lens": args.init_lens, "z_modes": args.z_modes,
                         "var_scales": args.var_scales, "dvae_es": args.dvae_es, "es_vars": args.es_vars,
                         "accels": args.accels},
               "methods": {label: {**settings_of(r, base.clutter_logprob), "val_idf1": float(r["idf1"]),
                                   "val_mota": float(r["mota"]), "val_ids": int(r["ids"]), "val_hota": float(r["hota"])}
                           for label, r in best.items()}}
    (args.out / "best.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n" + table)
    print(f"wrote {grid_path}, {args.out / 'best.md'}, {args.out / 'best.json'}")


if __name__ == "__main__":
    run_main(main)
