"""Round 8: MOTA / IDF1 / IDs / HOTA with 95 % bootstrap intervals (1 000 resamples) of one row (default: the new
causal row), from the per-sample files that paired_test2.py and choose_dvae.py wrote (output/r8/per_sample for test2,
output/r8/per_sample_test for test).

    python docs/tracking_round8/rate_row_metrics.py [--row MixDVAE-choice]
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round8"), str(ROOT / "docs" / "tracking_round5")]

from paired_test2 import RATE, SETS, rows_of  # noqa: E402

from tools.mot_results_table import fmt as fmt_ci  # noqa: E402
from utils.mot_experiments import bootstrap_ci  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", default=RATE)
    row = ap.parse_args().row
    for split, out in (("test2", "output/r8/per_sample"), ("test", "output/r8/per_sample_test")):
        print(f"{split}: | set | MOTA | IDF1 | IDs | HOTA |")
        for name in SETS:
            path = ROOT / out / f"{name}.npz"
            if not path.is_file():
                continue
            rows = rows_of(path)
            if row not in rows:
                continue
            ci = bootstrap_ci(rows[row])
            cells = [fmt_ci(ci[k], k != "ids") for k in ("mota", "idf1", "ids", "hota")]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
