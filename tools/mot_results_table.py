"""MOT results table with 95 % bootstrap intervals: every method on the test split of every set.

    python tools/mot_results_table.py --dvae causal=model/pretrained/mot_srnn.pt \
        --dvae noncausal=PATH --tuning "output/tuning/{set}/best.json" --out output/results

Rows: one MixDVAE per ``--dvae [NAME=]PATH`` ("MixDVAE-NAME"), KF-VEM filter, KF-VEM smoother and SORT-style
(``--methods``). Each method's settings come from ``--tuning`` (a ``tools/tune_mot.py`` ``best.json``;
``{set}`` is replaced by the set's name, so each set may use its own validation split), else from the
CLI defaults (``--tau``, ``--init-len``, ``--z-mode``, ``--accel``), which default to the reference config;
the table says which. Columns: MOTA, IDF1, IDs and HOTA, each with a 95 % percentile bootstrap interval
over samples (``--num-boot`` resamples, ``--seed``): MOTA = 1 - (FN + FP + IDSW) / GT and
IDF1 = 2 IDTP / (GT + predictions) from the resampled per-sample counts, IDs = their sum, HOTA = the mean
of the per-sample HOTA. Writes ``results.md`` and ``results.json`` to ``--out`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from model.fast_srnn import ES_MODES, ES_VARS  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402
from utils.mot_experiments import KINDS, MethodRunner, MethodSpec, bootstrap_ci, load_split, parse_dvae, \
    reference_vem_settings, seeded_scores  # noqa: E402

SETS = ("synthetic", "half_rate", "occlusion", "clutter", "camera", "manoeuvre")
METRICS = (("mota", "MOTA", True), ("idf1", "IDF1", True), ("ids", "IDs", False), ("hota", "HOTA", True))


def method_specs(args: argparse.Namespace, base) -> list[MethodSpec]:
    """The rows, at the CLI/default settings (tuned settings are applied per set by :func:`tuned`)."""
    defaults = dict(assignment_temperature=args.tau if args.tau is not None else base.temperature,
                    init_subseq_len=args.init_len if args.init_len is not None else base.init_subseq_len)
    specs = []
    for kind in [k.strip() for k in args.methods.split(",") if k.strip()]:
        if kind not in KINDS:
            raise UserError(f"--methods: unknown method {kind!r}; choose from {', '.join(KINDS)}")
        if kind == "mixdvae":
            if not args.dvae:
                raise UserError("--methods mixdvae needs at least one --dvae [NAME=]PATH")
            for text in args.dvae:
                label, path = parse_dvae(text)
                specs.append(MethodSpec(label, kind, path, z_mode=args.z_mode, dvae_var_scale=args.var_scale,
                                        dvae_es=args.dvae_es, dvae_es_var=args.es_var, **defaults))
        else:
            specs.append(MethodSpec(KINDS[kind], kind, accel_std_ratio=args.accel, **defaults))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise UserError(f"two rows share a label ({', '.join(labels)}): name each --dvae NAME=PATH")
    return specs


def tuned(spec: MethodSpec, tuning: dict | None) -> tuple[MethodSpec, str]:
    """The spec with its tuned settings (same label in the tuning JSON) and where they came from."""
    if spec.kind == "sort":
        return spec, "fixed"
    entry = (tuning or {}).get("methods", {}).get(spec.label)
    if entry is None:
        return spec, "defaults"
    if entry.get("kind") != spec.kind:
        raise UserError(f"tuning entry {spec.label!r} is a {entry.get('kind')!r}, the row is a {spec.kind!r}")
    values = {k: v for k, v in entry.items() if k not in ("checkpoint", "data")}   # the row's own checkpoint wins
    return spec.with_settings(values), "tuned on " + str(entry.get("data") or tuning.get("data", "?"))


def load_tuning(patterns: list[str] | None, name: str) -> dict | None:
    """The ``best.json`` files of ``patterns`` (``{set}`` = ``name``) merged into one: each entry keeps the
    ``data`` it was tuned on; a label tuned in two files is refused."""
    merged: dict = {"methods": {}}
    for pattern in patterns or []:
        path = Path(pattern.replace("{set}", name))
        if not path.is_file():
            print(f"warning: no tuning file {path}: its rows of set {name} use the default settings", file=sys.stderr)
            continue
        tuning = json.loads(path.read_text())
        for label, entry in tuning.get("methods", {}).items():
            if label in merged["methods"]:
                raise UserError(f"--tuning: {label!r} is tuned in two files (the second is {path})")
            merged["methods"][label] = {**entry, "data": tuning.get("data", "?")}
        merged["data"] = tuning.get("data", "?")
    return merged if merged["methods"] else None


def fmt(value: tuple[float, float, float], percent: bool) -> str:
    v, lo, hi = value
    if percent:
        return f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{v:.0f} [{lo:.0f}, {hi:.0f}]"


def markdown(results: dict) -> str:
    parts = []
    for name, res in results["sets"].items():
        parts.append(f"### {name} ({res['split']}, {res['num_samples']} samples)\n")
        parts.append("| method | MOTA | IDF1 | IDs | HOTA | settings |")
        parts.append("|---|---|---|---|---|---|")
        for label, row in res["methods"].items():
            cells = [fmt(row["metrics"][key], pct) for key, _, pct in METRICS]
            settings = ", ".join(f"{k} {v}" for k, v in row["settings"].items() if k != "checkpoint")
            parts.append(f"| {label} | " + " | ".join(cells) + f" | {settings} ({row['settings_from']}) |")
        parts.append("")
    seeds = results["vem"].get("seeds", [0])
    runs = f"; MixDVAE rows: per-sample counts averaged over VEM seeds {seeds}" if len(seeds) > 1 else ""
    head = (f"MOTA, IDF1, HOTA in %, IDs = identity switches summed over the split; [95 % bootstrap interval over "
            f"samples, {results['num_boot']} resamples, seed {results['seed']}]{runs}\n\n")
    return head + "\n".join(parts)


def run(args: argparse.Namespace) -> dict:
    base = reference_vem_settings(args.config, n_iter=args.n_iter, init_iter=args.init_iter,
                                  clutter_logprob=args.clutter_logprob)
    specs = method_specs(args, base)
    runners = [MethodRunner(base, args.batch_size, seed, args.upsample) for seed in args.vem_seeds]
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    results = {"num_boot": args.num_boot, "seed": args.seed, "split": args.split,
               "vem": {"N_iter_total": base.n_iter, "init_iter_number": base.init_iter, "std_ratio": base.std_ratio,
                       "upsample": args.upsample, "seeds": args.vem_seeds},
               "sets": {}}
    for name in names:
        data = args.root / name / args.split
        batch = load_split(data)
        gt = batch["gt"].numpy()
        tuning = load_tuning(args.tuning, name)
        rows = {}
        for spec in specs:
            spec, source = tuned(spec, tuning)
            t0 = time.perf_counter()
            metrics = bootstrap_ci(seeded_scores(runners, spec, batch, args.iou_threshold), args.num_boot, args.seed)
            rows[spec.label] = {"settings": spec.settings(), "settings_from": source, "metrics": metrics,
                                "seconds": round(time.perf_counter() - t0, 2)}
            print(f"{name}: {spec.label} IDF1 {fmt(metrics['idf1'], True)} ({rows[spec.label]['seconds']:.0f} s)",
                  flush=True)
        results["sets"][name] = {"data": str(data), "split": args.split, "num_samples": len(gt), "methods": rows}
    return results


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("data/generated/mot_sets"), help="sets root")
    ap.add_argument("--sets", default=",".join(SETS), help="comma list of set names under --root")
    ap.add_argument("--split", default="test")
    ap.add_argument("--methods", default="mixdvae,kf_filter,kf_smoother,sort", help="comma list of " + ", ".join(KINDS))
    ap.add_argument("--dvae", action="append", default=[], metavar="[NAME=]PATH",
                    help="MixDVAE checkpoint (repeatable; NAME labels the row MixDVAE-NAME)")
    ap.add_argument("--tuning", action="append", default=[],
                    help="best.json of tools/tune_mot.py; {set} = the set's name; repeat to merge several")
    ap.add_argument("--tau", type=float, default=None, help="assignment_temperature (default: --config)")
    ap.add_argument("--init-len", type=int, default=None, help="init_subseq_len (default: --config)")
    ap.add_argument("--z-mode", choices=("sample", "mean"), default="sample")
    ap.add_argument("--var-scale", type=float, default=1.0, help="MixDVAE dvae_var_scale")
    ap.add_argument("--dvae-es", choices=ES_MODES, default="filter", help="MixDVAE dvae_es")
    ap.add_argument("--es-var", choices=ES_VARS, default="model", help="MixDVAE dvae_es_var")
    ap.add_argument("--accel", type=float, default=0.01, help="KF-VEM accel_std_ratio")
    ap.add_argument("--config", default="config/cfg_dvae_vem_mot.ini")
    ap.add_argument("--n-iter", type=int, default=None)
    ap.add_argument("--init-iter", type=int, default=None)
    ap.add_argument("--clutter-logprob", type=float, default=None)
    ap.add_argument("--upsample", type=int, default=1,
                    help="run every VEM at this many times the data's frame rate (model/frame_rate.py)")
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--iou-threshold", type=float, default=0.5)
    ap.add_argument("--num-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ap.add_argument("--vem-seeds", type=lambda t: [int(v) for v in t.split(",") if v.strip()], default=[0],
                    help="comma list of VEM seeds; a MixDVAE row's per-sample counts are averaged over them")
    ap.add_argument("--num-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("output/results"))
    args = ap.parse_args(argv)
    if not args.vem_seeds:
        raise UserError("--vem-seeds: give at least one seed")
    if args.num_boot < 1:
        raise UserError("--num-boot must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    results = run(args)
    table = markdown(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + table)
    print(f"wrote {args.out / 'results.md'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    run_main(main)
