"""Round 10: the frozen rows on the fresh split test5, issue 8's decisive differences and the factor separation.

    python docs/tracking_round10/separate.py --sets synthetic,half_rate,occlusion     # runs rows, writes per-sample
    python docs/tracking_round10/separate.py --table-only                             # tables from what was written

Rows and rule: docs/tracking_round10/README.md (committed before test5 was built). Per-sample scores go to
OUT/<set>.npz (MixDVAE rows: counts averaged over VEM seeds 0, 1, 2); the paired bootstrap (2 000 resamples, seed 0)
resamples the same samples for both rows of a pair.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round9"), str(ROOT / "docs" / "tracking_round8"),
                str(ROOT / "docs" / "tracking_round5")]

import torch  # noqa: E402
from confirm import SETS, decisive_table, full_table, rows_of, run_set  # noqa: E402

from utils.mot_experiments import MethodSpec  # noqa: E402

P = ROOT / "model" / "pretrained"
DNGAP, RATE, VEL, NULL = (str(P / f"{n}.pt") for n in ("mot_srnn_causal_dngap", "mot_srnn_causal_dngap_rate",
                                                       "mot_srnn_causal_vel", "mot_cv_null"))


def mixdvae(label, checkpoint, es, scales, es_var="fixed", tau=0.03) -> MethodSpec:
    """A MixDVAE row at init 5, z sampled; ``scales`` one E-S variance scale per DVAE of the checkpoint (A+B)."""
    return MethodSpec(label, "mixdvae", checkpoint, tau, 5, "sample", scales[0], es, es_var,
                      option_var_scales=scales if len(scales) > 1 else None)


SPECS = [
    mixdvae("S3c", f"{DNGAP}+{VEL}", "smoother", (1.0, 0.6)),
    mixdvae("C2", f"{RATE}+{VEL}", "propagate", (0.5, 0.3), "adaptive"),
    mixdvae("S1", f"{DNGAP}+{RATE}", "smoother", (1.0, 1.0)),
    mixdvae("S3", f"{DNGAP}+{VEL}", "smoother", (1.0, 0.3)),
    mixdvae("C1", RATE, "propagate", (0.5,), "adaptive"),
    mixdvae("single", DNGAP, "smoother", (1.0,)),
    mixdvae("null", NULL, "smoother", (0.3,)),
    mixdvae("null-causal", NULL, "propagate", (0.3,), tau=0.1),
    MethodSpec("KF-VEM-filter", "kf_filter", None, 0.1, 5, accel_std_ratio=0.01),
    MethodSpec("KF-VEM-smoother", "kf_smoother", None, 0.1, 5, accel_std_ratio=0.03),
    MethodSpec("SORT", "sort"),
]
ROWS = tuple(s.label for s in SPECS)
LABELS = {"S3c": "vel-choice × 0.6 (S3c)", "C2": "causal (C2)", "S1": "default (S1)", "S3": "vel-choice × 0.3 (S3)",
          "C1": "causal-r8 (C1)", "single": "single", "null": "CV null, smoother", "null-causal": "CV null, causal",
          "KF-VEM-filter": "KF-VEM filter", "KF-VEM-smoother": "KF-VEM smoother", "SORT": "SORT-style"}
DECIDE = (("C2", "KF-VEM-filter"), ("S3c", "KF-VEM-smoother"))
E_S = (("null-causal", "KF-VEM-filter"), ("null", "KF-VEM-smoother"))
LEARNED = (("single", "null"), ("S1", "null"), ("S3c", "null"), ("C1", "null-causal"), ("C2", "null-causal"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test5")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r10" / "per_sample")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, args.out, SPECS)
    rows_per_set = {n: rows_of(args.out / f"{n}.npz") for n in SETS if (args.out / f"{n}.npz").is_file()}
    print(f"## {args.split}: the comparisons that decide (IDF1 %)\n")
    print(decisive_table(rows_per_set, DECIDE, LABELS))
    print(f"\n## {args.split}: the E-S and its noise model — a constant-velocity prediction in MixDVAE's E-S against "
          "the KF-VEMs (IDF1 %)\n")
    print(decisive_table(rows_per_set, E_S, LABELS))
    for pairs in (LEARNED[:3], LEARNED[3:]):
        print(f"\n## {args.split}: what the learned networks add over the null (IDF1 %)\n")
        print(decisive_table(rows_per_set, pairs, LABELS))
    print(f"\n## {args.split}: every row\n")
    print(full_table(rows_per_set, ROWS, LABELS))


if __name__ == "__main__":
    main()
