"""Round 11, after test6: MixDVAE-choice3 (T3f) against the KF-VEM smoother on the earlier 2 000-sample test splits.

    python docs/tracking_round11/after_the_fact.py --split test5 --sets synthetic,half_rate,occlusion
    python docs/tracking_round11/after_the_fact.py --split test5 --table-only

For the record only: these splits were used before (test4 in round 9, test5 in round 10, and test5's results
prompted the idea behind T3f), so nothing here decides or chooses anything. Per-sample scores go to
OUT/<split>/<set>.npz (T3f: counts averaged over VEM seeds 0, 1, 2); paired bootstrap as in decide.py.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round11"), str(ROOT / "docs" / "tracking_round10"),
                str(ROOT / "docs" / "tracking_round9"), str(ROOT / "docs" / "tracking_round8"),
                str(ROOT / "docs" / "tracking_round5")]

import torch  # noqa: E402
from confirm import SETS, decisive_table, run_set  # noqa: E402
from decide import LABELS  # noqa: E402
from val2 import BY_LABEL, rows_from  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", required=True, choices=("test4", "test5"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r11" / "after_the_fact")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out / args.split
    out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, out, [BY_LABEL["T3f"], BY_LABEL["KF-VEM-smoother"]])
    rows_per_set = rows_from(out)
    print(f"## {args.split}, after the fact: MixDVAE-choice3 against the KF-VEM smoother (IDF1 %)\n")
    print(decisive_table(rows_per_set, (("T3f", "KF-VEM-smoother"),), LABELS))


if __name__ == "__main__":
    main()
