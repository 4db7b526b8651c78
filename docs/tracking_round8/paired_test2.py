"""Round 8: per-sample scores of every pre-registered row on a split, then the paired IDF1 differences.

    python docs/tracking_round8/paired_test2.py --split test2 --out output/r8/per_sample     # runs the rows
    python docs/tracking_round8/paired_test2.py --split test2 --out output/r8/per_sample --table-only
    python docs/tracking_round8/paired_test2.py --rows MixDVAE-dngap-rate-propagate-adaptive ...  # adds one row

Rows run with their tuned settings (the best_*.json of round 7 and round 6) and three VEM seeds, MixDVAE counts
averaged per sample (tools/mot_results_table.py); the per-sample scores go to OUT/<set>.npz, so the tables can be
redone without rerunning. The bootstrap (2 000 resamples, seed 0) resamples the same samples for both rows of a pair.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "tracking_round5"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from paired import spec  # noqa: E402

from utils.mot_experiments import MethodRunner, dataset_metrics, load_split, reference_vem_settings, \
    seeded_scores  # noqa: E402

SETS = ("synthetic", "half_rate", "occlusion", "camera", "manoeuvre", "clutter")
CAUSAL, DEFAULT, LARGE = ("MixDVAE-dngap-propagate-adaptive", "MixDVAE-dngap-smoother-fixed",
                          "MixDVAE-large-dn-smoother-fixed")
RATE = "MixDVAE-dngap-rate-propagate-adaptive"       # round 8's causal row, chosen on validation after the run
OTHERS = ("MixDVAE-dngap-propagate-fixed", "MixDVAE-noncausal-smoother-fixed")
FILTER, SMOOTHER = "KF-VEM-filter", "KF-VEM-smoother"
PAIRS = ((CAUSAL, FILTER), (DEFAULT, SMOOTHER), (LARGE, SMOOTHER))
TUNING = [ROOT / "docs" / "tracking_round8", ROOT / "docs" / "tracking_round7",
          ROOT / "docs" / "tracking_round6" / "tuning"]


def run_set(name: str, split: str, out: Path, labels: tuple[str, ...]) -> None:
    base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                  clutter_logprob=-10.0 if name == "clutter" else None)
    runners = [MethodRunner(base, 300, seed) for seed in (0, 1, 2)]
    batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / split)
    path = out / f"{name}.npz"
    arrays = {}
    if path.is_file():                                   # add rows to what an earlier run wrote
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    for label in labels:
        for key, value in seeded_scores(runners, spec(label, TUNING), batch).items():
            arrays[f"{label}|{key}"] = value
        print(f"{name}: {label} done", flush=True)
    np.savez_compressed(path, **arrays)


def rows_of(path: Path) -> dict[str, dict[str, np.ndarray]]:
    rows: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            label, _, metric = key.partition("|")
            rows.setdefault(label, {})[metric] = data[key]
    return rows


def paired(a: dict, b: dict, num_boot: int = 2000) -> tuple[float, float, float]:
    num = len(a["hota"])
    index = np.random.default_rng(0).integers(0, num, size=(num_boot, num))
    diff = dataset_metrics(a, index)["idf1"] - dataset_metrics(b, index)["idf1"]
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return 100 * (dataset_metrics(a)["idf1"] - dataset_metrics(b)["idf1"]), 100 * lo, 100 * hi


def fmt(diff: tuple[float, float, float]) -> str:
    """(difference, low, high) -> "+0.12 [-0.03, +0.25]"."""
    return f"{diff[0]:+.2f} [{diff[1]:+.2f}, {diff[2]:+.2f}]"


def set_rows(out: Path, needed: set[str]):
    """(set name, rows, IDF1 % per row) of every set whose OUT/<set>.npz holds the rows ``needed``."""
    for name in SETS:
        path = out / f"{name}.npz"
        if not path.is_file():
            continue
        rows = rows_of(path)
        if needed <= set(rows):
            yield name, rows, {k: 100 * float(dataset_metrics(v)["idf1"]) for k, v in rows.items()}


def table(out: Path) -> str:
    head = ("| set | causal | KF-VEM filter | Δ causal − filter | default | large-dn | KF-VEM smoother "
            "| Δ default − smoother | Δ large-dn − smoother | best MixDVAE row (post hoc) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, rows, idf1 in set_rows(out, {CAUSAL, DEFAULT, LARGE, FILTER, SMOOTHER}):
        d = {pair: paired(rows[pair[0]], rows[pair[1]]) for pair in PAIRS}
        best = max((k for k in idf1 if k.startswith("MixDVAE")), key=idf1.get)
        lines.append(f"| {name} | {idf1[CAUSAL]:.2f} | {idf1[FILTER]:.2f} | {fmt(d[PAIRS[0]])} | {idf1[DEFAULT]:.2f} "
                     f"| {idf1[LARGE]:.2f} | {idf1[SMOOTHER]:.2f} | {fmt(d[PAIRS[1]])} | {fmt(d[PAIRS[2]])} "
                     f"| {idf1[best]:.2f} ({best.removeprefix('MixDVAE-')}) |")
    return "\n".join(lines)


def rate_table(out: Path) -> str:
    """Round 8's causal row against the KF-VEM filter and against round 7's causal row."""
    lines = ["| set | causal, round 8 (mixed-rate DVAE) | causal, round 7 | KF-VEM filter | Δ round 8 − filter "
             "| Δ round 8 − round 7 |", "|---|---|---|---|---|---|"]
    for name, rows, idf1 in set_rows(out, {RATE, CAUSAL, FILTER}):
        a, b = (paired(rows[RATE], rows[other]) for other in (FILTER, CAUSAL))
        lines.append(f"| {name} | {idf1[RATE]:.2f} | {idf1[CAUSAL]:.2f} | {idf1[FILTER]:.2f} | {fmt(a)} | {fmt(b)} |")
    return "\n".join(lines)


CHOICE = "MixDVAE-choice"                             # choose_dvae.py: the DVAE chosen per sequence


def choice_table(out: Path) -> str:
    """The per-sequence DVAE choice (choose_dvae.py) against the KF-VEM smoother, the default row and large-dn."""
    lines = ["| set | choice | default | large-dn | KF-VEM smoother | Δ choice − smoother | Δ choice − default "
             "| Δ choice − large-dn |", "|---|---|---|---|---|---|---|---|"]
    for name, rows, idf1 in set_rows(out, {CHOICE, DEFAULT, LARGE, SMOOTHER}):
        d = [fmt(paired(rows[CHOICE], rows[other])) for other in (SMOOTHER, DEFAULT, LARGE)]
        lines.append(f"| {name} | {idf1[CHOICE]:.2f} | {idf1[DEFAULT]:.2f} | {idf1[LARGE]:.2f} | {idf1[SMOOTHER]:.2f} "
                     f"| {' | '.join(d)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test2")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--rows", default=",".join((CAUSAL, DEFAULT, LARGE, *OTHERS, FILTER, SMOOTHER)),
                    help="comma list of row labels to run (added to OUT/<set>.npz)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, args.out, tuple(args.rows.split(",")))
    print(table(args.out))
    print()
    print(rate_table(args.out))
    print()
    print(choice_table(args.out))


if __name__ == "__main__":
    main()
