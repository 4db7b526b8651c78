"""Training schedules of the DVAE pre-training (§4): KL warm-up and scheduled sampling."""

import pytest

from model.schedules import final_schedule_epoch, kl_weight, ss_probability


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.0), (5, 0.25), (10, 0.5), (19, 0.95), (20, 1.0),
                                                 (300, 1.0)])
def test_kl_weight_rises_linearly_over_the_first_ss_start_epochs(epoch, expected):
    assert kl_weight(epoch, warmup_epochs=20) == pytest.approx(expected)


def test_kl_weight_is_one_without_warmup():
    assert kl_weight(0, warmup_epochs=20, enabled=False) == 1.0
    assert kl_weight(0, warmup_epochs=0) == 1.0


@pytest.mark.parametrize(("epoch", "expected"), [(0, 0.0), (19, 0.0), (20, 0.0), (40, 0.25), (60, 0.5),
                                                 (99, 0.9875), (100, 1.0), (500, 1.0)])
def test_ss_probability_is_zero_then_a_linear_ramp_then_one(epoch, expected):
    assert ss_probability(epoch, ss_start=20, ss_end=100) == pytest.approx(expected)


def test_ss_probability_disabled_or_instantaneous():
    assert ss_probability(500, 20, 100, enabled=False) == 0.0
    assert [ss_probability(e, 3, 3) for e in (2, 3, 4)] == [0.0, 1.0, 1.0]   # ss_start == ss_end: a step


@pytest.mark.parametrize(("kl_warmup", "schedule_sampling", "expected"),
                         [(True, True, 100), (True, False, 20), (False, True, 100), (False, False, 0)])
def test_final_schedule_epoch_is_where_both_schedules_are_constant(kl_warmup, schedule_sampling, expected):
    end = final_schedule_epoch(20, 100, kl_warmup, schedule_sampling)
    assert end == expected
    for epoch in (end, end + 1, end + 50):
        assert kl_weight(epoch, 20, kl_warmup) == kl_weight(end, 20, kl_warmup)
        assert ss_probability(epoch, 20, 100, schedule_sampling) == ss_probability(end, 20, 100, schedule_sampling)


def test_scheduled_sampling_can_stop_below_one():
    assert [ss_probability(e, 2, 6, ss_max=0.5) for e in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.25, 0.5, 0.5]
