"""SORT-style MOT baseline (docs/method.md §7): constant-velocity Kalman filters + per-frame Hungarian on IoU.

N tracks start from the ``init`` boxes (one per target, the same as MixDVAE's sources) and none is
ever created or deleted, so the output is directly comparable to MixDVAE's tracks. Each frame:

1. predict every track with a constant-velocity model;
2. match predicted boxes to the frame's present detections by Hungarian assignment maximising IoU
   (scipy, per sample), accepting pairs with IoU >= ``iou_threshold``;
3. update matched tracks with their detection; unmatched tracks keep the prediction.

The state is the box centre and size ``(cx, cy, w, h)`` with one velocity per coordinate. With
diagonal noises every coordinate is an independent 2-D (position, velocity) Kalman filter, so the
algebra below is elementwise over (batch, track, coordinate). All noise standard deviations are
relative to the box size: width for cx and w, height for cy and h (as §5.1's observation noise).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from utils.mot_eval import iou_matrix


def xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    """(..., 4) (x1, y1, x2, y2) -> (..., 4) (cx, cy, w, h)."""
    return np.concatenate([0.5 * (box[..., :2] + box[..., 2:]), box[..., 2:] - box[..., :2]], axis=-1)


def cxcywh_to_xyxy(box: np.ndarray) -> np.ndarray:
    """(..., 4) (cx, cy, w, h) -> (..., 4) (x1, y1, x2, y2)."""
    return np.concatenate([box[..., :2] - 0.5 * box[..., 2:], box[..., :2] + 0.5 * box[..., 2:]], axis=-1)


def _numpy(x, dtype) -> np.ndarray:
    return np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=dtype)


def _size_scale(state: np.ndarray) -> np.ndarray:
    """(..., 4) (cx, cy, w, h) -> (..., 4) (w, h, w, h), the per-coordinate noise scale."""
    return np.concatenate([state[..., 2:], state[..., 2:]], axis=-1)


def hungarian_iou(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Per-sample assignment of tracks to detections maximising total IoU, pairs >= threshold.

    Shape:
        iou: (B, N, K) -> (B, N) detection index per track, -1 when unmatched.
    """
    iou = np.where(iou >= threshold, iou, 0.0)
    match = np.full(iou.shape[:2], -1)
    for b in np.flatnonzero(iou.any(axis=(1, 2))):                   # scipy has no batched solver
        rows, cols = linear_sum_assignment(-iou[b])
        ok = iou[b, rows, cols] > 0
        match[b, rows[ok]] = cols[ok]
    return match


def sort_track(det, det_mask, init, *, iou_threshold: float = 0.3, std_obs: float = 1 / 20,
               std_pos: float = 1 / 20, std_vel: float = 1 / 160, std_vel_init: float = 10 / 160,
               min_size: float = 1e-3):
    """Track N targets through a batch of sequences with the SORT-style baseline (§7).

    Args:
        det: detector boxes (x1, y1, x2, y2), any unit (pixels in the project); NaN when missing.
        det_mask: True for present detections; None = every finite box.
        init: the box each track starts from (frame 0 output).
        iou_threshold: smallest IoU between a predicted track and a detection to match them.
        std_obs: observation noise std, fraction of the detection's width (x) / height (y).
        std_pos: process noise std on positions per frame, fraction of the track's size.
        std_vel: process noise std on velocities per frame, fraction of the track's size.
        std_vel_init: initial velocity std, fraction of the initial box size (initial position
            std is ``std_obs``). Defaults are DeepSORT's (1/20, 1/160, 10/160).
        min_size: floor of the tracked width and height (same unit as the boxes).

    Shape:
        det: (B, T, K, 4), det_mask: (B, T, K), init: (B, N, 4) -> (B, T, N, 4)

    Returns:
        tracks (x1, y1, x2, y2): the filtered box of each track on frames where it was matched,
        the prediction elsewhere (no detection slot at all, K = 0, is all misses). A torch tensor if
        ``det`` is one, else a numpy array (float32).
    """
    as_torch = isinstance(det, torch.Tensor)
    det_np, init = _numpy(det, np.float64), _numpy(init, np.float64)
    mask = np.isfinite(det_np).all(-1) if det_mask is None else _numpy(det_mask, bool)
    B, T, K, _ = det_np.shape
    if K == 0:   # no detection slot at all: one missing slot, so every frame is a miss
        det_np, mask, K = np.full((B, T, 1, 4), np.nan), np.zeros((B, T, 1), bool), 1
    det_np = np.where(mask[..., None], det_np, np.nan)

    x = xyxy_to_cxcywh(init)                                         # (B, N, 4) positions
    x[..., 2:] = np.maximum(x[..., 2:], min_size)
    v = np.zeros_like(x)                                             # velocities
    scale = _size_scale(x)
    p_xx, p_xv, p_vv = (std_obs * scale) ** 2, np.zeros_like(x), (std_vel_init * scale) ** 2
    tracks = np.empty((B, T) + x.shape[1:])
    tracks[:, 0] = cxcywh_to_xyxy(x)
    for t in range(1, T):
        # predict: x <- x + v, P <- F P F^T + Q with F = [[1, 1], [0, 1]]
        scale = _size_scale(x)
        x = x + v
        x[..., 2:] = np.maximum(x[..., 2:], min_size)
        p_xx = p_xx + 2 * p_xv + p_vv + (std_pos * scale) ** 2
        p_xv = p_xv + p_vv
        p_vv = p_vv + (std_vel * scale) ** 2
        # associate
        match = hungarian_iou(iou_matrix(cxcywh_to_xyxy(x), det_np[:, t]), iou_threshold)
        hit = (match >= 0)[..., None]                                # (B, N, 1)
        z = xyxy_to_cxcywh(np.take_along_axis(det_np[:, t], np.maximum(match, 0)[..., None], axis=1))
        z = np.where(hit, z, x)                                      # harmless values where unmatched
        # update: K = P H^T / (H P H^T + R), H = [1, 0]
        s = p_xx + (std_obs * _size_scale(z)) ** 2
        k_x, k_v = p_xx / s, p_xv / s
        innovation = z - x
        x = np.where(hit, x + k_x * innovation, x)
        v = np.where(hit, v + k_v * innovation, v)
        p_xx, p_xv, p_vv = (np.where(hit, p_xx - k_x * p_xx, p_xx), np.where(hit, p_xv - k_x * p_xv, p_xv),
                            np.where(hit, p_vv - k_v * p_xv, p_vv))
        x[..., 2:] = np.maximum(x[..., 2:], min_size)
        tracks[:, t] = cxcywh_to_xyxy(x)
    tracks = tracks.astype(np.float32)
    return torch.from_numpy(tracks) if as_torch else tracks
