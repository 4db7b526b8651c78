"""Separation experiment tools (tools/scass_runs.py, scass_table.py, tune_scass.py) on tiny data.

The mixtures are 12-frame signals at 16 kHz (the tools use the reference STFT, F = 513) of a
harmonic "flute" and modulated-noise "speech"; the DVAEs are tiny and untrained: the plumbing is
under test, not the separation quality.
"""

from __future__ import annotations

import configparser
import csv
import json

import numpy as np
import pytest
import torch

from model.vem_scass import VEMSettings, run_vem
from tests.conftest import REPO, write_tiny_scass
from tools import scass_table, tune_scass
from tools.scass_runs import MixDVAEPoint, NMFPoint, StaticSpectrum, bootstrap_mean, paired_difference, \
    parse_point
from utils.errors import UserError

FS = 16000
LENGTH = 11 * 256          # 12 STFT frames
NETWORK = dict(name="SRNN", x_dim=513, z_dim=2, activation="tanh", dense_x_h=[8], dim_RNN_h=8, num_RNN_h=1,
               dense_hx_g=[8], dim_RNN_g=8, num_RNN_g=1, dense_gz_z=[4], dense_hz_x=[8], dense_hz_z=[4],
               dropout_p=0.0)
STFT_SECTION = {"wlen_sec": 0.064, "hop_percent": 0.25, "fs": FS, "zp_percent": 0, "trim": False}


def tone(rng, n):
    t = np.arange(n) / FS
    return (0.3 * np.sin(2 * np.pi * rng.uniform(400, 800) * t)).astype(np.float32)


def noise(rng, n):
    return (rng.normal(0, 0.1, n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(n) / FS))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("scass_tools")
    return write_tiny_scass(root, NETWORK, STFT_SECTION, tone, noise, 3, LENGTH, mix_dir="mix", train_len=FS // 2)


def test_bootstrap_of_a_constant_is_the_constant_and_paired_difference_is_per_mixture():
    assert bootstrap_mean(np.full(7, 2.5)) == (2.5, 2.5, 2.5)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])
    assert paired_difference(a, b) == (1.0, 1.0, 1.0)
    mean, low, high = bootstrap_mean(np.array([0.0, 10.0, np.nan]))
    assert mean == 5.0 and 0.0 <= low <= mean <= high <= 10.0


def test_method_specs_are_typed_and_unknown_settings_are_refused():
    label, kind, point = parse_point("tuned=mixdvae,ratio_v_theta_x=0.1,n_iter=20,speech=static")
    assert (label, kind) == ("tuned", "mixdvae")
    assert point == MixDVAEPoint(ratio_v_theta_x=0.1, n_iter=20, speech="static")
    assert parse_point("NMF=nmf,n_components=16,beta=is")[2] == NMFPoint(n_components=16, beta="is")
    assert parse_point("IBM=ibm") == ("IBM", "ibm", None)
    for bad in ("x=mixdvae,alpha=1", "x=nmf,n_components=many", "x=kalman", "nolabel", "IBM=ibm,n_iter=2"):
        with pytest.raises(UserError):
            parse_point(bad)


def test_the_tools_default_point_is_the_shipped_config():
    ini = configparser.ConfigParser()
    ini.read(REPO / "config" / "cfg_dvae_vem_scass.ini")
    vem, point = ini["VEM"], MixDVAEPoint()
    assert (point.ratio_v_theta_x, point.output, point.z_mode, point.es_power, point.n_iter, point.mixture_power_db) \
        == (vem.getfloat("ratio_v_theta_x"), vem["output"], vem["z_mode"], vem["es_power"],
            vem.getint("N_iter_total"), vem.getfloat("mixture_power_db"))
    assert point.finetune_lr == 0 and not ini["Training"].getboolean("finetune")
    assert (point.flute, point.speech) == (ini["Training"]["saved_dvae_s1"], ini["Training"]["saved_dvae_s2"])
    nmf, npoint = ini["NMF"], NMFPoint()
    assert (npoint.n_components, npoint.beta, npoint.iterations, npoint.iterations_separation, npoint.max_frames) \
        == (nmf.getint("n_components"), nmf["beta"], nmf.getint("iterations"), nmf.getint("iterations_separation"),
            nmf.getint("max_frames"))
    assert (npoint.train_flute, npoint.train_speech) == (nmf["train_dir_s1"], nmf["train_dir_s2"])


def test_rows_saved_before_the_output_setting_are_posterior_mean_rows():
    old = json.dumps({"kind": "mixdvae", "ratio_v_theta_x": 0.03, "n_iter": 70})
    renamed = json.dumps({"kind": "mixdvae", "ratio_v_theta_x": 0.03, "n_iter": 70, "output": "mu"})
    for saved in (old, renamed):
        assert scass_table.same_settings(saved, scass_table.settings_text("mixdvae", MixDVAEPoint(
            ratio_v_theta_x=0.03, output="mean")))
        assert not scass_table.same_settings(saved, scass_table.settings_text("mixdvae", MixDVAEPoint(
            ratio_v_theta_x=0.03, output="wiener")))


def test_static_spectra_in_the_vem_behave_like_fixed_wiener_priors():
    """Two static models, one 10^6 times louder in the low half of the spectrum: its estimate is the mixture
    there (its prior adds nothing to shrink it); in the high half the models are equal, and so are their estimates."""
    F = 513
    loud_low = torch.ones(F)
    loud_low[:256] = 1e6
    x = torch.randn(2, 5, F, dtype=torch.complex64)
    result = run_vem([StaticSpectrum(loud_low), StaticSpectrum(torch.ones(F))], x,
                     VEMSettings(n_iter=3, mixture_power_db=None))
    assert result.mu.shape == (2, 2, 5, F) and torch.isfinite(torch.view_as_real(result.mu)).all()
    torch.testing.assert_close(result.mu[:, 0, :, :256], x[..., :256], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(result.mu[:, 0, :, 256:], result.mu[:, 1, :, 256:])


def test_table_resumes_and_pairs_against_the_reference(tiny, capsys):
    out = tiny / "table"
    argv = ["--out", str(out), "--set", f"tiny={tiny / 'mix'}", "--reference", "Mixture", "--method", "Mixture=mixture",
            "--method", f"M=mixdvae,n_iter=2,flute={tiny / 'flute.pt'},speech={tiny / 'speech.pt'}",
            "--method", f"S=mixdvae,n_iter=2,flute={tiny / 'flute.pt'},speech=static,"
                        f"train_speech={tiny / 'train_speech'}",
            "--method", "IBM=ibm"]
    scass_table.main(argv)
    result = json.loads((out / "table.json").read_text())["results"]["tiny"]
    assert set(result) == {"Mixture", "M", "S", "IBM"} and result["IBM"]["n"] == 3
    assert "delta_flute" in result["IBM"] and "delta_flute" not in result["Mixture"]
    assert result["IBM"]["flute"][0] > result["Mixture"]["flute"][0]
    with open(out / "items.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4 * 3
    capsys.readouterr()
    scass_table.main(argv)                       # everything is in items.csv: nothing is recomputed
    assert "[tiny]" not in capsys.readouterr().out
    with open(out / "items.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4 * 3


def test_tuning_gives_both_methods_the_same_budget_and_tests_the_picks_on_held_out_mixtures(tiny):
    out = tiny / "tune"
    common = ["--data", str(tiny / "mix"), "--out", str(out), "--tune", "2", "--ratios", "0.03", "--z-modes",
              "sample", "--extra", "0.03:sample:1e-4", "--outputs", "mean,wiener", "--iters", "1,2",
              "--dvae-flute", str(tiny / "flute.pt"),
              "--dvae-speech", str(tiny / "speech.pt"), "--atoms", "2,3", "--betas", "kl,is",
              "--nmf-train-flute", str(tiny / "train_flute"), "--nmf-train-speech", str(tiny / "train_speech"),
              "--nmf-shipped", str(REPO / "model" / "pretrained" / "nmf_surrogate.npz"),
              "--nmf-cache", str(tiny / "nmf_cache")]
    with pytest.raises(UserError, match="unequal tuning budgets"):
        tune_scass.main([*common, "--sep-iters", "5"])
    common += ["--sep-iters", "5,10"]
    tune_scass.main([*common, "--methods", "mixdvae"])
    assert not (out / "best.json").exists()      # the NMF grid is still missing
    tune_scass.main([*common, "--methods", "nmf"])
    best = json.loads((out / "best.json").read_text())
    assert best["budget"] == {"mixdvae": 8, "nmf": 4 * 2}     # 2 VEM runs x 2 outputs x 2 iteration counts
    with open(out / "grid_mixdvae.csv", newline="") as f:
        assert sorted({r["output"] for r in csv.DictReader(f)}) == ["mean", "wiener"]
    assert f"output={best['best']['mixdvae']['output']}" in best["best"]["mixdvae"]["spec"]
    assert best["held_out_mixtures"] == 1
    held_out = best["held_out"]["held out"]
    assert set(held_out) == {"MixDVAE shipped", "MixDVAE tuned", "NMF shipped", "NMF tuned", "IBM", "Mixture"}
    assert all(r["n"] == 1 for r in held_out.values())
    assert "held-out" in (out / "tuning.md").read_text()


def test_a_grid_file_of_an_older_tune_scass_is_rewritten_with_the_output_column(tmp_path):
    path = tmp_path / "grid_mixdvae.csv"
    path.write_text("ratio_v_theta_x,z_mode,finetune_lr,n_iter,flute,speech,si_sdr_flute,si_sdr_speech,score,seconds\n"
                    "0.03,sample,0.0,70,f.pt,s.pt,6.36,2.43,4.4,174\n")
    (row,) = tune_scass.upgrade_grid(path, "mixdvae")
    assert row["output"] == "mean" and tune_scass.read_rows(path) == [row]
    assert next(csv.reader(path.open())) == list(tune_scass.COLUMNS["mixdvae"])
    assert tune_scass.upgrade_grid(tmp_path / "absent.csv", "mixdvae") == []
