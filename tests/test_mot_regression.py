"""Regression guard: the shipped MOT configuration keeps its tracking quality on a fixed synthetic set.

20 seeded synthetic 3-target samples (15 % misses, crossings in half of them, 3 % box noise) are tracked
by MixDVAE with the shipped checkpoint and the validation-tuned settings of ``config/cfg_dvae_vem_mot.ini``
(convergence tolerance and iteration caps included), for three seeds of z. Their mean IDF1 must stay at or
above the value recorded when those were shipped; a change to the SRNN, the VEM or the checkpoint that loses
identities fails here in seconds.
"""

import configparser

import numpy as np
import pytest
import torch

from data.mot_tracking_data_generation import synthetic_samples
from model.dvae_choice import DVAEChoice, run_row
from model.vem_mot import SRNNDynamics, VEMSettings
from tests.conftest import REPO
from utils.checkpoint import load_dvae
from utils.mot_eval import mota_idf1

RECORDED_IDF1 = 0.999074   # mean over z seeds 0-2 of 0.999167, 0.998889, 0.999167, measured on 2026-12-03 with the
# config shipped since round 6 (mot_srnn_causal_dngap.pt, smoother E-S with the fixed E-S variance x 1, tau 0.03,
# init 5, caps 30 / 10, tol 0.001). Round 5's row (the same DVAE with the model's variance, tau 0.1) recorded 0.994537
# here and the row before it 0.997407. Until 2026-12-03 this test ran one seed at tol 0 and recorded 1.0, which seeds
# 1 and 2 of the same settings miss: it measured the seed as much as the model. Round 8's main row (the same DVAE
# and its mixed-rate fine-tune, [Training] choice_dvae, chosen per sequence) gives the same 0.999074 here.
SEEDS = (0, 1, 2)


RECORDED_CAUSAL_IDF1 = 0.995092   # the [Eval] extra_dvae row "causal" (round 8: mot_srnn_causal_dngap_rate.pt,
# propagate E-S, adaptive variance k0 0.5, tau 0.03, init 5): mean over z seeds 0-2 of 0.998056, 0.998333, 0.988889
# = 0.9950926, measured on 2026-12-04 and recorded rounded down. Round 7's causal row (mot_srnn_causal_dngap.pt,
# k0 0.7) gives 0.991944 here. Round 9's causal row (that DVAE and mot_srnn_causal_vel.pt chosen per sequence,
# k0 0.5 and 0.3) gives the same 0.9950926.
RECORDED_VEL_CHOICE_IDF1 = 0.999074   # the row "vel-choice" (round 10: mot_srnn_causal_dngap.pt and
# mot_srnn_causal_vel.pt chosen per sequence, smoother E-S, fixed x 1 and 0.6): 0.999167, 0.998889, 0.999167 over z
# seeds 0-2, measured on 2026-12-07. Round 9's row (x 1 and 0.3) recorded 1.0 here; the velocity DVAE's scale was
# raised to 0.6 on val2 before the test5 run (docs/tracking_round10/README.md), which costs 3-4 of the 3 600 boxes
# per seed on these 20 samples.


def shipped() -> tuple[dict, dict, dict]:
    ini = configparser.ConfigParser(interpolation=None)
    ini.optionxform = str
    ini.read(REPO / "config" / "cfg_dvae_vem_mot.ini")
    return dict(ini["VEM"]), dict(ini["Training"]), dict(ini["Eval"])


def extra_row(vem: dict, extra: str, name: str = "causal") -> tuple[str, dict]:
    """The checkpoint and the [VEM] settings of the row ``name`` of [Eval] extra_dvae
    (name:checkpoint:dvae_es:dvae_var_scale:dvae_es_var:tau:init)."""
    item = next(v.strip() for v in extra.split(",") if v.strip().startswith(f"{name}:"))
    _, path, es, var_scale, es_var, tau, init = item.split(":")
    return path, {**vem, "dvae_es": es, "dvae_var_scale": var_scale, "dvae_es_var": es_var,
                  "assignment_temperature": tau, "init_subseq_len": init}


def mean_idf1(checkpoint: str, vem: dict) -> tuple[float, list[float]]:
    """Mean IDF1 over the z seeds on 20 seeded synthetic samples, with the VEM settings ``vem``; a checkpoint of
    several DVAEs joined by + chooses per sequence (model/dvae_choice.py), with dvae_var_scale one value or one
    per DVAE (joined by +)."""
    samples = synthetic_samples(20, miss_prob=0.15, crossing_fraction=0.5, rng=np.random.default_rng(2024))
    det = torch.from_numpy(np.stack([s["det"] for s in samples])).float()         # (20, 60, 3, 4) pixels
    gt = np.stack([s["gt"] for s in samples])
    init = torch.from_numpy(np.stack([s["init"] for s in samples])).float()
    models = [load_dvae(REPO / path, head="gaussian")[0] for path in checkpoint.split("+")]
    scales = [float(v) for v in str(vem.get("dvae_var_scale", 1)).split("+")]
    scales = scales * len(models) if len(scales) == 1 else scales
    settings = VEMSettings(n_iter=int(vem["N_iter_total"]), init_iter=int(vem["init_iter_number"]),
                           init_subseq_len=int(vem["init_subseq_len"]), std_ratio=float(vem["std_ratio"]),
                           temperature=float(vem["assignment_temperature"]), tol=float(vem["convergence_tol"]),
                           log_elbo=False)
    scores = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        options = [SRNNDynamics(model, z_mode=vem["z_mode"], var_scale=scale, es_mode=vem.get("dvae_es", "filter"),
                                es_var=vem.get("dvae_es_var", "model"))
                   for model, scale in zip(models, scales)]
        dynamics = options[0] if len(options) == 1 else DVAEChoice(options)
        scores.append(mota_idf1(gt, run_row(dynamics, det, None, init, settings).tracks.numpy())[1])
    return float(np.mean(scores)), scores


def test_shipped_mixdvae_keeps_its_idf1_on_a_fixed_synthetic_set():
    vem, tr, _ = shipped()
    choice = tr.get("choice_dvae", "").strip()                   # the main row's further DVAEs (round 8)
    idf1, scores = mean_idf1(tr["saved_dvae"] + (f"+{choice}" if choice else ""), vem)
    assert idf1 >= RECORDED_IDF1, f"mean IDF1 {idf1:.6f} (seeds {SEEDS}: {scores}) < recorded {RECORDED_IDF1}"


@pytest.mark.parametrize(("name", "recorded"), [("causal", RECORDED_CAUSAL_IDF1),
                                              ("vel-choice", RECORDED_VEL_CHOICE_IDF1)])
def test_shipped_extra_rows_keep_their_idf1_on_the_same_set(name, recorded):
    vem, _, ev = shipped()
    idf1, scores = mean_idf1(*extra_row(vem, ev["extra_dvae"], name))
    assert idf1 >= recorded, f"{name} row: mean IDF1 {idf1:.6f} (seeds {SEEDS}: {scores}) < recorded {recorded}"
