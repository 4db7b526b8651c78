"""Synthetic single-object trajectories: generator properties, CLI, and the torch Dataset."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data.mot_generate_synthetic_data import TrajectoryParams, generate_trajectories, save_split
from data.trajectory_dataset import TrajectoryDataset
from tests.conftest import run_script
from utils.errors import UserError

GENERATOR = "data/mot_generate_synthetic_data.py"


@pytest.fixture(scope="module")
def boxes() -> np.ndarray:
    return generate_trajectories(300, 30, np.random.default_rng(7))


def test_shape_and_dtype(boxes):
    assert boxes.shape == (300, 30, 4) and boxes.dtype == np.float32
    assert np.isfinite(boxes).all()


def test_boxes_are_valid_and_inside_the_image(boxes):
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    assert (x1 < x2).all() and (y1 < y2).all()
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0


def test_height_is_width_times_a_per_sequence_aspect_ratio(boxes):
    aspect = (boxes[..., 3] - boxes[..., 1]) / (boxes[..., 2] - boxes[..., 0])
    np.testing.assert_allclose(aspect, aspect[:, :1].repeat(30, axis=1), rtol=1e-3)
    assert 4.8 < aspect[:, 0].mean() < 5.7                    # ~N(5.26, 0.77), pedestrians


def test_motion_is_continuous(boxes):
    """Segments are joined without jumps: per-frame moves stay at the velocity scale (~1e-3)."""
    assert np.abs(np.diff(boxes, axis=1)).max() < 0.03


def test_static_segments_give_constant_boxes():
    only_static = TrajectoryParams(p_static=1, p_line=0, p_parabola=0, p_sinusoid=0,
                                   p_width_static=1, p_width_line=0, p_width_parabola=0)
    b = generate_trajectories(20, 10, np.random.default_rng(0), only_static)
    np.testing.assert_array_equal(b, b[:, :1].repeat(10, axis=1))


def test_single_line_segments_move_at_constant_velocity():
    one_line = TrajectoryParams(max_segments=1, p_static=0, p_line=1, p_parabola=0, p_sinusoid=0,
                                p_width_static=1, p_width_line=0, p_width_parabola=0)
    b = generate_trajectories(20, 10, np.random.default_rng(0), one_line).astype(np.float64)
    np.testing.assert_allclose(np.diff(b, n=2, axis=1), 0.0, atol=1e-6)
    assert np.abs(np.diff(b, axis=1)).max() > 0


def test_reproducible_with_a_seed_and_different_with_another():
    a = generate_trajectories(50, 12, np.random.default_rng(3))
    np.testing.assert_array_equal(a, generate_trajectories(50, 12, np.random.default_rng(3)))
    assert not np.allclose(a, generate_trajectories(50, 12, np.random.default_rng(4)))


def test_cli_writes_train_and_val_splits(tmp_path):
    out = tmp_path / "traj"
    proc = run_script(GENERATOR, "--out", out, "--num-train", 20, "--num-val", 10, "--seq-len", 15,
                      "--seed", 3, "--aspect-mean", 4.0)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "train/trajectories.npz", "val/trajectories.npz"]
    assert "train/trajectories.npz" in proc.stdout and "val/trajectories.npz" in proc.stdout
    with np.load(out / "train" / "trajectories.npz") as npz:
        train, T, seed, params = npz["boxes"], int(npz["T"]), int(npz["seed"]), json.loads(str(npz["params"]))
    with np.load(out / "val" / "trajectories.npz") as npz:
        assert npz["boxes"].shape == (10, 15, 4)
    assert train.shape == (20, 15, 4) and T == 15 and seed == 3 and params["aspect_mean"] == 4.0
    # the CLI is the library function with the same seed and parameters
    expected = generate_trajectories(20, 15, np.random.default_rng(3), TrajectoryParams(aspect_mean=4.0))
    np.testing.assert_array_equal(train, expected)


def test_cli_rejects_bad_counts(tmp_path):
    proc = run_script(GENERATOR, "--out", tmp_path, "--num-train", 0)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "--num-train" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_dataset_serves_batches_of_sequences(mot_data):
    ds = TrajectoryDataset(mot_data / "train", sequence_len=20)
    assert len(ds) == 200 and ds[0].shape == (20, 4) and ds[0].dtype == torch.float32
    assert next(iter(DataLoader(ds, batch_size=32))).shape == (32, 20, 4)


def test_dataset_tiles_long_sequences_and_drops_non_finite_ones(tmp_path):
    b = generate_trajectories(6, 25, np.random.default_rng(0))
    b[1, 3, 0] = np.nan
    save_split(tmp_path / "a.npz", b, TrajectoryParams(), 0)
    ds = TrajectoryDataset(tmp_path, sequence_len=10)      # 2 windows of 10 per sequence, last 5 frames dropped
    assert len(ds) == 11
    assert torch.equal(ds[1], torch.from_numpy(b[0, 10:20]))


def test_dataset_errors_name_the_problem(tmp_path):
    with pytest.raises(UserError, match="mot_generate_synthetic_data"):
        TrajectoryDataset(tmp_path, sequence_len=10)
    save_split(tmp_path / "a.npz", generate_trajectories(2, 8, np.random.default_rng(0)), TrajectoryParams(), 0)
    with pytest.raises(UserError, match="8 frames < sequence_len 10"):
        TrajectoryDataset(tmp_path, sequence_len=10)
