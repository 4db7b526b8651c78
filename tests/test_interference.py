"""Interference in an audio DVAE's pre-training input (``[Training] interference_dir``, data/interference.py):
x_in = x + g * i, with i another source's power spectrogram at a drawn source-to-interference ratio."""

from __future__ import annotations

import pytest
import torch

from data.interference import add_interference

B, T, F = 64, 10, 7


def powers(seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.rand(B, T, F, generator=gen) + 1e-3


def test_the_interference_sits_at_the_drawn_ratio_below_the_source():
    x, pool = powers(0), powers(1, scale=50.0)
    out = add_interference(x, pool, (5.0, 5.0), prob=1.0, gen=torch.Generator().manual_seed(2))
    added = out - x
    ratio_db = 10 * torch.log10(x.mean(dim=(1, 2)) / added.mean(dim=(1, 2)))
    torch.testing.assert_close(ratio_db, torch.full((B,), 5.0), atol=1e-3, rtol=0.0)
    assert (added >= 0).all()                                  # powers only grow


def test_only_a_share_prob_of_the_sequences_is_corrupted_and_the_rest_is_untouched():
    x, pool = powers(0), powers(1)
    out = add_interference(x, pool, (0.0, 20.0), prob=0.5, gen=torch.Generator().manual_seed(3))
    changed = (out != x).flatten(1).any(1)
    assert 16 <= int(changed.sum()) <= 48
    torch.testing.assert_close(out[~changed], x[~changed], rtol=0, atol=0)
    assert torch.equal(add_interference(x, pool, (0.0, 20.0), prob=0.0), x)


def test_the_draws_are_seeded_and_silent_sequences_stay_clean():
    x, pool = powers(0), powers(1)
    draw = [add_interference(x, pool, (-5.0, 10.0), 0.8, torch.Generator().manual_seed(4)) for _ in range(2)]
    assert torch.equal(draw[0], draw[1])
    silent = torch.zeros(B, T, F)
    assert torch.equal(add_interference(silent, pool, (0.0, 0.0), 1.0), silent)


def test_sequences_of_another_length_are_refused():
    with pytest.raises(ValueError, match="frames"):
        add_interference(powers(0), powers(1)[:, :5], (0.0, 10.0), 1.0)
