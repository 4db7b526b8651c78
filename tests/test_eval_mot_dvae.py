"""The DVAE quality tool (tools/eval_mot_dvae.py): scores against the clean boxes, paired differences with
bootstrap CIs, and the long-gap rows."""

import torch

from tests.test_vem_mot import tiny_srnn
from tools.eval_mot_dvae import evaluate_gap, paired_cis, score


def straight_boxes(B=12, T=60, seed=0) -> torch.Tensor:
    """Constant-velocity boxes, normalised to the 1920 x 1080 image, (B, T, 4)."""
    gen = torch.Generator().manual_seed(seed)
    start = torch.rand(B, 1, 2, generator=gen) * 0.5 + 0.2
    vel = (torch.rand(B, 1, 2, generator=gen) - 0.5) * 0.004
    size = torch.tensor([0.05, 0.1])
    xy = start + vel * torch.arange(T)[None, :, None]
    return torch.cat([xy, xy + size], dim=-1)


def test_the_clean_boxes_score_zero():
    x = straight_boxes()
    assert score(x, x)["px"] == 0.0


def test_paired_differences_come_with_a_ci_around_their_mean():
    rows = paired_cis(straight_boxes(), {"tiny": tiny_srnn(increments=True)}, num_boot=200)
    assert [(r["noise_ratio"], r["difference"]) for r in rows] == [
        (ratio, what) for ratio in (0.03, 0.06) for what in ("recon - identity", "one-step - CV one-step")]
    for r in rows:
        assert r["ci_low"] <= r["mean_px"] <= r["ci_high"]
        assert 0.0 <= r["dvae_better_share"] <= 1.0


def test_the_cv_smoother_bridges_a_gap_in_straight_motion():
    """With almost no noise, a constant-velocity smoother fills 12 missing frames of straight motion exactly;
    every increments DVAE gets a row per E-S mode and variance inflation."""
    rows = evaluate_gap(straight_boxes(), {"tiny": tiny_srnn(increments=True)}, gap_len=12, ratio=1e-4,
                        var_scales=(1.0,))
    cv = [r for r in rows if r["estimator"] == "CV smoother"]
    assert min(r["gap_px"] for r in cv) < 0.5
    assert {r["estimator"] for r in rows} - {"CV smoother"} == {
        f"tiny E-S {mode}" for mode in ("filter", "propagate", "smoother", "iterated")}
