"""Round-5 validation table for README: each row's selected grid point (tools/tune_mot.py best.json) with its
mean validation IDF1 over the six splits and the IDF1 of each split (from the grid.csv ``splits`` column).

    python docs/tracking_round5/validation.py output/tuning_v5/*/grid.csv   (round 6: docs/tracking_round6/tuning/*.csv)
"""

import csv
import io
import sys
from pathlib import Path


def main(paths):
    rows = [r for p in paths for r in csv.DictReader(io.StringIO(Path(p).read_text()))]
    best = {}
    for r in rows:
        key = tuple(float(r[k]) for k in ("idf1", "mota", "hota"))
        if r["method"] not in best or key > best[r["method"]][0]:
            best[r["method"]] = (key, r)
    names = [s.split(":")[0].split("/")[0] for s in next(iter(best.values()))[1]["splits"].split(";")]
    print("| row | τ | init | var / accel | mean IDF1 | " + " | ".join(names) + " | HOTA |")
    print("|---|---|---|---|---|" + "---|" * len(names) + "---|")
    for label, (_, r) in sorted(best.items(), key=lambda kv: -kv[1][0][0]):
        fixed = " δ² (fixed)" if r.get("dvae_es_var") == "fixed" else ""
        third = (f"× {float(r['dvae_var_scale']):g}{fixed}" if r["kind"] == "mixdvae"
                 else f"accel {float(r['accel_std_ratio']):g}")
        per = [s.split(":")[1] for s in r["splits"].split(";")]
        cells = " | ".join(f"{float(v):.2f}" for v in per)
        print(f"| {label} | {float(r['assignment_temperature']):g} | {r['init_subseq_len']} | {third} | "
              f"{float(r['idf1']):.2f} | {cells} | {float(r['hota']):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
