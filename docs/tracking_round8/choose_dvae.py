"""Round 8: the row that chooses its DVAE per sequence (model/dvae_choice.py), on a split, three VEM seeds.

The default row's settings (smoother E-S, fixed variance x 1, tau 0.03, init 5) with the default DVAE and its
mixed-rate fine-tune; each sequence keeps the run with the larger score (the expected observation log-likelihood
minus the DVAE's negative ELBO of the run's own tracks). Per-sample counts are averaged over the seeds, as in
tools/mot_results_table.py, and added to OUT/<set>.npz as the row MixDVAE-choice, next to paired_test2.py's rows
(whose choice_table() compares them).

    python docs/tracking_round8/choose_dvae.py --split val --out output/r8/choice_val
    python docs/tracking_round8/choose_dvae.py --split test2 --out output/r8/per_sample
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from model.dvae_choice import DVAEChoice  # noqa: E402
from utils.mot_experiments import MethodRunner, MethodSpec, load_split, mean_over_runs, reference_vem_settings, \
    score_samples  # noqa: E402

SETS = ("synthetic", "half_rate", "occlusion", "camera", "manoeuvre", "clutter")
CHOICE = MethodSpec("MixDVAE-choice", "mixdvae",
                    "model/pretrained/mot_srnn_causal_dngap.pt+model/pretrained/mot_srnn_causal_dngap_rate.pt",
                    assignment_temperature=0.03, init_subseq_len=5, z_mode="sample", dvae_var_scale=1.0,
                    dvae_es="smoother", dvae_es_var="fixed")


class ChoiceRunner(MethodRunner):
    """A :class:`MethodRunner` that keeps which DVAE each sequence got."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices: list[DVAEChoice] = []

    def dynamics(self, spec):
        dyn = super().dynamics(spec)
        self.choices.append(dyn)
        return dyn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.sets.split(","):
        base = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini",
                                      clutter_logprob=-10.0 if name == "clutter" else None)
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / args.split)
        spec = replace(CHOICE, checkpoint="+".join(str(ROOT / p) for p in CHOICE.checkpoint.split("+")))
        runs, shares = [], []
        for seed in (int(s) for s in args.seeds.split(",")):
            runner = ChoiceRunner(base, 300, seed)
            runs.append(score_samples(batch["gt"].numpy(), runner.run(spec, batch)))
            shares.append(torch.cat([c.chosen for c in runner.choices]).float().mean().item())
        path = args.out / f"{name}.npz"
        arrays = {}
        if path.is_file():
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files if not k.startswith("MixDVAE-choice")}
        arrays |= {f"{CHOICE.label}|{k}": v for k, v in mean_over_runs(runs).items()}
        np.savez_compressed(path, **arrays)
        print(f"{name}: mixed-rate DVAE chosen for {100 * np.mean(shares):.0f} % of the sequences", flush=True)


if __name__ == "__main__":
    main()
