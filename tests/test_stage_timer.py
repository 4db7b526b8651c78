"""Specification of the run-time split (utils/stage_timer.py) that the two VEM scripts log and write."""

import pytest

from utils.stage_timer import StageTimer


def test_stages_accumulate_in_first_use_order():
    timer = StageTimer(start=0.0)
    timer.add("VEM", 2.0)
    timer.add("metrics", 1.0)
    timer.merge({"VEM": 0.5, "data loading": 0.25})
    assert list(timer.seconds) == ["VEM", "metrics", "data loading"]
    assert timer.seconds == {"VEM": 2.5, "metrics": 1.0, "data loading": 0.25}


def test_context_manager_times_its_block_even_when_it_raises():
    timer = StageTimer()
    with timer("setup"):
        pass
    with pytest.raises(ValueError), timer("setup"):
        raise ValueError
    assert list(timer.seconds) == ["setup"] and timer.seconds["setup"] >= 0.0


def test_iterate_times_the_production_of_every_item_only():
    timer = StageTimer()
    produced = []

    def loader():
        for k in range(3):
            produced.append(k)
            yield k

    assert list(timer.iterate(loader(), "data loading")) == [0, 1, 2]
    assert produced == [0, 1, 2] and "data loading" in timer.seconds


def test_summary_has_stages_total_and_the_uncovered_rest():
    timer = StageTimer()
    timer.add("VEM", 0.0)
    d = timer.as_dict()
    assert set(d) == {"stages_s", "total_s", "other_s"} and d["stages_s"] == {"VEM": 0.0}
    assert d["other_s"] == pytest.approx(d["total_s"], abs=1e-3)
    line = timer.line()
    assert line.startswith("wall time ") and "VEM 0.0 s" in line and "other " in line
