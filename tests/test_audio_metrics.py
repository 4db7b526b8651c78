"""Specification of the SC-ASS metrics (§8.2) and of the metric tracker."""

import json
import math
import warnings

import numpy as np
import pytest

from utils.audio_metrics import ALL_METRICS, get_metrics, improvements, mixture_row, scaled_rmse, si_sdr
from utils.errors import UserError
from utils.metric_tracker import MetricTracker

FS = 16000


def _sources(seconds=1.0, seed=0):
    """Two non-silent toy sources: an amplitude-modulated tone and modulated noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noise = 0.1 * rng.standard_normal(t.size) * np.abs(np.sin(2 * np.pi * 2 * t))
    return np.stack([tone, noise])


def test_si_sdr_of_a_scaled_copy_is_huge_and_finite():
    ref = _sources()[0]
    assert 100 < si_sdr(ref, 0.5 * ref) < math.inf


def test_si_sdr_matches_the_closed_form_on_an_orthogonal_error():
    ref = np.array([1.0, -1.0, 1.0, -1.0])        # zero-mean, energy 4
    err = np.array([0.5, 0.5, -0.5, -0.5])        # zero-mean, orthogonal to ref, energy 1
    expected = 10 * math.log10(4 / 1)
    assert si_sdr(ref, ref + err) == pytest.approx(expected)
    # invariant to the estimate's gain and DC offset
    assert si_sdr(ref, 3 * (ref + err) + 7) == pytest.approx(expected)


def test_scaled_rmse_matches_hand_computation():
    # alpha = <est, ref> / <est, est> = 3 / 2, alpha * est - ref = [0.5, -0.5]
    assert scaled_rmse(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    # a silent estimate is scaled by 0: the RMS of the reference
    assert scaled_rmse(np.array([3.0, 4.0]), np.zeros(2)) == pytest.approx(math.sqrt(12.5))


def test_keys_are_per_source_input_then_estimate():
    clean = _sources()
    metrics = get_metrics(clean.sum(0), clean, clean, FS, metrics=("rmse", "si_sdr"))
    assert list(metrics) == ["input_s1_rmse", "s1_rmse", "input_s1_si_sdr", "s1_si_sdr",
                             "input_s2_rmse", "s2_rmse", "input_s2_si_sdr", "s2_si_sdr"]


def test_all_metrics_on_a_good_estimate():
    clean = _sources()
    rng = np.random.default_rng(1)
    estimate = clean + 0.01 * rng.standard_normal(clean.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # nothing may fail on a normal item
        metrics = improvements(get_metrics(clean.sum(0), clean, estimate, FS, item="good"))
    assert len(metrics) == 2 * len(ALL_METRICS) * 3
    assert all(np.isfinite(v) for v in metrics.values())
    for n in (1, 2):
        assert metrics[f"s{n}_si_sdr_i"] > 5 and metrics[f"s{n}_sdr_i"] > 5
        assert metrics[f"s{n}_si_sdr_i"] == metrics[f"s{n}_si_sdr"] - metrics[f"input_s{n}_si_sdr"]
    assert metrics["s2_pesq"] > metrics["input_s2_pesq"]


def test_bss_eval_keeps_the_source_order():
    clean = _sources()
    swapped = get_metrics(clean.sum(0), clean, clean[::-1], FS, metrics=("sdr",))
    assert swapped["s1_sdr"] < 0 and swapped["s2_sdr"] < 0


def test_pesq_on_a_silent_estimate_is_nan_with_a_warning():
    clean = _sources()
    estimate = np.stack([clean[0], np.zeros_like(clean[1])])
    with pytest.warns(UserWarning, match="pesq failed for mix_7 source 2: silent estimate"):
        metrics = get_metrics(clean.sum(0), clean, estimate, FS, metrics=("pesq",), item="mix_7")
    assert math.isnan(metrics["s2_pesq"])
    assert np.isfinite([metrics["s1_pesq"], metrics["input_s1_pesq"], metrics["input_s2_pesq"]]).all()


def test_pesq_failure_inside_the_package_is_nan_with_a_warning():
    clean = _sources(seconds=0.2)                 # PESQ needs at least 0.25 s
    with pytest.warns(UserWarning) as record:
        metrics = get_metrics(clean.sum(0), clean, clean, FS, metrics=("pesq",), item="short")
    assert len(record) == 4                       # input and estimate, two sources
    assert str(record[0].message).startswith("input_pesq failed for short source 1: BufferTooShortError")
    assert all(math.isnan(v) for v in metrics.values())


def test_silent_reference_gives_nan_everywhere_except_rmse():
    clean = _sources()
    clean[1] = 0
    with pytest.warns(UserWarning) as record:
        metrics = get_metrics(clean.sum(0), clean, clean + 0.01, FS, item="quiet")
    messages = [str(w.message) for w in record]
    assert "si_sdr failed for quiet source 2: silent reference" in messages
    assert any(m.startswith("sdr/sir/sar failed for quiet source 1: source 2 has silent reference")
               for m in messages)
    for name in ("si_sdr", "pesq", "estoi", "sdr", "sir", "sar"):
        assert math.isnan(metrics[f"s2_{name}"]) and math.isnan(metrics[f"input_s2_{name}"])
    assert metrics["s2_rmse"] == pytest.approx(0.0)
    assert np.isfinite([metrics["s1_si_sdr"], metrics["s1_pesq"], metrics["s1_estoi"]]).all()


def test_unknown_metric_is_a_user_error():
    clean = _sources(seconds=0.1)
    with pytest.raises(UserError, match="pesq_nb"):
        get_metrics(clean.sum(0), clean, clean, FS, metrics=("pesq_nb",))


def test_mixture_row_scores_the_mixture_with_zero_improvement():
    row = {"input_s1_sdr": 1.5, "s1_sdr": 9.0}
    assert improvements(mixture_row(row)) == {"input_s1_sdr": 1.5, "s1_sdr": 1.5, "s1_sdr_i": 0.0}


def test_tracker_summary_on_a_hand_case(tmp_path):
    tracker = MetricTracker()
    for item, value in zip("abcd", (1.0, 2.0, 3.0, math.nan)):
        tracker.add(item, "NMF", {"s1_si_sdr": value, "input_s1_si_sdr": 0.0})
    tracker.add("a", "IBM", {"s1_si_sdr": 10.0, "input_s1_si_sdr": 0.0})

    stats = tracker.summary()["NMF"]["s1_si_sdr"]
    assert stats["n"] == 3                        # the NaN item is not counted
    assert stats["mean"] == pytest.approx(2.0) and stats["median"] == pytest.approx(2.0)
    assert stats["ci95"] == pytest.approx(1.96 * 1.0 / math.sqrt(3))   # sample std of 1, 2, 3 is 1
    assert math.isnan(tracker.summary()["IBM"]["s1_si_sdr"]["ci95"])  # one item: no interval

    paths = tracker.save(tmp_path)
    assert [p.name for p in paths] == ["metrics_per_item.csv", "summary.json", "summary.txt"]
    assert len((tmp_path / "metrics_per_item.csv").read_text().splitlines()) == 1 + 5
    assert json.loads((tmp_path / "summary.json").read_text())["methods"]["IBM"]["s1_si_sdr"]["ci95"] is None
    table = (tmp_path / "summary.txt").read_text()
    assert "SI-SDR" in table and "input" not in table
    assert table.index("NMF") < table.index("IBM")  # methods in the order they were added


def test_the_mixture_is_scored_once_per_item(monkeypatch):
    """Scoring a second method on the same item reuses the mixture's (input_) scores: BSS-eval runs once for
    the mixture and once per estimate, and the input_ values are the same."""
    import utils.audio_metrics as am

    rng = np.random.default_rng(7)
    clean = rng.normal(size=(2, 4000))
    mix = clean.sum(0)
    calls = []
    real = am._bss_eval
    monkeypatch.setattr(am, "_bss_eval", lambda *a: calls.append(a[3]) or real(*a))
    first = get_metrics(mix, clean, clean + 0.1 * rng.normal(size=clean.shape), 16000, ("si_sdr", "sdr"))
    second = get_metrics(mix, clean, clean + 0.3 * rng.normal(size=clean.shape), 16000, ("si_sdr", "sdr"))
    assert calls == ["input_", "", ""]
    assert {k: v for k, v in first.items() if k.startswith("input_")} == \
        {k: v for k, v in second.items() if k.startswith("input_")}
    assert first["s1_sdr"] > second["s1_sdr"]


def test_estoi_itself_is_reproducible_to_the_tenth_digit_only():
    """Why the parallel test compares ESTOI with a tolerance: pystoi's result depends in its last bits on where
    numpy places its temporaries, even for two calls in one process."""
    clean = _sources(seconds=0.5)
    est = clean + 0.05 * np.random.default_rng(3).standard_normal(clean.shape)
    keep, values = [], []
    for k in range(10):
        keep.append(np.empty(97 * k + 1))        # move later allocations around
        values.append(get_metrics(clean.sum(0), clean, est, FS, ("estoi",))["s1_estoi"])
    assert max(values) - min(values) <= 1e-9 * abs(values[0])


def test_parallel_scoring_gives_the_serial_rows_in_item_order():
    """score_items in worker processes returns the rows (and warnings) of the serial loop, in item order:
    bit-identical except ESTOI, which pystoi itself reproduces to about 1e-11 only (test above)."""
    from utils.audio_metrics import MetricPool, score_items, score_methods
    from utils.workers import metric_workers

    rng = np.random.default_rng(3)
    items = []
    for k in range(5):
        clean = _sources(seconds=0.5, seed=k)
        estimates = {"A": clean + 0.05 * rng.standard_normal(clean.shape), "B": clean[::-1].copy()}
        if k == 2:
            estimates["B"][1] = 0.0                   # a silent estimate: NaN with a warning, in its item
        items.append((clean.sum(0), clean, estimates, f"item{k}"))
    serial = [score_methods(mix, clean, est, FS, ALL_METRICS, item=name) for mix, clean, est, name in items]
    assert any("silent estimate" in m for m in serial[2][1]) and not serial[0][1]
    parallel = score_items(items, FS, ALL_METRICS, workers=2)
    with MetricPool(3) as pool:                       # one pool, reused for several batches
        batches = pool.score_items(items[:2], FS, ALL_METRICS) + pool.score_items(items[2:], FS, ALL_METRICS)
    for rows in (parallel, batches):
        assert len(rows) == len(serial)
        for (rows_p, notes_p), (rows_s, notes_s) in zip(rows, serial):
            assert notes_p == notes_s
            assert list(rows_p) == list(rows_s)
            for method in rows_s:
                assert list(rows_p[method]) == list(rows_s[method])
                for key, value in rows_s[method].items():
                    if "estoi" in key:    # pystoi differs in the 11th digit between two calls of one process
                        assert rows_p[method][key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
                    else:                 # every other metric is bit-identical
                        np.testing.assert_array_equal(rows_p[method][key], value, err_msg=key)
    assert metric_workers(3) == 3 and metric_workers(0) >= 1 and metric_workers(0, world=1000) == 1
