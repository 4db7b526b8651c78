"""Round 11, validation only: the paper's fine-tuning (5.5) in the current regime.

    python docs/tracking_round11/finetune_val.py > docs/tracking_round11/finetune_val.md

The default's first DVAE (``mot_srnn_causal_dngap.pt``) with the shipped E-S (smoother, fixed variance x 1, tau 0.03,
init 5), with and without one Adam step per VEM iteration on the DVAE loss (4.5) of its own tracks
(``[Training] finetune = True``), at several learning rates, on the six 300-sample validation splits; the KF-VEM
smoother at its tuned settings beside it. Fine-tuning adapts one copy of the DVAE per batch; the whole split is one
batch of 300 here (the main script's batches are 128). VEM seed 0, fixed iteration counts (fine-tuning has no
convergence stop).
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "tracking_round10"), str(ROOT / "docs" / "tracking_round9"),
                str(ROOT / "docs" / "tracking_round8"), str(ROOT / "docs" / "tracking_round5")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from separate import SPECS as ROUND10  # noqa: E402

from model.dvae_choice import run_row  # noqa: E402
from model.dvae_dynamics import SRNNDynamics  # noqa: E402
from utils.checkpoint import load_dvae  # noqa: E402
from utils.mot_experiments import MethodRunner, dataset_metrics, load_split, \
    reference_vem_settings, score_samples  # noqa: E402

SETS = ("synthetic", "half_rate", "occlusion", "camera", "manoeuvre", "clutter")
DNGAP = ROOT / "model" / "pretrained" / "mot_srnn_causal_dngap.pt"
KF = next(s for s in ROUND10 if s.label == "KF-VEM-smoother")           # round 10's tuned KF-VEM smoother


def idf1(batch: dict, tracks: np.ndarray) -> float:
    return 100 * float(dataset_metrics(score_samples(batch["gt"].numpy(), tracks))["idf1"])


def mixdvae_tracks(batch: dict, settings, lr: float, seed: int = 0) -> np.ndarray:
    model = load_dvae(DNGAP, head="gaussian", where="--dvae")[0]
    dynamics = SRNNDynamics(model, "sample", finetune=lr > 0, lr=lr if lr > 0 else 1e-3, es_mode="smoother",
                            es_var="fixed", var_scale=1.0)
    torch.manual_seed(seed)
    return run_row(dynamics, batch["det"], batch["det_mask"], batch["init"], settings, batch["image_size"], 1) \
        .tracks.numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val")
    ap.add_argument("--lrs", default="0,3e-4,1e-3,3e-3,1e-2")
    args = ap.parse_args()
    if args.split.startswith("test"):
        raise SystemExit("round 11's selection reads validation splits only")
    torch.set_num_threads(1)
    lrs = [float(v) for v in args.lrs.split(",")]
    table = {}
    for name in SETS:
        base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                      clutter_logprob=-10.0 if name == "clutter" else None)
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / args.split)
        settings = replace(base, temperature=0.03, init_subseq_len=5)
        table[name] = {"KF-VEM smoother": idf1(batch, MethodRunner(base, 300, 0).run(KF, batch))}
        for lr in lrs:
            table[name][f"lr {lr:g}" if lr > 0 else "no fine-tuning"] = idf1(batch, mixdvae_tracks(batch, settings, lr))
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in table[name].items()), file=sys.stderr, flush=True)
    rows = list(table[SETS[0]])
    print(f"## Fine-tuning (5.5) on `{args.split}` (IDF1 %, VEM seed 0)\n")
    print("| row | " + " | ".join(SETS) + " | mean |")
    print("|---|" + "---|" * (len(SETS) + 1))
    for row in rows:
        values = [table[s][row] for s in SETS]
        print(f"| {row} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
