"""Synthetic N-target samples: trajectories of ``data/mot_generate_synthetic_data.py`` rendered at an image
size, detections = boxes + Gaussian noise, missed detections, clutter, and the harder variants
(crossings, occlusion runs, camera motion). The embedded default for the demo and the tests.
"""

from __future__ import annotations

import numpy as np

from data.mot_generate_synthetic_data import TrajectoryParams, generate_trajectories
from data.mot_samples import shuffle_detections
from utils.errors import UserError

def _centers(boxes: np.ndarray) -> np.ndarray:
    return 0.5 * (boxes[..., :2] + boxes[..., 2:])


def crossing_partner(anchor: np.ndarray, rng: np.random.Generator, params: TrajectoryParams,
                     max_rounds: int = 1000) -> np.ndarray:
    """A trajectory per anchor whose box overlaps the anchor's at a random frame.

    A fresh single-object trajectory is translated so that, at a random frame t*, its centre lies within a
    quarter box of the anchor's centre (so the boxes overlap); translations leaving the image are
    redrawn.

    Shape:
        anchor: (M, T, 4) normalised boxes -> (M, T, 4).
    """
    M, T, _ = anchor.shape
    out = np.empty_like(anchor)
    todo = np.arange(M)
    for _ in range(max_rounds):
        if len(todo) == 0:
            return out
        cand = generate_trajectories(len(todo), T, rng, params)
        t_star = rng.integers(0, T, size=len(todo))
        a, c = anchor[todo, t_star], cand[np.arange(len(todo)), t_star]  # (m, 4)
        size = np.minimum(a[:, 2:] - a[:, :2], c[:, 2:] - c[:, :2])
        shift = _centers(a) - _centers(c) + rng.uniform(-0.25, 0.25, size=size.shape) * size
        moved = cand + np.tile(shift, 2)[:, None, :]
        ok = (moved.min(axis=(1, 2)) >= 0) & (moved.max(axis=(1, 2)) <= 1)
        out[todo[ok]] = moved[ok]
        todo = todo[~ok]
    raise UserError("could not place crossing trajectories inside the image: lower --crossing-fraction")


def clutter_boxes(shape: tuple, rng: np.random.Generator, params: TrajectoryParams) -> np.ndarray:
    """Random pedestrian-like boxes (the generator's size law) anywhere in the image, normalised. -> shape + (4,)."""
    w = np.clip(np.exp(rng.normal(params.width_log_mean, params.width_log_std, shape)), params.min_width, 0.5)
    h = np.clip(w * np.clip(rng.normal(params.aspect_mean, params.aspect_std, shape), 0.5, None), None, 0.95)
    x1, y1 = rng.uniform(size=shape) * (1 - w), rng.uniform(size=shape) * (1 - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=-1)


OCCLUSION_LEN = (8, 15)
OCCLUSION_RUNS = (1, 2)
CAMERA_MOTIONS = ("none", "pan", "jitter", "pan+jitter")


def occlusion_mask(B: int, T: int, N: int, rng: np.random.Generator, run_len: tuple[int, int] = OCCLUSION_LEN,
                   runs: tuple[int, int] = OCCLUSION_RUNS) -> tuple[np.ndarray, np.ndarray]:
    """Long occlusions: per sample, one random target undetected for ``runs`` runs of ``run_len`` frames.

    Runs never touch frame 0 and are separated by at least one frame; the frames just before and after
    each run are returned as ``visible`` so that random misses cannot lengthen a run.

    Returns:
        occluded, visible: (B, T, N) bool.
    """
    lo, hi = run_len
    need = runs[1] * (hi + 1)                                         # frame 0, the runs, the gaps between
    if need > T:
        raise UserError(f"occlusions of up to {runs[1]} runs of {hi} frames need --seq-len >= {need}, got {T}")
    num = rng.integers(runs[0], runs[1] + 1, size=B)
    length = rng.integers(lo, hi + 1, size=(B, runs[1])) * (np.arange(runs[1]) < num[:, None])
    free = T - 1 - length.sum(1) - (num - 1)                          # frames left for the gaps
    gaps = np.diff(np.sort(rng.integers(0, free[:, None] + 1, size=(B, runs[1] + 1)), 1), prepend=0, axis=1)
    gaps[:, 1:] += 1                                                  # at least one frame between runs
    starts = 1 + np.cumsum(gaps[:, :-1], 1) + np.cumsum(length, 1) - length   # (B, R)
    t = np.arange(T)[None, :, None]
    inside = (t >= starts[:, None]) & (t < (starts + length)[:, None]) & (length[:, None] > 0)   # (B, T, R)
    edge = ((t == starts[:, None] - 1) | (t == (starts + length)[:, None])) & (length[:, None] > 0)
    target = rng.integers(0, N, size=B)
    one = np.arange(N)[None, None, :] == target[:, None, None]       # (B, 1, N)
    return inside.any(-1)[..., None] & one, edge.any(-1)[..., None] & one


def camera_shift(B: int, T: int, motion: str, magnitude: float, rng: np.random.Generator) -> np.ndarray:
    """Per-frame camera shift in pixels, common to every box of a sample (module docstring).

    Returns:
        (B, T, 4) shift of (x1, y1, x2, y2) (the same (dx, dy) on both corners).
    """
    if motion not in CAMERA_MOTIONS:
        raise UserError(f"--camera-motion must be one of {', '.join(CAMERA_MOTIONS)}, got {motion!r}")
    shift = np.zeros((B, T, 2))
    t = np.arange(T)[None, :, None]
    if "pan" in motion:
        angle = rng.uniform(0, 2 * np.pi, size=(B, 1, 1))
        start = rng.integers(0, max(T // 2, 1), size=(B, 1, 1))
        direction = np.concatenate([np.cos(angle), np.sin(angle)], -1)
        shift += magnitude * direction * np.maximum(t - start, 0)
    if "jitter" in motion:
        jitter = rng.normal(0.0, magnitude, size=(B, T, 2))
        jitter[:, 0] = 0.0
        shift += jitter
    return np.tile(shift, 2)


def synthetic_samples(num_samples: int, *, seq_len: int = 60, num_targets: int = 3,
                      image_size: tuple[int, int] = (1920, 1080), noise_ratio: float = 0.03,
                      miss_prob: float = 0.1, clutter_rate: float = 0.0, crossing_fraction: float = 0.0,
                      occlusion: bool = False, occlusion_len: tuple[int, int] = OCCLUSION_LEN,
                      occlusion_runs: tuple[int, int] = OCCLUSION_RUNS, camera_motion: str = "none",
                      camera_magnitude: float = 0.0, rng: np.random.Generator,
                      params: TrajectoryParams | None = None) -> list[dict]:
    """Synthetic samples: N single-object trajectories rendered in pixels with noisy detections.

    Args:
        num_samples: number of samples B.
        seq_len, num_targets: T and N.
        image_size: (width, height) in pixels.
        noise_ratio: detection noise std as a fraction of the box width (x) / height (y).
        miss_prob: probability that a target has no detection on a frame t >= 1.
        clutter_rate: mean number (Poisson) of extra random boxes per frame.
        crossing_fraction: fraction of samples built so that two targets overlap on some frame
            (the others are drawn independently and may cross by chance).
        occlusion, occlusion_len, occlusion_runs: long occlusions of one target (:func:`occlusion_mask`).
        camera_motion, camera_magnitude: shift common to all boxes (:func:`camera_shift`), pixels.
        rng: random generator (the only source of randomness).
        params: trajectory parameters, e.g. ``frame_step`` (half frame rate) or ``manoeuvre_prob``.

    Returns:
        list of sample dicts with the :data:`SAMPLE_KEYS`; ``det`` is (T, N + max clutter, 4).
    """
    B, T, N = num_samples, seq_len, num_targets
    params = params or TrajectoryParams()
    occlusion_rng, camera_rng = rng.spawn(2)                         # leave the main stream untouched
    traj = generate_trajectories(B * N, T, rng, params).reshape(B, N, T, 4).astype(np.float64)
    num_cross = round(crossing_fraction * B) if N >= 2 else 0
    if num_cross:
        traj[:num_cross, 1] = crossing_partner(traj[:num_cross, 0], rng, params)
    traj = np.take_along_axis(traj, rng.permuted(np.tile(np.arange(N), (B, 1)), axis=1)[..., None, None], 1)
    traj = traj[rng.permutation(B)]
    scale = np.tile(np.asarray(image_size, dtype=np.float64), 2)
    gt = traj.transpose(0, 2, 1, 3) * scale                          # (B, T, N, 4) pixels
    wh = np.tile(gt[..., 2:] - gt[..., :2], 2)
    det = gt + rng.normal(size=gt.shape) * noise_ratio * wh
    missed = rng.random((B, T, N)) < miss_prob
    missed[:, 0] = False
    if occlusion:
        occluded, visible = occlusion_mask(B, T, N, occlusion_rng, occlusion_len, occlusion_runs)
        missed = (missed & ~visible) | occluded
    det[missed] = np.nan
    counts = rng.poisson(clutter_rate, size=(B, T)) if clutter_rate > 0 else np.zeros((B, T), dtype=np.int64)
    clutter = clutter_boxes((B, T, int(counts.max())), rng, params) * scale
    clutter[np.arange(clutter.shape[2]) >= counts[..., None]] = np.nan
    num_slots = N + counts.max(1)
    det = shuffle_detections(np.concatenate([det, clutter], axis=2), rng, num_slots)
    if camera_motion != "none":
        shift = camera_shift(B, T, camera_motion, camera_magnitude, camera_rng)
        gt, det = gt + shift[:, :, None], det + shift[:, :, None]
    return [{"det": det[b, :, :num_slots[b]], "gt": gt[b], "gt_ids": np.arange(N), "init": det[b, 0, :N],
             "image_size": np.asarray(image_size), "sequence": "synthetic", "start_frame": 1}
            for b in range(B)]

