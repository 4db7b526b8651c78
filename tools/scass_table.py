"""Score separation methods on several mixture sets: SI-SDR means with bootstrap 95 % CIs and paired differences.

    python tools/scass_table.py --out output/scass_snr \
        --set "real 0 dB=data/generated/real_speech_mixtures" \
        --set "real -5 dB=data/generated/real_speech_mixtures_snr_m5" \
        --method MixDVAE=mixdvae --method NMF=nmf,dictionary=model/pretrained/nmf_surrogate.npz \
        --method IBM=ibm --method Mixture=mixture --reference NMF

A method is ``LABEL=KIND[,key=value,...]``, KIND one of mixdvae, nmf, ibm, mixture; the keys are the fields
of ``tools/scass_runs.MixDVAEPoint`` / ``NMFPoint`` (e.g. ``mixdvae,ratio_v_theta_x=0.1,speech=static``,
``nmf,train_flute=data/generated/surrogate_broad_flute/train``). Defaults are the shipped ones
(``config/cfg_dvae_vem_scass.ini``; the paper's MixDVAE is ``mixdvae,ratio_v_theta_x=0.03,output=mean,
flute=model/pretrained/flute_srnn.pt,speech=model/pretrained/speech_srnn.pt``).

Writes to ``--out``: ``items.csv`` (one row per set, method and mixture: SI-SDR of flute and speech; rows
already there for the same method settings are not recomputed, so an interrupted run resumes, and sets or
methods can be added later), ``table.md`` (per set and method: mean SI-SDR [95 % CI] per source, and the
paired difference method - reference [95 % CI]) and ``table.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tools.scass_runs import KINDS, SOURCES, ModelCache, bootstrap_mean, fmt_ci, load_set, paired_difference, \
    parse_point, reference_stft, run_point  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402

ITEM_COLUMNS = ("set", "method", "settings", "name", *SOURCES)


def parse_named(text: str, what: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label.strip() or not value.strip():
        raise UserError(f"{what} {text!r}: expected LABEL=VALUE")
    return label.strip(), value.strip()


def settings_text(kind: str, point) -> str:
    return json.dumps({"kind": kind, **(asdict(point) if point is not None else {})}, sort_keys=True)


def read_items(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


LEGACY = {"output": "mean", "ratio_v_theta_x": 0.03}   # MixDVAE rows saved before these were settings or defaults


def same_settings(saved: str, current: str) -> bool:
    """Rows written before a setting existed hold its default of then (an older items.csv stays usable): MixDVAE
    rows without ``output`` (or with ``mu``, its first name) used the posterior means."""
    saved, current = json.loads(saved), json.loads(current)
    if saved["kind"] == "mixdvae":
        saved = {**LEGACY, **saved}
        saved["output"] = "mean" if saved["output"] == "mu" else saved["output"]
    cls = KINDS.get(current["kind"])
    defaults = {"kind": current["kind"], **(asdict(cls()) if cls is not None else {})}
    return {**defaults, **saved} == {**defaults, **current}


def collect(rows: list[dict], set_label: str, settings: str, names: list[str]) -> np.ndarray | None:
    """(B, N) scores of one set and method settings from ``items.csv`` rows (under any method label), or None
    if any mixture is missing."""
    found = {r["name"]: r for r in rows if r["set"] == set_label and same_settings(r["settings"], settings)}
    if any(n not in found for n in names):
        return None
    return np.array([[float(found[n][s]) for s in SOURCES] for n in names])


def markdown(results: dict, reference: str | None) -> str:
    head = "| set | method | n | SI-SDR flute | SI-SDR speech |"
    rule = "|---|---|---|---|---|"
    if reference:
        head += f" Δ flute vs {reference} | Δ speech vs {reference} |"
        rule += "---|---|"
    lines = ["Mean SI-SDR in dB [percentile-bootstrap 95 % CI over mixtures]; Δ = mean per-mixture difference "
             "(method − reference) [95 % CI].", "", head, rule]
    for set_label, methods in results.items():
        for method, r in methods.items():
            row = f"| {set_label} | {method} | {r['n']} | " + " | ".join(fmt_ci(r[s]) for s in SOURCES) + " |"
            if reference:
                row += " " + " | ".join(fmt_ci(r[f"delta_{s}"], signed=True) if f"delta_{s}" in r else ""
                                        for s in SOURCES) + " |"
            lines.append(row)
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory (items.csv, table.md, table.json)")
    ap.add_argument("--set", action="append", default=[], metavar="LABEL=DIR", help="mixture set (repeatable)")
    ap.add_argument("--method", action="append", default=[], metavar="LABEL=KIND[,key=value...]",
                    help="method (repeatable)")
    ap.add_argument("--reference", default=None, help="label of the method paired differences are taken against")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first SKIP mixtures of every set (by name), "
                                                        "e.g. the ones a tuning run used")
    ap.add_argument("--nmf-cache", type=Path, default=Path("output/nmf_cache_tools"), help="NMF dictionary cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-threads", type=int, default=1)
    args = ap.parse_args(argv)
    if not args.set or not args.method:
        raise UserError("give at least one --set LABEL=DIR and one --method LABEL=KIND")
    args.sets = [parse_named(s, "--set") for s in args.set]
    args.methods = [parse_point(m) for m in args.method]
    labels = [m[0] for m in args.methods]
    if len(set(labels)) != len(labels):
        raise UserError(f"--method labels must differ, got {labels}")
    if args.reference is not None and args.reference not in labels:
        raise UserError(f"--reference {args.reference!r} is not one of the method labels {labels}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.num_threads)
    stft = reference_stft()
    args.out.mkdir(parents=True, exist_ok=True)
    args.nmf_cache.mkdir(parents=True, exist_ok=True)
    models = ModelCache(stft, args.nmf_cache)
    items_path = args.out / "items.csv"
    rows = read_items(items_path)
    new_file = not items_path.is_file()
    results: dict[str, dict] = {}
    with items_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(ITEM_COLUMNS))
        if new_file:
            writer.writeheader()
        for set_label, data_dir in args.sets:
            data = load_set(data_dir, stft)
            data = data.subset(range(args.skip, len(data.names)))
            if not data.names:
                raise UserError(f"--set {set_label}: no mixtures left after --skip {args.skip}")
            scores = {}
            for label, kind, point in args.methods:
                settings = settings_text(kind, point)
                values = collect(rows, set_label, settings, data.names)
                known = values is not None
                if not known:
                    t0 = time.perf_counter()
                    values = run_point(kind, point, data, models, seed=args.seed)
                if collect([r for r in rows if r["method"] == label], set_label, settings, data.names) is None:
                    for name, v in zip(data.names, values):
                        row = {"set": set_label, "method": label, "settings": settings, "name": name,
                               **{s: f"{x:.4f}" for s, x in zip(SOURCES, v)}}
                        writer.writerow(row)
                        rows.append(row)
                    f.flush()
                if not known:
                    print(f"[{set_label}] {label}: {np.nanmean(values[:, 0]):.2f} / {np.nanmean(values[:, 1]):.2f} dB "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
                scores[label] = values
            results[set_label] = {}
            for label, values in scores.items():
                r = {"n": len(values), **{s: bootstrap_mean(values[:, k]) for k, s in enumerate(SOURCES)}}
                if args.reference and label != args.reference:
                    r.update({f"delta_{s}": paired_difference(values[:, k], scores[args.reference][:, k])
                              for k, s in enumerate(SOURCES)})
                results[set_label][label] = r
    table = markdown(results, args.reference)
    (args.out / "table.md").write_text(table)
    summary = {"sets": dict(args.sets), "skip": args.skip, "reference": args.reference,
               "methods": {label: json.loads(settings_text(kind, point)) for label, kind, point in args.methods},
               "results": results}
    (args.out / "table.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n" + table)
    print(f"wrote {items_path}, {args.out / 'table.md'}, {args.out / 'table.json'}")


if __name__ == "__main__":
    run_main(main)
