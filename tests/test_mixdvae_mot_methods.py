"""mixdvae_mot.py per-method settings: KF-VEM's own [KF] tau / init window / filter noise, and extra
MixDVAE checkpoints as rows of their own ([Eval] extra_dvae). Tiny untrained checkpoints: plumbing only."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from data import mot_tracking_data_generation as gen
from model.srnn import SRNN
from tests.test_mixdvae_mot_script import NETWORK, N_SYN, T_SYN, run, run_dir, write_ini
from utils.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot_methods")
    torch.manual_seed(0)
    for name, dim_g in (("dvae.pt", 0), ("noncausal.pt", 5)):
        network = {**NETWORK, "dim_RNN_g": dim_g}
        model = SRNN(**{k: v for k, v in network.items() if k != "name"}).eval()
        model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]))
        save_checkpoint(root / name, model, network, epoch=0)
    for name, delta in (("inc_a.pt", 0.01), ("inc_b.pt", 0.01), ("inc_c.pt", 0.02)):        # for the choice rows
        network = {**NETWORK, "increments": True}
        model = SRNN(**{k: v for k, v in network.items() if k != "name"}).eval()
        model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]),
                                torch.full((4,), delta))
        save_checkpoint(root / name, model, network, epoch=0)
    samples = gen.synthetic_samples(4, seq_len=T_SYN, num_targets=N_SYN, miss_prob=0.2,
                                    rng=np.random.default_rng(0))
    gen.prepare_out_dir(root / "syn", overwrite=False)
    gen.write_dataset(root / "syn", samples, [f"s{i}" for i in range(4)], {})
    common = {"Eval.num_plot_samples": 0, "VEM.assignment_temperature": 0.01, "VEM.init_subseq_len": 10}
    cases = {
        "rows": write_ini(root / "rows.ini", root, root / "syn", **common, **{
            "User.run_name": "rows", "Eval.extra_dvae": f"nc:{root / 'noncausal.pt'}, again:{root / 'dvae.pt'}, "
                                                   f"var2:{root / 'dvae.pt'}:filter:2, "
                                                   f"own:{root / 'dvae.pt'}:filter:3:fixed:0.2:7",
            "KF.assignment_temperature": 0.5, "KF.filter_init_subseq_len": 5, "KF.filter_accel_std_ratio": 0.003}),
        "inherit": write_ini(root / "inherit.ini", root, root / "syn", **common, **{"User.run_name": "inherit"}),
        "bad_item": write_ini(root / "bad.ini", root, root / "syn", **{"Eval.extra_dvae": "nc"}),
        "twice": write_ini(root / "twice.ini", root, root / "syn",
                           **{"Eval.extra_dvae": f"a:{root / 'dvae.pt'}, a:{root / 'dvae.pt'}"}),
        "missing": write_ini(root / "missing.ini", root, root / "syn", **{"Eval.extra_dvae": "nc:nowhere.pt"}),
        "es_needs_increments": write_ini(root / "es.ini", root, root / "syn",
                                         **{"Eval.extra_dvae": f"s:{root / 'dvae.pt'}:smoother"}),
        "main_es": write_ini(root / "main_es.ini", root, root / "syn", **{"VEM.dvae_es": "propagate"}),
        "bad_scale": write_ini(root / "scale.ini", root, root / "syn",
                               **{"Eval.extra_dvae": f"s:{root / 'dvae.pt'}:filter:big"}),
        "bad_tau": write_ini(root / "bad_tau.ini", root, root / "syn",
                             **{"Eval.extra_dvae": f"s:{root / 'dvae.pt'}:filter:2:model:hot"}),
        "bad_es_var": write_ini(root / "bad_es_var.ini", root, root / "syn",
                                **{"Eval.extra_dvae": f"s:{root / 'dvae.pt'}:filter:2:learned"}),
        "choice": write_ini(root / "choice.ini", root, root / "syn", **common, **{
            "User.run_name": "choice",
            "Eval.extra_dvae": f"pick:{root / 'inc_a.pt'}+{root / 'inc_b.pt'}:smoother:1:fixed, "
                               f"own:{root / 'inc_a.pt'}+{root / 'inc_b.pt'}:smoother:1+0.3:fixed:0.01:10:first"}),
        "bad_choice_score": write_ini(root / "bad_choice_score.ini", root, root / "syn", **{
            "Eval.extra_dvae": f"pick:{root / 'inc_a.pt'}+{root / 'inc_b.pt'}:smoother:1:fixed:0.1:5:best"}),
        "choice_score_alone": write_ini(root / "choice_score_alone.ini", root, root / "syn", **{
            "Eval.extra_dvae": f"one:{root / 'inc_a.pt'}:smoother:1:fixed:0.1:5:first"}),
        "choice_count": write_ini(root / "choice_count.ini", root, root / "syn", **{
            "Eval.extra_dvae": f"pick:{root / 'inc_a.pt'}+{root / 'inc_b.pt'}:smoother:1+0.3+2"}),
        "choice_scales": write_ini(root / "choice_scales.ini", root, root / "syn", **{
            "Eval.extra_dvae": f"pick:{root / 'inc_a.pt'}+{root / 'inc_c.pt'}:smoother"}),
        "choice_needs_increments": write_ini(root / "choice_inc.ini", root, root / "syn", **{
            "Eval.extra_dvae": f"pick:{root / 'dvae.pt'}+{root / 'inc_a.pt'}"}),
        "main_choice": write_ini(root / "main_choice.ini", root, root / "syn", **common, **{
            "User.run_name": "main_choice", "Training.saved_dvae": str(root / "inc_a.pt"),
            "Training.choice_dvae": str(root / "inc_b.pt"), "VEM.dvae_es": "smoother"}),
        "main_choice_scales": write_ini(root / "main_choice_scales.ini", root, root / "syn", **{
            "Training.saved_dvae": str(root / "inc_a.pt"), "Training.choice_dvae": str(root / "inc_c.pt")}),
    }
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(run, cases.values())))
    return root, results


def test_extra_checkpoints_are_rows_and_kf_has_its_own_settings(runs):
    root, results = runs
    proc = results["rows"]
    assert proc.returncode == 0, proc.stderr
    out = run_dir(root, "rows")
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["methods"]) == ["MixDVAE", "MixDVAE-nc", "MixDVAE-again", "MixDVAE-var2", "MixDVAE-own",
                                        "KF-VEM-filter", "KF-VEM-smoother", "SORT"]
    # the same checkpoint under another name, with the same settings and seed, gives the same row
    assert summary["methods"]["MixDVAE-again"]["idf1"] == pytest.approx(summary["methods"]["MixDVAE"]["idf1"])
    settings = summary["method_settings"]
    assert settings["MixDVAE"] == settings["MixDVAE-nc"] == {"assignment_temperature": 0.01, "init_subseq_len": 10}
    assert settings["MixDVAE-own"] == {"assignment_temperature": 0.2, "init_subseq_len": 7}      # the row's own
    assert settings["KF-VEM-smoother"] == {"assignment_temperature": 0.5, "init_subseq_len": 10}
    assert settings["KF-VEM-filter"] == {"assignment_temperature": 0.5, "init_subseq_len": 5}
    log = (out / "log.txt").read_text()
    assert "MixDVAE-again: " in log and "E-S filter, var x1" in log          # [VEM]'s E-S and inflation
    assert "E-S filter, var x2 (model)" in log                               # the row's own inflation
    assert "E-S filter, var x3 (fixed), tau 0.2, init_subseq_len 7" in log    # its own E-S variance, tau, init
    assert "KF-VEM-filter: tau 0.5, init_subseq_len 5, accel_std_ratio 0.003" in log
    assert "KF-VEM-smoother: tau 0.5, init_subseq_len 10, accel_std_ratio 0.01" in log
    assert (out / "trackers" / "MixDVAE-syn" / "MixDVAE-nc" / "data" / "s0.txt").is_file()
    assert "MixDVAE-nc" in (out / "summary.txt").read_text()


def test_a_row_of_several_dvaes_chooses_one_per_sequence(runs):
    root, results = runs
    proc = results["choice"]
    assert proc.returncode == 0, proc.stderr
    out = run_dir(root, "choice")
    summary = json.loads((out / "summary.json").read_text())
    assert "MixDVAE-pick" in summary["methods"]
    assert "inc_a.pt+" in summary["extra_dvae"]["MixDVAE-pick"]
    log = (out / "log.txt").read_text()
    assert "chosen per sequence, judged by own" in log                        # the round-8 rule by default
    assert "MixDVAE-own" in summary["methods"] and "var x1+0.3 (fixed)" in log   # one E-S scale per DVAE
    assert "chosen per sequence, judged by first" in log                      # the row's own rule (7th field)


def test_the_main_row_may_choose_between_dvaes(runs):
    root, results = runs
    proc = results["main_choice"]
    assert proc.returncode == 0, proc.stderr
    out = run_dir(root, "main_choice")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["choice_dvae"].endswith("inc_b.pt") and "MixDVAE" in summary["methods"]
    assert "chosen per sequence against" in (out / "log.txt").read_text()


def test_empty_kf_keys_inherit_the_vem_settings(runs):
    root, results = runs
    assert results["inherit"].returncode == 0, results["inherit"].stderr
    summary = json.loads((run_dir(root, "inherit") / "summary.json").read_text())
    assert list(summary["methods"]) == ["MixDVAE", "KF-VEM-filter", "KF-VEM-smoother", "SORT"]
    for method in ("KF-VEM-filter", "KF-VEM-smoother"):
        assert summary["method_settings"][method] == {"assignment_temperature": 0.01, "init_subseq_len": 10}


@pytest.mark.parametrize(("case", "message"), [
    ("bad_item", r"\[Eval\] extra_dvae: expected name:checkpoint\[:es_mode\[:var_scale\[:es_var\[:tau\[:init"
                 r"\[:choice_score\]\]\]\]\]\], got 'nc'"),
    ("bad_choice_score",
     r"\[Eval\] extra_dvae: pick: choice_score must be one of own, first, observations, got 'best'"),
    ("choice_score_alone", r"\[Eval\] extra_dvae: one: choice_score 'first' needs several DVAEs joined by \+"),
    ("es_needs_increments", r"\[Eval\] extra_dvae: s: E-S 'smoother' needs an increments DVAE"),
    ("main_es", r"\[VEM\] dvae_es = propagate needs an increments DVAE; checkpoint .*dvae\.pt.* is not one"),
    ("bad_scale", r"\[Eval\] extra_dvae: s: expected a variance scale in \[1e-06, 1e\+06\], got 'big'"),
    ("bad_tau", r"\[Eval\] extra_dvae: s: expected a temperature tau in \[1e-06, 1e\+06\], got 'hot'"),
    ("bad_es_var", r"\[Eval\] extra_dvae: s: es_var must be one of model, fixed, adaptive, got 'learned'"),
    ("twice", r"\[Eval\] extra_dvae: the name 'a' is used twice"),
    ("choice_count", r"\[Eval\] extra_dvae: pick: 3 variance scales for 2 DVAEs"),
    ("choice_scales", r"\[Eval\] extra_dvae: pick \(.*\): the DVAEs of a choice must share delta_std"),
    ("choice_needs_increments", r"\[Eval\] extra_dvae: pick \(.*\): a choice of DVAEs needs increments DVAEs"),
    ("main_choice_scales",
     r"\[Training\] choice_dvae: .*inc_c\.pt.* and \[Training\] saved_dvae: the DVAEs of a choice must share "
     r"delta_std"),
    ("missing", r"checkpoint 'nowhere.pt' not found"),
])
def test_bad_extra_dvae_exits_2_with_one_line(runs, case, message):
    import re

    proc = runs[1][case]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), proc.stderr
