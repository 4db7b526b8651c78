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
from confirm import SETS, decisive_table, full_table, rows_of, run_set  # noqa: E402
from separate import NULL, SPECS as ROUND10  # noqa: E402
from val2 import CANDIDATES  # noqa: E402

from utils.mot_experiments import MethodSpec  # noqa: E402

SELECTED = "T3f"                   # the val2 selection's row (README, Selection), set before test6 is built
NONCAUSAL = str(ROOT / "model" / "pretrained" / "mot_srnn_noncausal.pt")
BY_LABEL = {s.label: s for s in ROUND10 + CANDIDATES}


NONCAUSAL_ROW = MethodSpec("noncausal", "mixdvae", NONCAUSAL, 0.03, 5, "sample", 1.0, "smoother", "fixed")


def specs(selected: str) -> list[MethodSpec]:
    noncausal = NONCAUSAL_ROW
    null = MethodSpec("null", "mixdvae", NULL, 0.03, 5, "sample", 0.3, "smoother", "fixed")
    del noncausal                  # dropped before test6 was built, for time (README, The decisive run)
    return [BY_LABEL[selected], *(BY_LABEL[k] for k in ("S1", "C2") if k != selected), null,
            BY_LABEL["KF-VEM-filter"], BY_LABEL["KF-VEM-smoother"], BY_LABEL["SORT"]]


LABELS = {"T3f": "three-DVAE choice, one yardstick (T3f)", "V2f": "vel-choice × 0.6, one yardstick (V2f)",
          "S1": "default (S1)", "S3c": "vel-choice × 0.6 (S3c)", "C2": "causal (C2)", "noncausal": "non-causal",
          "null": "CV null, smoother", "KF-VEM-filter": "KF-VEM filter", "KF-VEM-smoother": "KF-VEM smoother",
          "SORT": "SORT-style"}


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
    if SELECTED is None:
        raise SystemExit("SELECTED is not set: run the val2 selection first (README, Selection)")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = specs(SELECTED)
    record = args.out.parent / f"{args.out.name}_record"
    if args.record:
        record.mkdir(parents=True, exist_ok=True)
        for name in args.sets.split(","):
            run_set(name, args.split, record, [NONCAUSAL_ROW])
    elif not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, args.out, rows)
    rows_per_set = {n: rows_of(args.out / f"{n}.npz") for n in SETS if (args.out / f"{n}.npz").is_file()}
    if rows_per_set and all((record / f"{n}.npz").is_file() for n in rows_per_set):
        for n in rows_per_set:
            rows_per_set[n] |= rows_of(record / f"{n}.npz")
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
