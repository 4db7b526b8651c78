"""Round 9b, after test4: the two rows picked on val2 also on test3, for the record (no decision depends on it).

    python docs/tracking_round9/after_the_fact.py --sets synthetic,half_rate,occlusion   # runs S3 and C2 on test3
    python docs/tracking_round9/after_the_fact.py --table-only

The rows are added to a copy of test3's per-sample files (output/r9/per_sample, the KF-VEM rows of the round-9a run,
same samples), then the decisive pairs are shown on test3 and on test3 + test4 pooled (4 000 samples a set).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "docs" / "tracking_round9")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from confirm import SETS, rows_of, run_set  # noqa: E402
from confirm_b import LABELS, PAIRS, SPECS, decisive_table  # noqa: E402

TEST3, TEST4 = ROOT / "output" / "r9" / "per_sample", ROOT / "output" / "r9b" / "per_sample"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r9b" / "per_sample_test3")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            run_set(name, "test3", args.out, list(SPECS.values()))
    needed = {k for pair in PAIRS for k in pair}
    test3, pooled = {}, {}
    for name in SETS:
        if not (args.out / f"{name}.npz").is_file():
            continue
        rows = {**rows_of(TEST3 / f"{name}.npz"), **rows_of(args.out / f"{name}.npz")}
        test3[name] = {k: rows[k] for k in needed}
        later = rows_of(TEST4 / f"{name}.npz")
        pooled[name] = {k: {m: np.concatenate([rows[k][m], later[k][m]]) for m in rows[k]} for k in needed}
    print("## test3 (after the fact): the pairs of round 9b (IDF1 %)\n")
    print(decisive_table(test3, PAIRS, LABELS))
    print("\n## test3 + test4 pooled (4 000 samples a set)\n")
    print(decisive_table(pooled, PAIRS, LABELS))


if __name__ == "__main__":
    main()
