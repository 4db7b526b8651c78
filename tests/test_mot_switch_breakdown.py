"""tools/mot_switch_breakdown.py: which events it finds and how it classes them (README, Tracking, round 8)."""

import numpy as np

from tools.mot_switch_breakdown import classify, events


def straight(T: int, x0: float, y: float, vx: float) -> np.ndarray:
    """(T, 4) boxes 40 x 40 moving along x."""
    x = x0 + vx * np.arange(T, dtype=float)
    return np.stack([x, np.full(T, float(y)), x + 40, np.full(T, y + 40.0)], axis=-1)


def two_targets(T: int = 12) -> np.ndarray:
    """(T, 2, 4): two targets far apart, never overlapping."""
    return np.stack([straight(T, 100, 100, 5), straight(T, 100, 600, 5)], axis=1)


def test_a_track_that_takes_the_other_target_from_frame_6_is_one_switch_per_object():
    gt = two_targets()
    tracks = gt.copy()
    tracks[6:] = gt[6:, ::-1]
    kinds = sorted((kind, t) for kind, t, _ in events(gt, tracks))
    assert kinds == [("switch", 6), ("switch", 6)]


def test_a_track_that_drifts_away_for_three_frames_is_a_fragmentation_when_it_comes_back():
    gt = two_targets()
    tracks = gt.copy()
    tracks[4:7, 0] += 300.0                                  # no match on frames 4-6
    assert events(gt, tracks) == [("frag", 7, 0)]


def test_events_are_classed_crossing_then_miss_then_window_join_then_other():
    gt = two_targets(20)
    present = np.ones((20, 2), dtype=bool)
    assert classify(15, 0, gt, present, window=10) == "other"
    assert classify(11, 0, gt, present, window=10) == "window join"         # 1 frame after a window boundary
    missing = present.copy()
    missing[9, 0] = False
    assert classify(11, 0, gt, missing, window=10) == "miss"                 # a miss wins over the join
    crossing = gt.copy()
    crossing[8, 1] = crossing[8, 0] + 10.0                                    # overlaps target 0 at frame 8
    assert classify(11, 0, crossing, missing, window=10) == "crossing"       # and a crossing over both
    assert classify(12, 0, crossing, present, window=None) == "other"        # frame 8 is out of the context


def test_windows_of_five_frames_or_fewer_have_no_join_class():
    gt = two_targets(20)
    present = np.ones((20, 2), dtype=bool)
    assert {classify(t, 0, gt, present, window=5) for t in range(4, 20)} == {"other"}
