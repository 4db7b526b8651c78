"""Round 9: the frozen rows on the confirmation split test3, the decisive paired differences, the full table.

    python docs/tracking_round9/confirm.py --sets synthetic,half_rate,occlusion     # runs rows, writes per-sample
    python docs/tracking_round9/confirm.py --table-only                             # tables from what was written

Rows and rule: docs/tracking_round9/README.md (committed before the split was built). Per-sample scores go to
OUT/<set>.npz (MixDVAE rows: counts averaged over VEM seeds 0, 1, 2); the paired bootstrap (2 000 resamples,
seed 0) resamples the same samples for both rows of a pair. ``--pooled`` adds the three test splits pooled,
from the round-8 per-sample files of test and test2.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round8"), str(ROOT / "docs" / "tracking_round5")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from choose_dvae import CHOICE as CHOICE_SPEC  # noqa: E402
from paired import spec  # noqa: E402
from paired_test2 import FILTER, RATE, SETS, SMOOTHER, TUNING, fmt, paired, rows_of  # noqa: E402

from tools.mot_results_table import fmt as fmt_ci  # noqa: E402
from utils.mot_experiments import MethodRunner, MethodSpec, bootstrap_ci, load_split, reference_vem_settings, \
    seeded_scores  # noqa: E402

CHOICE, NONCAUSAL, LARGE, SORT = ("MixDVAE-choice", "MixDVAE-noncausal-smoother-fixed",
                                  "MixDVAE-large-dn-smoother-fixed", "SORT")
ROWS = (CHOICE, RATE, NONCAUSAL, LARGE, FILTER, SMOOTHER, SORT)
PAIRS = ((RATE, FILTER), (CHOICE, SMOOTHER))          # the comparisons that decide
LABELS = {CHOICE: "default (choice)", RATE: "causal", NONCAUSAL: "non-causal", LARGE: "large-dn",
          FILTER: "KF-VEM filter", SMOOTHER: "KF-VEM smoother", SORT: "SORT-style"}
EARLIER = {"test": ROOT / "output" / "r8" / "per_sample_test", "test2": ROOT / "output" / "r8" / "per_sample"}


def row_spec(label: str) -> MethodSpec:
    if label == CHOICE:
        return replace(CHOICE_SPEC, checkpoint="+".join(str(ROOT / p) for p in CHOICE_SPEC.checkpoint.split("+")))
    if label == SORT:
        return MethodSpec(SORT, "sort")
    return spec(label, TUNING)


def run_set(name: str, split: str, out: Path, specs: list[MethodSpec] | None = None) -> None:
    """Every row (default: the frozen rows of round 9) on OUT/<set>.npz, three VEM seeds."""
    base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                  clutter_logprob=-10.0 if name == "clutter" else None)
    runners = [MethodRunner(base, 300, seed) for seed in (0, 1, 2)]
    batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / split)
    arrays = {}
    for row in specs or [row_spec(label) for label in ROWS]:
        label = row.label
        arrays |= {f"{label}|{k}": v for k, v in seeded_scores(runners, row, batch).items()}
        print(f"{name}: {label} done", flush=True)
    np.savez_compressed(out / f"{name}.npz", **arrays)


def idf1(rows: dict) -> dict[str, float]:
    return {k: 100 * bootstrap_ci(v, num_boot=1)["idf1"][0] for k, v in rows.items()}


def decisive_table(rows_per_set: dict[str, dict], pairs=PAIRS, labels=None) -> str:
    """IDF1 of the two rows of each pair and their paired difference, per set; the last line counts the sets where
    every difference is >= 0."""
    labels = labels or LABELS
    head = " | ".join(f"{labels[a]} | {labels[b]} | Δ {labels[a]} − {labels[b]}" for a, b in pairs)
    lines = [f"| set | {head} |", "|---|" + "---|---|---|" * len(pairs)]
    held = []
    for name, rows in rows_per_set.items():
        score = idf1({k: rows[k] for pair in pairs for k in pair})
        d = [paired(rows[a], rows[b]) for a, b in pairs]
        held.append(all(x[0] >= 0 for x in d))
        cells = " | ".join(f"{score[a]:.2f} | {score[b]:.2f} | {fmt(x)}" for (a, b), x in zip(pairs, d))
        lines.append(f"| {name} | {cells} |")
    lines.append("")
    lines.append(f"{'both' if len(pairs) == 2 else 'every'} difference{'s' if len(pairs) == 2 else ''} >= 0 on "
                 f"{sum(held)} of {len(held)} sets")
    return "\n".join(lines)


def full_table(rows_per_set: dict[str, dict], order=ROWS, labels=None) -> str:
    """MOTA / IDF1 / IDs / HOTA with 95 % bootstrap intervals (1 000 resamples), one block per set."""
    labels = labels or LABELS
    out = []
    for name, rows in rows_per_set.items():
        out += [f"### {name}", "", "| row | MOTA | IDF1 | IDs | HOTA |", "|---|---|---|---|---|"]
        for label in order:
            if label not in rows:
                continue
            ci = bootstrap_ci(rows[label])
            cells = [fmt_ci(ci[k], k != "ids") for k in ("mota", "idf1", "ids", "hota")]
            out.append(f"| {labels[label]} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def pooled(out: Path) -> dict[str, dict]:
    """The decisive rows of test, test2 and test3 concatenated per set (the sets whose three files hold them)."""
    needed = {k for pair in PAIRS for k in pair}
    result = {}
    for name in SETS:
        paths = [EARLIER["test"] / f"{name}.npz", EARLIER["test2"] / f"{name}.npz", out / f"{name}.npz"]
        if not all(p.is_file() for p in paths):
            continue
        parts = [rows_of(p) for p in paths]
        if not all(needed <= set(p) for p in parts):
            continue
        result[name] = {label: {k: np.concatenate([p[label][k] for p in parts]) for k in parts[0][label]}
                        for label in needed}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test3")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "r9" / "per_sample")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--pooled", action="store_true", help="also the three test splits pooled")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for name in args.sets.split(","):
            run_set(name, args.split, args.out)
    rows_per_set = {n: rows_of(args.out / f"{n}.npz") for n in SETS if (args.out / f"{n}.npz").is_file()}
    print(f"## {args.split}: the comparisons that decide (IDF1 %)\n")
    print(decisive_table(rows_per_set))
    print(f"\n## {args.split}: every row\n")
    print(full_table(rows_per_set))
    if args.pooled:
        print("## test + test2 + test3 pooled: the comparisons that decide (IDF1 %)\n")
        print(decisive_table(pooled(args.out)))


if __name__ == "__main__":
    main()
