"""Round 11, validation only: the per-sequence DVAE choices on val2, and the selection of the round's smoother row.

    python docs/tracking_round11/val2.py --sets synthetic,half_rate,occlusion     # the rows of the first look
    python docs/tracking_round11/val2.py --rows candidates --sets ...              # the candidates (README, Selection)
    python docs/tracking_round11/val2.py --table-only                             # tables from what was written

Per-sample scores go to OUT/<set>.npz (MixDVAE rows: counts averaged over VEM seeds 0, 1, 2); the paired bootstrap
(2 000 resamples, seed 0) resamples the same samples for both rows of a pair. No test split is read.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round10"), str(ROOT / "docs" / "tracking_round9"),
                str(ROOT / "docs" / "tracking_round8"), str(ROOT / "docs" / "tracking_round5")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from confirm import SETS, decisive_table, full_table, rows_of, run_set  # noqa: E402
from separate import DNGAP, LABELS as ROUND10_LABELS, RATE, SPECS as ROUND10, VEL, mixdvae  # noqa: E402

from utils.mot_experiments import MethodSpec, dataset_metrics  # noqa: E402

def judged_by_first(spec: MethodSpec) -> MethodSpec:
    return replace(spec, choice_score="first")


CANDIDATES = [
    judged_by_first(mixdvae("T3f", f"{DNGAP}+{RATE}+{VEL}", "smoother", (1.0, 1.0, 0.6))),
    judged_by_first(mixdvae("V2f", f"{DNGAP}+{VEL}", "smoother", (1.0, 0.6))),
]
BY_LABEL = {s.label: s for s in ROUND10 + CANDIDATES}          # round 10's frozen rows and the candidates
SPECS = [mixdvae("T3", f"{DNGAP}+{RATE}+{VEL}", "smoother", (1.0, 1.0, 0.6)),
         *(BY_LABEL[k] for k in ("S1", "S3c", "KF-VEM-smoother"))]
ROWS = tuple(s.label for s in SPECS)
LABELS = {**ROUND10_LABELS, "T3f": "three-DVAE choice, one yardstick (T3f)",
          "V2f": "vel-choice × 0.6, one yardstick (V2f)", "T3": "three-DVAE choice (T3)"}
PAIRS = (("T3", "KF-VEM-smoother"), ("S1", "KF-VEM-smoother"), ("S3c", "KF-VEM-smoother"))
AGAINST = (("T3", "S1"), ("T3", "S3c"))
YARDSTICK = (("T3f", "T3"), ("V2f", "S3c"))
SELECT = ("T3f", "V2f", "S1", "S3c", "T3")


def rows_from(first: Path, *more: Path) -> dict[str, dict]:
    """Per set, the rows of FIRST/<set>.npz with those of MORE/<set>.npz added where they exist (sets FIRST has)."""
    rows_per_set = {n: rows_of(first / f"{n}.npz") for n in SETS if (first / f"{n}.npz").is_file()}
    for n in rows_per_set:
        for extra in more:
            if (extra / f"{n}.npz").is_file():
                rows_per_set[n] |= rows_of(extra / f"{n}.npz")
    return rows_per_set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val2")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r11" / "val2")
    ap.add_argument("--rows", choices=("first", "candidates"), default="first")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if args.split.startswith("test"):
        raise SystemExit("round 11's selection reads validation splits only")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cand_out = args.out.parent / f"{args.out.name}_candidates"
    cand_out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            if args.rows == "first":
                run_set(name, args.split, args.out, SPECS)
            else:
                run_set(name, args.split, cand_out, CANDIDATES)
    rows_per_set = rows_from(args.out, cand_out)
    if all(label in rows for rows in rows_per_set.values() for label in SELECT) and len(rows_per_set) == len(SETS):
        print(f"## {args.split}: the selection (mean IDF1 % over the six sets; README, Selection)\n")
        print("| row | " + " | ".join(SETS) + " | mean |\n|---|" + "---|" * (len(SETS) + 1))
        for label in SELECT:
            values = [100 * float(dataset_metrics(rows_per_set[n][label])["idf1"]) for n in SETS]
            print(f"| {LABELS[label]} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.3f} |")
        print(f"\n## {args.split}: one yardstick against each row's own (IDF1 %)\n")
        print(decisive_table(rows_per_set, YARDSTICK, LABELS))
        print()
    print(f"## {args.split}: against the KF-VEM smoother (IDF1 %)\n")
    print(decisive_table(rows_per_set, PAIRS, LABELS))
    print(f"\n## {args.split}: the three-DVAE choice against the rows it combines (IDF1 %)\n")
    print(decisive_table(rows_per_set, AGAINST, LABELS))
    print(f"\n## {args.split}: every row\n")
    print(full_table(rows_per_set, ROWS, LABELS))


if __name__ == "__main__":
    main()
