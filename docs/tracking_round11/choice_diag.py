"""Round 11, validation only: the first look that prompted the one-yardstick choice (seed 0, one set a call).

    python docs/tracking_round11/choice_diag.py occlusion [val2]

Runs dngap x 1, dngap_rate x 1 and vel x 0.6 (smoother, fixed, tau 0.03, init 5), scores every run's tracks with
every DVAE, and prints the IDF1 each selection rule would give for the choices dngap+rate, dngap+vel and all three:
own (round 8), observations only, one yardstick (dngap, vel or their mean), and the per-sample oracle.
"""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from model.dvae_choice import sequence_nll, run_vem_upsampled
from model.dvae_dynamics import SRNNDynamics
from model.boxes import box_scale
from utils.checkpoint import load_dvae
from utils.mot_experiments import load_split, reference_vem_settings, score_samples

torch.set_num_threads(1)
P = "model/pretrained/"
OPTS = [("dngap", P + "mot_srnn_causal_dngap.pt", 1.0), ("rate", P + "mot_srnn_causal_dngap_rate.pt", 1.0),
        ("vel", P + "mot_srnn_causal_vel.pt", 0.6)]
name = sys.argv[1]
split = sys.argv[2] if len(sys.argv) > 2 else "val2"
if split.startswith("test"):
    raise SystemExit("round 11's selection reads validation splits only")
base = reference_vem_settings(clutter_logprob=-10.0 if name == "clutter" else None)
settings = replace(base, temperature=0.03, init_subseq_len=5, log_elbo=True)
batch = load_split(f"data/generated/mot_sets/{name}/{split}")
dyn = [SRNNDynamics(load_dvae(Path(p), head="gaussian", where="x")[0], "sample", var_scale=v, es_mode="smoother",
                    es_var="fixed") for _, p, v in OPTS]
out = {}
B = batch["det"].shape[0]
for j, (label, _, _) in enumerate(OPTS):
    torch.manual_seed(0)
    E, N, tr = [], [], []
    for s in range(0, B, 300):
        sl = slice(s, s + 300)
        r = run_vem_upsampled(batch["det"][sl], batch["det_mask"][sl], batch["init"][sl], dyn[j], settings,
                              batch["image_size"][sl], 1)
        Bb, T, Ns, D = r.tracks.shape
        scale = box_scale(batch["image_size"][sl], settings.normalize, settings.normalize_range).T
        m = (r.tracks.permute(1, 3, 2, 0) / scale[None, :, None, :]).reshape(T, D, Ns * Bb).float()
        N.append(torch.stack([sequence_nll(d.fast, m).reshape(Ns, Bb).sum(0) for d in dyn], 1))
        E.append(r.elbo["expected_loglik"][-1])
        tr.append(r.tracks.numpy())
    sc = score_samples(batch["gt"].numpy(), np.concatenate(tr))
    out[label] = dict(E=torch.cat(E).numpy(), N=torch.cat(N).numpy(), sc=sc)

COUNTS = {k: np.stack([np.asarray(out[label]["sc"][k], float) for label, _, _ in OPTS])      # (options, B)
          for k in ("idtp", "num_objects", "num_predictions")}


def idf1(picks: np.ndarray) -> float:
    """Dataset IDF1 (%) when sample b keeps option picks[b]."""
    tot = {k: np.take_along_axis(v, picks[None], 0).sum() for k, v in COUNTS.items()}
    return 100 * 2 * tot["idtp"] / (tot["num_objects"] + tot["num_predictions"])


labels = [o[0] for o in OPTS]
per_sample = 2 * COUNTS["idtp"] / np.maximum(COUNTS["num_objects"] + COUNTS["num_predictions"], 1)   # (options, B)
for subset in ([0, 1], [0, 2], [0, 1, 2]):
    idx = np.array(subset)
    E = np.stack([out[labels[j]]["E"] for j in subset], 1)                       # (B, options)
    Nall = np.stack([out[labels[j]]["N"] for j in subset], 1)                    # (B, options, judges)
    own = E - Nall[:, np.arange(len(subset)), idx]
    rules = {"own (shipped)": own, "E only": E, "common dngap": E - Nall[:, :, 0], "common vel": E - Nall[:, :, 2],
             "common mean": E - Nall.mean(2)}
    res = {k: idf1(idx[v.argmax(1)]) for k, v in rules.items()}
    res["oracle"] = idf1(idx[per_sample[idx].argmax(0)])
    for j in subset:
        res[labels[j]] = idf1(np.full(B, j))
    print(name, "+".join(labels[j] for j in subset), " ".join(f"{k}={v:.2f}" for k, v in res.items()), flush=True)
