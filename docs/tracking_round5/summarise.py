"""Round-5 tracking summary tables for README, from the results.json files of tools/mot_results_table.py.

    python docs/tracking_round5/summarise.py output/results_v5/main/results.json output/results_v5/clutter/results.json

Prints (1) the compact table (key rows, 95 % CIs) and (2) the acceptance targets, unrounded. The rows and their
roles were fixed by validation before the test splits were run (README, round 5): the causal row is the best causal
reference-size row by mean validation IDF1, the default row is the best MixDVAE row by the same mean.
"""

import json
import sys
from pathlib import Path

CAUSAL, DEFAULT, NONCAUSAL = "MixDVAE-dngap-propagate", "MixDVAE-dngap-smoother", "MixDVAE-noncausal-smoother"
ROWS = {"MixDVAE-reference": "MixDVAE reference (faithful; paper E-S)",
        "MixDVAE-causal": "MixDVAE causal increments DVAE, paper E-S (round 4's causal row)",
        "MixDVAE-dngap": "MixDVAE denoising DVAE (reference size), paper E-S",
        CAUSAL: "**MixDVAE causal**: denoising DVAE, propagate E-S",
        DEFAULT: "**MixDVAE default**: denoising DVAE, smoother E-S",
        "MixDVAE-dngap-iterated": "MixDVAE denoising DVAE, iterated E-S",
        "MixDVAE-large-dn-smoother": "MixDVAE larger denoising DVAE, smoother E-S",
        "MixDVAE-large-dn-iterated": "MixDVAE larger denoising DVAE, iterated E-S",
        NONCAUSAL: "MixDVAE non-causal, smoother E-S",
        "KF-VEM-filter": "KF-VEM filter", "KF-VEM-smoother": "KF-VEM smoother", "SORT": "SORT-style"}


def cell(metric, pct=True):
    v, lo, hi = metric
    return f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" if pct else f"{v:.0f}"


def main(paths, rows_shown=None, causal=CAUSAL, default=DEFAULT):
    """Print both tables; ``rows_shown`` (label -> text), ``causal`` and ``default`` name the rows (round 6 passes
    its own)."""
    rows_shown = rows_shown or ROWS
    sets = {}
    for p in paths:                                  # files may split the rows or the sets: merge both
        for name, res in json.loads(Path(p).read_text())["sets"].items():
            sets.setdefault(name, {**res, "methods": {}})["methods"].update(res["methods"])
    print("| set | method | MOTA | IDF1 | IDs | HOTA |\n|---|---|---|---|---|---|")
    for name, res in sets.items():
        rows = res["methods"]
        best = max(v["metrics"]["idf1"][0] for k, v in rows.items())
        for i, (label, text) in enumerate(rows_shown.items()):
            m = rows[label]["metrics"]
            idf1 = cell(m["idf1"])
            if abs(m["idf1"][0] - best) < 5e-4:
                idf1 = "**" + idf1.split(" ")[0] + "** " + " ".join(idf1.split(" ")[1:])
            print(f"| {name if i == 0 else ''} | {text} | {cell(m['mota'])} | {idf1} | {cell(m['ids'], False)} | "
                  f"{100 * m['hota'][0]:.1f} |")
    print("\n| set | MixDVAE causal | KF-VEM filter | causal ≥ filter | MixDVAE default | best MixDVAE row (post hoc) "
          "| KF-VEM smoother | default ≥ smoother | best ≥ smoother |\n|---|---|---|---|---|---|---|---|---|")
    for name, res in sets.items():
        rows = res["methods"]
        f = {k: 100 * v["metrics"]["idf1"][0] for k, v in rows.items()}
        mix = {k: v for k, v in f.items() if k.startswith("MixDVAE")}
        top = max(mix, key=mix.get)
        yes = lambda ok: "yes" if ok else "**no**"     # noqa: E731
        print(f"| {name} | {f[causal]:.2f} | {f['KF-VEM-filter']:.2f} | {yes(f[causal] >= f['KF-VEM-filter'])} | "
              f"{f[default]:.2f} | {mix[top]:.2f} ({top.removeprefix('MixDVAE-')}) | {f['KF-VEM-smoother']:.2f} | "
              f"{yes(f[default] >= f['KF-VEM-smoother'])} | {yes(mix[top] >= f['KF-VEM-smoother'])} |")


if __name__ == "__main__":
    main(sys.argv[1:])
