"""Harder synthetic MOT data: half frame rate, manoeuvres, long occlusions, camera motion, clutter.

Each flag is checked for what it guarantees, against the same seed without the flag where possible.
"""

import json

import numpy as np
import pytest

from data import mot_generate_synthetic_data as traj
from data import mot_tracking_data_generation as gen
from utils.errors import UserError

P = traj.TrajectoryParams


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


def mean_speed(boxes: np.ndarray) -> float:
    """Mean per-frame displacement of the box centres. boxes (..., T, 4)."""
    centre = 0.5 * (boxes[..., :2] + boxes[..., 2:])
    return float(np.abs(np.diff(centre, axis=-2)).mean())


# ----------------------------------------------------------------------------- trajectories


def test_frame_step_keeps_every_kth_frame_of_a_longer_draw():
    half = traj.generate_trajectories(40, 30, np.random.default_rng(5), P(frame_step=2))
    full = traj.generate_trajectories(40, 59, np.random.default_rng(5), P())
    assert half.shape == (40, 30, 4)
    np.testing.assert_array_equal(half, full[:, ::2])


def test_frame_step_two_doubles_the_per_frame_motion():
    base = traj.generate_trajectories(1500, 40, np.random.default_rng(0), P())
    half = traj.generate_trajectories(1500, 40, np.random.default_rng(0), P(frame_step=2))
    assert mean_speed(half) / mean_speed(base) == pytest.approx(2.0, abs=0.3)


def stop_and_go(boxes: np.ndarray, hold: int = 3) -> np.ndarray:
    """Per trajectory: moving at the start, then still (top-left corner) for >= ``hold`` consecutive frames."""
    still = (np.abs(np.diff(boxes[..., :2], axis=1)) < 1e-9).all(-1)            # (n, T - 1)
    return np.array([not s[0] and any(n >= hold for start, n in runs_of(s)) for s in still])


def test_manoeuvres_stop_and_go():
    params = P(manoeuvre_prob=1.0, manoeuvre_turn_prob=0.0, manoeuvre_max=1)
    walks = traj.generate_trajectories(400, 60, np.random.default_rng(1), params)
    plain = traj.generate_trajectories(400, 60, np.random.default_rng(1), P())
    assert stop_and_go(walks).mean() > 0.6
    assert stop_and_go(plain).mean() < 0.2


def test_manoeuvres_turn_at_constant_speed():
    params = P(manoeuvre_prob=1.0, manoeuvre_turn_prob=1.0, manoeuvre_max=1)
    boxes = traj.generate_trajectories(400, 60, np.random.default_rng(2), params).astype(np.float64)
    vel = np.diff(boxes[..., :2], axis=1) / [params.vel_std_x, params.vel_std_y]   # velocity in std units
    speed = np.linalg.norm(vel, axis=-1)
    np.testing.assert_allclose(speed, speed[:, :1].repeat(speed.shape[1], 1), rtol=0.02)
    first, last = vel[:, 0], vel[:, -1]
    cos = (first * last).sum(-1) / (np.linalg.norm(first, axis=-1) * np.linalg.norm(last, axis=-1))
    turned = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert (turned <= 150.5).all()
    assert (turned > 40).mean() > 0.7


def test_manoeuvres_are_seeded_and_a_cli_flag(tmp_path):
    a = traj.generate_trajectories(20, 30, np.random.default_rng(3), P(manoeuvre_prob=1.0))
    b = traj.generate_trajectories(20, 30, np.random.default_rng(3), P(manoeuvre_prob=1.0))
    c = traj.generate_trajectories(20, 30, np.random.default_rng(4), P(manoeuvre_prob=1.0))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    traj.main(["--out", str(tmp_path), "--num-train", "30", "--num-val", "0", "--seq-len", "25",
               "--manoeuvres", "--frame-step", "2", "--seed", "3"])
    with np.load(tmp_path / "train" / "trajectories.npz") as npz:
        assert npz["boxes"].shape == (30, 25, 4)
        params = json.loads(str(npz["params"]))
    assert params["manoeuvre_prob"] == 1.0 and params["frame_step"] == 2
    with pytest.raises(UserError, match="frame-step"):
        traj.main(["--out", str(tmp_path), "--frame-step", "0"])


# ----------------------------------------------------------------------------- N-target samples


def stack(samples, key):
    return np.stack([s[key] for s in samples])


def target_missing(sample) -> np.ndarray:
    """(T, N) True where no detection belongs to the target; a detection belongs to the nearest box (L2)."""
    det, gt = sample["det"], sample["gt"]
    dist = np.linalg.norm(det[:, :, None] - gt[:, None], axis=-1)                  # (T, K, N)
    nearest = np.where(np.isfinite(dist).all(-1), np.nanargmin(np.nan_to_num(dist, nan=np.inf), -1), -1)
    return ~(nearest[..., None] == np.arange(gt.shape[1])).any(1)


def test_occlusion_removes_one_target_for_runs_of_8_to_15_frames():
    kw = dict(seq_len=60, miss_prob=0.0)
    plain = gen.synthetic_samples(60, rng=np.random.default_rng(7), **kw)
    occl = gen.synthetic_samples(60, rng=np.random.default_rng(7), occlusion=True, **kw)
    np.testing.assert_array_equal(stack(plain, "gt"), stack(occl, "gt"))
    num_runs = []
    for p, o in zip(plain, occl):
        assert not target_missing(p).any()
        present = np.isfinite(o["det"]).all(-1)
        np.testing.assert_array_equal(o["det"][present], p["det"][present])    # nothing else changes
        missing = target_missing(o)
        assert (~present).sum() == missing.sum()
        hit = np.flatnonzero(missing.any(0))
        assert len(hit) == 1                                                    # exactly one target
        runs = runs_of(missing[:, hit[0]])
        assert all(8 <= n <= 15 and start > 0 for start, n in runs)
        num_runs.append(len(runs))
    assert set(num_runs) == {1, 2}


def test_occlusion_runs_are_not_lengthened_by_random_misses():
    samples = gen.synthetic_samples(60, seq_len=50, miss_prob=0.3, occlusion=True, rng=np.random.default_rng(8))
    for s in samples:
        missing = target_missing(s)
        assert not missing[0].any()
        long_runs = [(n, r) for n in range(3) for r in runs_of(missing[:, n]) if r[1] >= 8]
        assert len({n for n, _ in long_runs}) == 1
        assert all(8 <= length <= 15 for _, (_, length) in long_runs)


def test_occlusion_needs_room():
    with pytest.raises(UserError, match="seq-len >= 32"):
        gen.synthetic_samples(2, seq_len=30, occlusion=True, rng=np.random.default_rng(0))


@pytest.mark.parametrize("motion", ["pan", "jitter", "pan+jitter"])
def test_camera_shift_is_common_to_every_box_of_a_frame(motion):
    kw = dict(seq_len=40, miss_prob=0.2, clutter_rate=1.0, crossing_fraction=0.5)
    plain = gen.synthetic_samples(30, rng=np.random.default_rng(9), **kw)
    moved = gen.synthetic_samples(30, rng=np.random.default_rng(9), camera_motion=motion, camera_magnitude=5.0,
                                  **kw)
    shifts = []
    for p, m in zip(plain, moved):
        boxes = np.concatenate([m["gt"] - p["gt"], m["det"] - p["det"]], axis=1)     # (T, N + K, 4)
        np.testing.assert_array_equal(np.isnan(m["det"]), np.isnan(p["det"]))
        shift = np.nanmean(boxes, axis=1)                                               # (T, 4)
        assert np.nanmax(np.abs(boxes - shift[:, None])) < 1e-3                         # one shift per frame
        np.testing.assert_allclose(shift[:, :2], shift[:, 2:], atol=1e-3)             # both corners alike
        np.testing.assert_allclose(m["init"] - p["init"], np.broadcast_to(shift[0], (3, 4)), atol=1e-3)
        shifts.append(shift[:, :2])
    shifts = np.stack(shifts)                                                           # (B, T, 2)
    step = np.linalg.norm(np.diff(shifts, axis=1), axis=-1)
    if motion == "pan":
        assert step.max() == pytest.approx(5.0, abs=1e-3)          # 5 px per frame once the pan starts
        assert set(np.round(step.ravel(), 3)) <= {0.0, 5.0}
    if motion == "jitter":
        assert np.abs(shifts[:, 0]).max() == 0.0
        assert shifts[:, 1:].std() == pytest.approx(5.0, rel=0.15)


def test_half_frame_rate_samples_move_twice_as_far_per_frame():
    base = gen.synthetic_samples(300, seq_len=30, rng=np.random.default_rng(4))
    half = gen.synthetic_samples(300, seq_len=30, rng=np.random.default_rng(4), params=P(frame_step=2))
    assert mean_speed(stack(half, "gt").transpose(0, 2, 1, 3)) / mean_speed(
        stack(base, "gt").transpose(0, 2, 1, 3)) == pytest.approx(2.0, abs=0.35)


def all_flags(seed):
    return gen.synthetic_samples(10, seq_len=40, miss_prob=0.15, clutter_rate=0.8, crossing_fraction=0.5,
                                 occlusion=True, camera_motion="pan+jitter", camera_magnitude=3.0,
                                 rng=np.random.default_rng(seed), params=P(frame_step=2, manoeuvre_prob=1.0))


def test_all_flags_combine_and_are_seeded():
    a, b, c = all_flags(11), all_flags(11), all_flags(12)
    for x, y in zip(a, b):
        for key in ("det", "gt", "init"):
            np.testing.assert_array_equal(x[key], y[key])
    assert not np.allclose(a[0]["gt"], c[0]["gt"])
    for s in a:
        assert s["gt"].shape == (40, 3, 4) and s["det"].shape[1] >= 3
        np.testing.assert_array_equal(s["init"], s["det"][0, :3])
        assert np.isfinite(s["det"][0, :3]).all()


def test_cli_writes_a_hard_set_and_records_the_flags(tmp_path):
    gen.main(["--synthetic", "--out", str(tmp_path), "--num-samples", "6", "--seq-len", "40", "--seed", "2",
              "--frame-step", "2", "--manoeuvres", "--occlusion", "--camera-motion", "jitter",
              "--camera-magnitude", "2", "--clutter-rate", "0.5"])
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["args"]["frame_step"] == 2 and meta["args"]["occlusion"] and meta["args"]["manoeuvres"]
    assert meta["args"]["camera_motion"] == "jitter"
    assert len(list(tmp_path.glob("synthetic_*.npz"))) == 6
    with pytest.raises(UserError, match="frame-step"):
        gen.main(["--synthetic", "--out", str(tmp_path / "x"), "--frame-step", "0"])
