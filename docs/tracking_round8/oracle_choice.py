"""Round 8: the ceiling of choosing, per sequence, between the default row's DVAE and the mixed-rate one (same E-S
and settings), if an oracle picked the run with more identity-true positives. Validation splits, seed 0.

    python docs/tracking_round8/oracle_choice.py
"""
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from utils.mot_experiments import MethodRunner, MethodSpec, dataset_metrics, load_split, reference_vem_settings, \
    score_samples  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini")
    a = MethodSpec("a", "mixdvae", "model/pretrained/mot_srnn_causal_dngap.pt", 0.03, 5, "sample", 1.0, "smoother",
                   "fixed")
    b = replace(a, checkpoint="model/pretrained/mot_srnn_causal_dngap_rate.pt")
    out = []
    print("| split | default DVAE | mixed-rate DVAE | oracle choice | sequences given to the mixed-rate DVAE |")
    print("|---|---|---|---|---|")
    for split in ("synthetic", "half_rate", "occlusion", "camera", "manoeuvre", "clutter"):
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / split / "val")
        runs = []
        for spec in (a, b):
            spec = replace(spec, clutter_logprob=-10.0) if split == "clutter" else spec
            runs.append(score_samples(batch["gt"].numpy(), MethodRunner(base).run(spec, batch)))
        pick = runs[1]["idtp"] > runs[0]["idtp"]
        runs.append({k: np.where(pick, runs[1][k], runs[0][k]) for k in runs[0]})
        row = [100 * float(dataset_metrics(r)["idf1"]) for r in runs]
        out.append(row)
        print(f"| {split} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {int(pick.sum())} |", flush=True)
    print("| mean | " + " | ".join(f"{v:.3f}" for v in np.mean(out, 0)) + " | |")


if __name__ == "__main__":
    main()
