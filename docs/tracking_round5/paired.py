"""Paired test-split differences of IDF1 between two rows of the round-5 table (percentile bootstrap over samples).

    python docs/tracking_round5/paired.py A_LABEL B_LABEL [--sets ...] [--upsample 2]

Each row runs with its tuned settings (docs/tracking_round5/tuning/best_*.json) and three VEM seeds (MixDVAE
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

from utils.mot_experiments import MethodRunner, MethodSpec, dataset_metrics, load_split, mean_over_runs, \
    reference_vem_settings, score_samples  # noqa: E402

CKPT = {"dngap": "mot_srnn_causal_dngap.pt", "causal": "mot_srnn_causal.pt", "large-dn": "mot_srnn_large_dn.pt",
        "large": "mot_srnn_large.pt", "noncausal": "mot_srnn_noncausal.pt", "reference": "mot_srnn.pt"}


def spec(label: str) -> MethodSpec:
    for path in sorted((ROOT / "docs" / "tracking_round5" / "tuning").glob("best_*.json")):
        entry = json.loads(path.read_text())["methods"].get(label)
        if entry:
            values = {k: v for k, v in entry.items() if not k.startswith("val_")}
            if entry["kind"] == "mixdvae":
                name = label.removeprefix("MixDVAE-")
                stem = max((k for k in CKPT if name == k or name.startswith(k + "-")), key=len)
                values["checkpoint"] = str(ROOT / "model" / "pretrained" / CKPT[stem])
            return MethodSpec(label, **values)
    raise SystemExit(f"{label}: not in docs/tracking_round5/tuning/best_*.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--sets", default="synthetic,half_rate,occlusion,camera,manoeuvre,clutter")
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--num-boot", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)                   # as tools/mot_results_table.py: results depend on the thread count
    specs = [spec(args.a), spec(args.b)]
    print(f"| set | IDF1 {args.a} | IDF1 {args.b} | Δ [95 % CI] |\n|---|---|---|---|")
    for name in args.sets.split(","):
        base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                      clutter_logprob=-10.0 if name == "clutter" else None)
        runners = [MethodRunner(base, 300, seed, args.upsample) for seed in (0, 1, 2)]
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / "test")
        gt = batch["gt"].numpy()
        per = [mean_over_runs([score_samples(gt, r.run(s, batch)) for r in (runners if s.kind == "mixdvae"
                                                                             else runners[:1])]) for s in specs]
        index = np.random.default_rng(0).integers(0, len(gt), size=(args.num_boot, len(gt)))
        a, b = (dataset_metrics(p)["idf1"] for p in per)
        diff = dataset_metrics(per[0], index)["idf1"] - dataset_metrics(per[1], index)["idf1"]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        print(f"| {name} | {100 * a:.2f} | {100 * b:.2f} | {100 * (a - b):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] |",
              flush=True)


if __name__ == "__main__":
    main()
