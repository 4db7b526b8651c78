"""Round 11: the frozen rows on the fresh split test6, issue 8's decisive differences, every row.

    python docs/tracking_round11/decide.py --sets synthetic,half_rate,occlusion     # runs rows, writes per-sample
    python docs/tracking_round11/decide.py --table-only                             # tables from what was written
    python docs/tracking_round11/decide.py --record                                 # + the non-causal row (after)

Rows and rule: docs/tracking_round11/README.md (committed before test6 was built; SELECTED is the row the val2
selection named). Per-sample scores go to OUT/<set>.npz (MixDVAE rows: counts averaged over VEM seeds 0, 1, 2); the
paired bootstrap (2 000 resamples, seed 0) resamples the same samples for both rows of a pair.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round11"), str(ROOT / "docs" / "tracking_round10"),
                str(ROOT / "docs" / "tracking_round9"), str(ROOT / "docs" / "tracking_round8"),
                str(ROOT / "docs" / "tracking_round5")]

import torch  # noqa: E402
from confirm import SETS, decisive_table, full_table, run_set  # noqa: E402
from val2 import BY_LABEL, LABELS as VAL2_LABELS, rows_from  # noqa: E402

from utils.mot_experiments import MethodSpec  # noqa: E402

SELECTED = "T3f"                   # the val2 selection's row (README, Selection), set before test6 was built
NONCAUSAL = str(ROOT / "model" / "pretrained" / "mot_srnn_noncausal.pt")
# the frozen rows (README, The decisive run); the non-causal row was dropped from them before test6 was built, for
# time, and run afterwards with --record for the README's table of record
ROWS = (SELECTED, "S1", "C2", "null", "KF-VEM-filter", "KF-VEM-smoother", "SORT")
NONCAUSAL_ROW = MethodSpec("noncausal", "mixdvae", NONCAUSAL, 0.03, 5, "sample", 1.0, "smoother", "fixed")
LABELS = {**VAL2_LABELS, "noncausal": "non-causal"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test6")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r11" / "per_sample")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--record", action="store_true",
                    help="run the non-causal row (shipped config) into OUT_record/ after the decisive run, for the "
                         "README's table of record; it decides nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [BY_LABEL[label] for label in ROWS]
    record = args.out.parent / f"{args.out.name}_record"
    if args.record:
        record.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            run_set(name, args.split, record, [NONCAUSAL_ROW])
    elif not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, args.out, rows)
    rows_per_set = rows_from(args.out, record)
    if rows_per_set and all("noncausal" in r for r in rows_per_set.values()):
        rows = rows[:-3] + [NONCAUSAL_ROW] + rows[-3:]          # before the KF-VEMs and SORT
    print(f"## {args.split}: the comparisons that decide (IDF1 %)\n")
    print(decisive_table(rows_per_set, ((SELECTED, "KF-VEM-smoother"), ("C2", "KF-VEM-filter")), LABELS))
    print(f"\n## {args.split}: for the record (IDF1 %)\n")
    print(decisive_table(rows_per_set, ((SELECTED, "S1"), ("S1", "KF-VEM-smoother"), ("null", "KF-VEM-smoother")),
                         LABELS))
    print(f"\n## {args.split}: every row\n")
    print(full_table(rows_per_set, tuple(s.label for s in rows), LABELS))


if __name__ == "__main__":
    main()
