"""Round 9b: the rows picked on val2 (val2_selection.md) on the confirmation split test4, once.

    python docs/tracking_round9/confirm_b.py --sets synthetic,half_rate,occlusion    # runs rows, writes per-sample
    python docs/tracking_round9/confirm_b.py --table-only                            # tables from what was written

Rows and rule: docs/tracking_round9/README.md, "Round 9b". Per-sample scores go to OUT/<set>.npz (MixDVAE rows:
counts averaged over VEM seeds 0, 1, 2).
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round9"), str(ROOT / "docs" / "tracking_round8"),
                str(ROOT / "docs" / "tracking_round5")]

import torch  # noqa: E402
from confirm import CHOICE, FILTER, NONCAUSAL, RATE, SETS, SMOOTHER, SORT, decisive_table, full_table, row_spec, \
    rows_of, run_set  # noqa: E402

from utils.mot_experiments import MethodSpec  # noqa: E402

P = ROOT / "model" / "pretrained"
D, R, V = (str(P / f"mot_srnn_causal_{n}.pt") for n in ("dngap", "dngap_rate", "vel"))
VEL_CHOICE, VEL_CAUSAL = "MixDVAE-vel-choice", "MixDVAE-vel-causal"
SPECS = {
    VEL_CHOICE: MethodSpec(VEL_CHOICE, "mixdvae", f"{D}+{V}", 0.03, 5, "sample", 1.0, "smoother", "fixed",
                           option_var_scales=(1.0, 0.3)),                                          # S3
    VEL_CAUSAL: MethodSpec(VEL_CAUSAL, "mixdvae", f"{R}+{V}", 0.03, 5, "sample", 0.5, "propagate", "adaptive",
                           option_var_scales=(0.5, 0.3)),                                          # C2
}
ROWS = (VEL_CHOICE, VEL_CAUSAL, CHOICE, RATE, NONCAUSAL, FILTER, SMOOTHER, SORT)
PAIRS = ((VEL_CAUSAL, FILTER), (VEL_CHOICE, SMOOTHER))                 # the comparisons that decide
LABELS = {VEL_CHOICE: "velocity choice (S3)", VEL_CAUSAL: "velocity causal (C2)", CHOICE: "default (S1)",
          RATE: "causal (C1)", NONCAUSAL: "non-causal", FILTER: "KF-VEM filter", SMOOTHER: "KF-VEM smoother",
          SORT: "SORT-style"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test4")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r9b" / "per_sample")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        specs = [SPECS.get(label) or row_spec(label) for label in ROWS]
        for name in args.sets.split(","):
            run_set(name, args.split, args.out, specs)
    rows_per_set = {n: rows_of(args.out / f"{n}.npz") for n in SETS if (args.out / f"{n}.npz").is_file()}
    print(f"## {args.split}: the comparisons that decide (IDF1 %)\n")
    print(decisive_table(rows_per_set, PAIRS, LABELS))
    print(f"\n## {args.split}: the shipped rows of round 9a against the same Kalman rows (IDF1 %, for the record)\n")
    print(decisive_table(rows_per_set, ((RATE, FILTER), (CHOICE, SMOOTHER)), LABELS))
    print(f"\n## {args.split}: every row\n")
    print(full_table(rows_per_set, ROWS, LABELS))


if __name__ == "__main__":
    main()
