"""Choosing the DVAE per sequence (model/dvae_choice.py; README, Tracking, round 8)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.dvae_choice import DVAEChoice, run_row, sequence_nll, sequence_scores
from model.fast_srnn import FastSRNN
from model.frame_rate import run_vem_upsampled
from model.vem_mot import SRNNDynamics
from tests.test_vem_mot import QUICK, shuffle, tiny_srnn, walkers

SETTINGS = replace(QUICK, log_elbo=False)


def batch(seed=0):
    """Noisy detections of well separated walkers, (B, T, K, 4) pixels, and their first boxes."""
    gt = walkers(B=4, T=16, seed=seed)
    det = shuffle(gt + np.random.default_rng(seed).normal(0, 3.0, gt.shape), seed)
    return torch.as_tensor(det, dtype=torch.float32), torch.as_tensor(gt[:, 0], dtype=torch.float32)


def option(model):
    return SRNNDynamics(model, z_mode="sample", es_mode="smoother", es_var="fixed")


def runs_and_scores(det, init, models, judges, seed):
    """Each DVAE's own run from the same random state, and its S judged by ``judges[k]`` (None = observations)."""
    settings = replace(SETTINGS, log_elbo=True)
    runs, scores = [], []
    for model, judge in zip(models, judges):
        torch.manual_seed(seed)
        runs.append(run_vem_upsampled(det, None, init, option(model), settings))
        scores.append(sequence_scores(judge, runs[-1], None, settings))
    return runs, scores


def test_two_copies_of_one_dvae_give_its_own_run_and_keep_the_first():
    det, init = batch()
    model = tiny_srnn(1, increments=True)
    torch.manual_seed(3)
    alone = run_vem_upsampled(det, None, init, option(model), SETTINGS)
    choice = DVAEChoice([option(model), option(model)])
    torch.manual_seed(3)
    both = run_row(choice, det, None, init, SETTINGS)
    torch.testing.assert_close(both.tracks, alone.tracks)
    assert choice.chosen.tolist() == [0, 0, 0, 0]


def test_each_sequence_keeps_the_run_with_the_larger_score():
    det, init = batch(1)
    models = [tiny_srnn(1, increments=True), tiny_srnn(2, increments=True)]
    runs, scores = runs_and_scores(det, init, models, [FastSRNN(m, 1.0, "smoother", "fixed") for m in models], 5)
    choice = DVAEChoice([option(m) for m in models])
    torch.manual_seed(5)
    chosen = choice.run(det, None, init, SETTINGS)
    expected = torch.stack(scores).argmax(0)
    assert torch.equal(choice.chosen, expected)
    for b, k in enumerate(expected.tolist()):
        torch.testing.assert_close(chosen.tracks[b], runs[k].tracks[b])
        torch.testing.assert_close(chosen.eta[b], runs[k].eta[b])
        assert chosen.iter_tracks is not None
        torch.testing.assert_close(chosen.iter_tracks[:, b], runs[k].iter_tracks[:, b])


@pytest.mark.parametrize("score", ["first", "observations"])
def test_a_common_yardstick_judges_every_run_with_the_same_model(score):
    det, init = batch(2)
    models = [tiny_srnn(1, increments=True), tiny_srnn(2, increments=True), tiny_srnn(3, increments=True)]
    judge = FastSRNN(models[0], 1.0, "smoother", "fixed") if score == "first" else None
    runs, scores = runs_and_scores(det, init, models, [judge] * len(models), 7)
    choice = DVAEChoice([option(m) for m in models], score=score)
    torch.manual_seed(7)
    chosen = choice.run(det, None, init, SETTINGS)
    expected = torch.stack(scores).argmax(0)
    assert torch.equal(choice.chosen, expected)
    for b, k in enumerate(expected.tolist()):
        torch.testing.assert_close(chosen.tracks[b], runs[k].tracks[b])
    if score == "observations":
        torch.testing.assert_close(scores[0], runs[0].elbo["expected_loglik"][-1])


def test_the_sequence_likelihood_is_per_sequence_and_a_jump_costs():
    fast = FastSRNN(tiny_srnn(1, increments=True), 1.0, "smoother", "fixed")
    m = 0.3 + 0.4 * torch.rand(12, 4, 5, generator=torch.Generator().manual_seed(0))
    base = sequence_nll(fast, m)
    moved = m.clone()
    moved[6:, :, 2] += 0.05                                  # a jump in sequence 2 only
    after = sequence_nll(fast, moved)
    assert after[2] > base[2]
    torch.testing.assert_close(after[[0, 1, 3, 4]], base[[0, 1, 3, 4]])


def test_a_choice_refuses_dvaes_of_other_scales_or_without_increments():
    a, b = tiny_srnn(1, increments=True), tiny_srnn(2, increments=True)
    b.set_feature_stats(b.feat_mean, b.feat_std, 2 * b.delta_std)
    with pytest.raises(ValueError, match="delta_std"):
        DVAEChoice([option(a), option(b)])
    with pytest.raises(ValueError, match="at least two"):
        DVAEChoice([option(a)])
    with pytest.raises(ValueError, match="choice score"):
        DVAEChoice([option(a), option(a)], score="best")
    with pytest.raises(ValueError, match="increments"):
        sequence_nll(FastSRNN(tiny_srnn(1), 1.0, "filter", "model"), torch.rand(5, 4, 2))
