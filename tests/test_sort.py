"""SORT-style baseline (§7): constant-velocity Kalman + Hungarian on IoU, N tracks from init."""

import numpy as np
import pytest
import torch

from model.sort_tracker import cxcywh_to_xyxy, hungarian_iou, sort_track, xyxy_to_cxcywh
from utils.mot_eval import mota_idf1

torch.set_num_threads(1)


def walkers(B=4, T=25, N=3, seed=0):
    """Separated targets on straight lines at constant speed (pixels): (B, T, N, 4)."""
    rng = np.random.default_rng(seed)
    start = np.stack([rng.uniform(0, 100, (B, N)), 200.0 * np.arange(N) + rng.uniform(0, 50, (B, N))], -1)
    speed = rng.uniform(-3, 3, (B, 1, N, 2))
    xy = start[:, None] + speed * np.arange(T)[None, :, None, None]
    return np.concatenate([xy, xy + [40.0, 100.0]], axis=-1)


def shuffled(det, seed=0):
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(det.shape[:3]), axis=-1)
    order[:, 0] = np.arange(det.shape[2])
    return np.take_along_axis(det, order[..., None], axis=2)


def test_box_conversions_round_trip():
    box = np.array([[10.0, 20.0, 50.0, 120.0]])
    np.testing.assert_allclose(xyxy_to_cxcywh(box), [[30, 70, 40, 100]])
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(box)), box)


def test_hungarian_iou_threshold_and_one_to_one():
    iou = np.array([[[0.9, 0.8], [0.85, 0.1]], [[0.2, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(hungarian_iou(iou, 0.3), [[1, 0], [-1, -1]])


def test_clean_shuffled_detections_reproduce_gt():
    gt = walkers()
    det = shuffled(gt)
    tracks = sort_track(det, None, gt[:, 0])
    assert isinstance(tracks, np.ndarray) and tracks.shape == gt.shape and tracks.dtype == np.float32
    err = np.abs(tracks - gt).max(axis=(0, 2, 3))               # per frame, pixels
    assert err[0] < 1e-3 and err.max() < 1.0                    # within a pixel while the velocity is learnt,
    assert err[-5:].max() < 0.05                                # then on the detections
    assert mota_idf1(gt, tracks) == (1.0, 1.0)


def test_predicts_through_missed_detections():
    gt = walkers(B=2, T=30, N=2, seed=1)
    det = gt.copy()
    det[:, 12:18, 0] = np.nan                                   # target 0 unseen for 6 frames
    tracks = sort_track(torch.from_numpy(det), torch.from_numpy(np.isfinite(det).all(-1)),
                        torch.from_numpy(gt[:, 0]))
    assert isinstance(tracks, torch.Tensor) and tracks.shape == gt.shape
    # the velocity learnt before the gap carries the box along its line
    np.testing.assert_allclose(tracks[:, 12:18, 0].numpy(), gt[:, 12:18, 0], atol=3.0)
    assert mota_idf1(gt, tracks) == (1.0, 1.0)


def test_masked_and_empty_frames_are_ignored():
    gt = walkers(B=1, T=10, N=2, seed=2)
    det = np.concatenate([gt, gt[:, :, :1] + 300.0], axis=2)   # a clutter box far away
    mask = np.ones(det.shape[:3], dtype=bool)
    mask[:, :, 2] = False                                       # ... masked out
    det[:, 4] = np.nan                                          # and a frame without detections
    mask[:, 4] = False
    det[:, 6, 1] = [0, 0, 0, 0]                                 # a degenerate box, also masked
    mask[:, 6, 1] = False
    tracks = sort_track(det, mask, gt[:, 0])
    assert np.isfinite(tracks).all()
    assert mota_idf1(gt, tracks) == (1.0, 1.0)


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_crossing_targets_keep_identity(noise):
    """Two targets cross at constant speed; the velocity prediction keeps them apart."""
    T = 40
    t = np.arange(T, dtype=float)[:, None]
    x = np.concatenate([100 + 6 * t, 340 - 6 * t], axis=1)     # meet at frame 20
    gt = np.stack([x, np.full_like(x, 50.0), x + 40, np.full_like(x, 150.0)], axis=-1)[None]
    det = shuffled(gt + np.random.default_rng(0).normal(0, noise, gt.shape))
    det[:, 0] = gt[:, 0]
    tracks = sort_track(det, None, gt[:, 0])
    mota, idf1 = mota_idf1(gt, tracks)
    assert idf1 == 1.0 and mota == 1.0
