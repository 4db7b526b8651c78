"""Paired test-split differences of IDF1 between two rows of the round-5 table (percentile bootstrap over samples).

    python docs/tracking_round5/paired.py A_LABEL B_LABEL [--sets ...] [--upsample 2] [--tuning-dir DIR ...]

Each row runs with its tuned settings (the best_*.json of the --tuning-dir folders, default
docs/tracking_round5/tuning; round 6 adds docs/tracking_round6/tuning) and three VEM seeds (MixDVAE
counts averaged per sample, as in tools/mot_results_table.py); the bootstrap resamples the same samples for
both rows, so the interval is that of IDF1(A) - IDF1(B).
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from utils.mot_experiments import MethodRunner, MethodSpec, dataset_metrics, load_split, reference_vem_settings, \
    seeded_scores  # noqa: E402


def spec(label: str, dirs: list[Path]) -> MethodSpec:
    for path in sorted(p for d in dirs for p in d.glob("best_*.json")):
        entry = json.loads(path.read_text())["methods"].get(label)
        if entry:
            values = {k: v for k, v in entry.items() if not k.startswith("val_")}
            if values.get("checkpoint"):                 # tuned from the repository root
                values["checkpoint"] = str(ROOT / values["checkpoint"])
            return MethodSpec(label, **values)
    raise SystemExit(f"{label}: not in the best_*.json of {', '.join(map(str, dirs))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--sets", default="synthetic,half_rate,occlusion,camera,manoeuvre,clutter")
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--num-boot", type=int, default=2000)
    ap.add_argument("--tuning-dir", type=Path, action="append", default=[],
                    help="folder of best_*.json (repeatable; default docs/tracking_round5/tuning)")
    args = ap.parse_args()
    torch.set_num_threads(1)                   # as tools/mot_results_table.py: results depend on the thread count
    dirs = args.tuning_dir or [ROOT / "docs" / "tracking_round5" / "tuning"]
    specs = [spec(args.a, dirs), spec(args.b, dirs)]
    print(f"| set | IDF1 {args.a} | IDF1 {args.b} | Δ [95 % CI] |\n|---|---|---|---|")
    for name in args.sets.split(","):
        base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                      clutter_logprob=-10.0 if name == "clutter" else None)
        runners = [MethodRunner(base, 300, seed, args.upsample) for seed in (0, 1, 2)]
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / "test")
        per = [seeded_scores(runners, s, batch) for s in specs]
        num = len(per[0]["hota"])
        index = np.random.default_rng(0).integers(0, num, size=(args.num_boot, num))
        a, b = (dataset_metrics(p)["idf1"] for p in per)
        diff = dataset_metrics(per[0], index)["idf1"] - dataset_metrics(per[1], index)["idf1"]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        print(f"| {name} | {100 * a:.2f} | {100 * b:.2f} | {100 * (a - b):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] |",
              flush=True)


if __name__ == "__main__":
    main()
