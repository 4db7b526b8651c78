"""Round 8's validation checks: one MixDVAE or KF-VEM setting on the six validation splits (IDF1 per split and their
mean), with the levers tried in this round as options (none of them is a config key).

    python docs/tracking_round8/validate.py --es smoother --var-scale 1 --es-var fixed --seed 0
    python docs/tracking_round8/validate.py --es propagate --var-scale 0.5 --es-var adaptive \
        --checkpoint model/pretrained/mot_srnn_causal_dngap_rate.pt --seed 3
    ... --finetune-lr 1e-4                      # fine-tuning in the VEM (5.5), one Adam step per iteration
    ... --prior-gain 400 --k-range 0.25,8       # the adaptive variance's prior weight and range
    ... --tau 0.03 --tau-final 0.3 --anneal 10  # E-W temperature raised geometrically over the first 10 iterations
    ... --kind kf_smoother --accel 0.03 --tau 0.1
    ... --checkpoint A.pt+B.pt --option-var-scales 1,0.1   # round 9: a per-sequence DVAE choice, E-S variance per DVAE
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import model.covariance_matching as cm  # noqa: E402
import model.vem_mot as vm  # noqa: E402
from model.dvae_dynamics import SRNNDynamics  # noqa: E402
from utils.mot_experiments import MethodRunner, MethodSpec, dataset_metrics, load_split, reference_vem_settings, \
    score_samples  # noqa: E402

SPLITS = ("synthetic", "half_rate", "occlusion", "camera", "manoeuvre", "clutter")


def annealed(orig, tau0: float, tau1: float, steps: int):
    """``model.vem_mot.iterate`` whose whole-sequence phase (not the initialisation windows) first runs ``steps``
    iterations at tau0 .. tau1 (geometric) without the convergence stop, then the rest at tau1."""
    def iterate(obs, obs_var, mask, m, var, start, dynamics, settings, n_iter, record=None, loss_every=0):
        if n_iter != settings.n_iter:
            return orig(obs, obs_var, mask, m, var, start, dynamics, settings, n_iter, record, loss_every)
        for i in range(steps):
            tau = tau0 * (tau1 / tau0) ** (i / max(steps - 1, 1))
            m, var, _, obs_var, _ = orig(obs, obs_var, mask, m, var, start, dynamics,
                                         replace(settings, temperature=tau, tol=0.0), 1)
        return orig(obs, obs_var, mask, m, var, start, dynamics, replace(settings, temperature=tau1),
                    n_iter - steps, record, loss_every)
    return iterate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="mixdvae", choices=("mixdvae", "kf_filter", "kf_smoother"))
    ap.add_argument("--checkpoint", default="model/pretrained/mot_srnn_causal_dngap.pt")
    ap.add_argument("--es", default="smoother")
    ap.add_argument("--var-scale", type=float, default=1.0)
    ap.add_argument("--es-var", default="fixed")
    ap.add_argument("--tau", type=float, default=0.03)
    ap.add_argument("--init-len", type=int, default=5)
    ap.add_argument("--accel", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--finetune-lr", type=float, default=0.0, help="0 = no fine-tuning")
    ap.add_argument("--prior-gain", type=float, default=None)
    ap.add_argument("--k-range", default=None, help="low,high multiples of k0")
    ap.add_argument("--tau-final", type=float, default=None)
    ap.add_argument("--anneal", type=int, default=10, help="iterations of the tau schedule (with --tau-final)")
    ap.add_argument("--split", default="val", help="the split of each set (round 9: val2, 2 000 samples a set)")
    ap.add_argument("--option-var-scales", default=None,
                    help="with --checkpoint A+B(+C): the E-S variance scale of each DVAE of the choice")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.prior_gain is not None:
        cm.PRIOR_GAIN = args.prior_gain
    if args.k_range:
        cm.K_RANGE = tuple(float(v) for v in args.k_range.split(","))
    if args.tau_final is not None:
        vm.iterate = annealed(vm.iterate, args.tau, args.tau_final, args.anneal)
    lr = args.finetune_lr
    option_scales = tuple(float(v) for v in args.option_var_scales.split(",")) if args.option_var_scales else None

    class Runner(MethodRunner):
        def dynamics(self, spec):
            if spec.kind != "mixdvae" or lr <= 0:
                return super().dynamics(spec)
            return SRNNDynamics(self.model(spec.checkpoint), z_mode=spec.z_mode, var_scale=spec.dvae_var_scale,
                                es_mode=spec.dvae_es, es_var=spec.dvae_es_var, finetune=True, lr=lr)

    if args.kind == "mixdvae":
        spec = MethodSpec("row", "mixdvae", args.checkpoint, args.tau, args.init_len, "sample", args.var_scale,
                          args.es, args.es_var, option_var_scales=option_scales)
    else:
        spec = MethodSpec("row", args.kind, None, args.tau, args.init_len, accel_std_ratio=args.accel)
    base, scores, t0 = reference_vem_settings(ROOT / "config" / "cfg_dvae_vem_mot.ini"), [], time.time()
    for name in SPLITS:
        batch = load_split(ROOT / "data" / "generated" / "mot_sets" / name / args.split)
        s = replace(spec, clutter_logprob=-10.0) if name == "clutter" else spec
        per = score_samples(batch["gt"].numpy(), Runner(base, seed=args.seed).run(s, batch))
        scores.append(100 * float(dataset_metrics(per)["idf1"]))
    print(f"{' '.join(sys.argv[1:])}: mean {np.mean(scores):.3f} | "
          + " ".join(f"{n} {v:.2f}" for n, v in zip(SPLITS, scores)) + f" | {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
