"""Synthetic single-object bounding-box trajectories for MOT pre-training.

Each trajectory is a sequence of ``T`` boxes ``(x1, y1, x2, y2)`` in normalised image
coordinates (x / image width, y / image height; y grows downwards). The top-left corner's
x and y are each a concatenation of up to three segments with random split points, every
segment one of {static, line, parabola, sinusoid}; the width is log-normal and evolves by
{static, line, parabola} segments; height = width x aspect ratio (normalised units).
Sequences that leave the image are rejected and redrawn.

Two options make the motion harder (for hard test sets, and for pre-training on harder motion):

- ``--manoeuvres`` (``manoeuvre_prob = 1``): the top-left corner follows a manoeuvring walk instead
  of the x/y segments: a random speed and heading, then 1 to ``manoeuvre_max`` events, each a
  **turn** (the heading rotates by 45-150 degrees over a few frames) or a **stop-and-go** (the speed
  ramps down to zero, holds still for 3-12 frames, ramps back up). Speeds are in units of
  ``vel_std_x`` / ``vel_std_y``, so turns are drawn in a frame where x and y move on their own scales.
- ``--frame-step k``: every trajectory is drawn ``k`` times longer (``(T - 1) k + 1`` frames) and every
  k-th frame is kept, so the per-frame motion is k times larger (half frame rate for k = 2).

Run ``python data/mot_generate_synthetic_data.py --out data/generated/mot_synthetic`` to
write ``train/trajectories.npz`` and ``val/trajectories.npz`` (20 000 / 5 000 sequences of
60 frames by default); point ``[User] train_data_dir`` / ``val_data_dir`` at those folders.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.errors import UserError, run_main
from utils.output_dir import check_out_dir, staged_dir

SEGMENT_KINDS = ("static", "line", "parabola", "sinusoid")


@dataclass(frozen=True)
class TrajectoryParams:
    """Generator parameters; scales are per frame in normalised units."""

    vel_std_x: float = 0.00125
    vel_std_y: float = 0.0006
    acc_std_x: float = 0.000037
    acc_std_y: float = 0.00002
    freq_std_x: float = 0.003
    freq_std_y: float = 0.001
    phase_std: float = 3.2
    width_log_mean: float = -3.8
    width_log_std: float = 0.7
    width_vel_std: float = 0.00032
    width_acc_std: float = 0.00001
    aspect_mean: float = 5.26
    aspect_std: float = 0.77
    min_width: float = 0.004
    max_segments: int = 3
    p_static: float = 0.15
    p_line: float = 0.3
    p_parabola: float = 0.3
    p_sinusoid: float = 0.25
    p_width_static: float = 0.25
    p_width_line: float = 0.6
    p_width_parabola: float = 0.15
    frame_step: int = 1
    manoeuvre_prob: float = 0.0
    manoeuvre_max: int = 3
    manoeuvre_turn_prob: float = 0.5
    manoeuvre_speed_min: float = 1.0
    manoeuvre_speed_max: float = 2.5
    manoeuvre_turn_deg_min: float = 45.0
    manoeuvre_turn_deg_max: float = 150.0
    manoeuvre_ramp_max: int = 8
    manoeuvre_stop_min: int = 3
    manoeuvre_stop_max: int = 12


def _segment_bounds(rng: np.random.Generator, n: int, T: int, max_segments: int) -> np.ndarray:
    """Random segment start frames, shape (n, max_segments); unused segments start at T."""
    num = rng.integers(1, max_segments + 1, size=n)
    cuts = np.sort(rng.integers(1, T, size=(n, max_segments - 1)), axis=1)
    starts = np.concatenate([np.zeros((n, 1), dtype=np.int64), cuts], axis=1)
    unused = np.arange(max_segments)[None, :] >= num[:, None]
    starts[unused] = T
    return np.sort(starts, axis=1)


def _piecewise(rng, n, T, probs, vel_std, acc_std, freq_std, phase_std, max_segments) -> np.ndarray:
    """Displacement from the start value of a piecewise motion, shape (n, T).

    Each segment k contributes f_k(tau), f_k(0) = 0, on its own local time tau; the
    value at frame t is the sum of the completed segments' end displacements plus the
    current segment's f_k(tau), so the curve is continuous.
    """
    starts = _segment_bounds(rng, n, T, max_segments)                         # (n, S)
    kinds = rng.choice(len(probs), size=(n, max_segments), p=np.asarray(probs) / np.sum(probs))
    v = rng.normal(0.0, vel_std, size=(n, max_segments))
    a = rng.normal(0.0, acc_std, size=(n, max_segments))
    w = rng.normal(0.0, freq_std, size=(n, max_segments))
    phi = rng.normal(0.0, phase_std, size=(n, max_segments))
    w = np.where(np.abs(w) < 1e-6, 1e-6, w)
    amp = v / w                                                                # peak speed ~ |v|

    def f(tau: np.ndarray) -> np.ndarray:                                      # tau (n, S, ...)
        k = kinds[..., None]
        line = v[..., None] * tau
        para = line + 0.5 * a[..., None] * tau**2
        sinu = amp[..., None] * (np.sin(w[..., None] * tau + phi[..., None]) - np.sin(phi[..., None]))
        return np.select([k == 0, k == 1, k == 2], [np.zeros_like(tau), line, para], sinu)

    ends = np.concatenate([starts[:, 1:], np.full((n, 1), T)], axis=1)
    lengths = np.maximum(ends - starts, 0).astype(np.float64)
    end_disp = f(lengths[..., None])[..., 0] * (lengths > 0)                   # (n, S)
    offsets = np.cumsum(end_disp, axis=1) - end_disp                           # sum of previous segments
    t = np.arange(T)
    seg = (t[None, :, None] >= starts[:, None, :]).sum(-1) - 1                 # (n, T) current segment
    tau = (t[None, :] - np.take_along_axis(starts, seg, axis=1)).astype(np.float64)
    disp_all = f(np.broadcast_to(tau[:, None, :], (n, max_segments, T)).copy())  # (n, S, T)
    cur = np.take_along_axis(disp_all, seg[:, None, :], axis=1)[:, 0]
    return np.take_along_axis(offsets, seg, axis=1) + cur


def _manoeuvres(rng: np.random.Generator, n: int, T: int, p: TrajectoryParams) -> tuple[np.ndarray, np.ndarray]:
    """Displacement (dx, dy), each (n, T), of a manoeuvring walk: turns and stop-and-go (module docstring).

    The velocity at frame t is ``speed x factor_t x (cos heading_t, sin heading_t)`` in units of
    (vel_std_x, vel_std_y); a turn adds a linear ramp to the heading, a stop-and-go multiplies the speed
    by a profile 1 -> 0 (ramp), 0 (hold), 0 -> 1 (ramp). Events may overlap; they then compose.
    """
    t = np.arange(T)[None, :]
    speed = rng.uniform(p.manoeuvre_speed_min, p.manoeuvre_speed_max, size=(n, 1))
    heading = rng.uniform(0.0, 2 * np.pi, size=(n, 1)) + np.zeros((n, T))
    factor = np.ones((n, T))
    num = rng.integers(1, p.manoeuvre_max + 1, size=n)
    for j in range(p.manoeuvre_max):
        active = (j < num)[:, None]
        turn = rng.random((n, 1)) < p.manoeuvre_turn_prob
        start = rng.integers(1, T, size=(n, 1))
        ramp_in, ramp_out = (rng.integers(2, max(p.manoeuvre_ramp_max, 2) + 1, size=(n, 1)) for _ in range(2))
        hold = rng.integers(p.manoeuvre_stop_min, p.manoeuvre_stop_max + 1, size=(n, 1))
        angle = (np.deg2rad(rng.uniform(p.manoeuvre_turn_deg_min, p.manoeuvre_turn_deg_max, size=(n, 1)))
                 * rng.choice([-1.0, 1.0], size=(n, 1)))
        heading += np.where(active & turn, angle * np.clip((t - start) / ramp_in, 0.0, 1.0), 0.0)
        slow = 1.0 - np.clip((t - start) / ramp_in, 0.0, 1.0) + np.clip((t - start - ramp_in - hold) / ramp_out, 0, 1)
        factor *= np.where(active & ~turn, slow, 1.0)
    vx = speed * factor * np.cos(heading) * p.vel_std_x
    vy = speed * factor * np.sin(heading) * p.vel_std_y
    zero = np.zeros((n, 1))
    return (np.concatenate([zero, np.cumsum(vx[:, :-1], 1)], 1), np.concatenate([zero, np.cumsum(vy[:, :-1], 1)], 1))


def generate_trajectories(num_seq: int, T: int, rng: np.random.Generator,
                          params: TrajectoryParams = TrajectoryParams()) -> np.ndarray:
    """Draw ``num_seq`` valid trajectories.

    With ``params.frame_step = k`` the trajectories are drawn at ``(T - 1) k + 1`` frames and every k-th
    frame is kept; with ``params.manoeuvre_prob > 0`` that fraction of them is a manoeuvring walk.

    Returns:
        boxes: (num_seq, T, 4) float32, normalised (x1, y1, x2, y2), inside [0, 1], x1 < x2, y1 < y2.
    """
    p = params
    if p.frame_step < 1:
        raise UserError(f"frame_step must be >= 1, got {p.frame_step}")
    step, T = p.frame_step, (T - 1) * p.frame_step + 1
    out, have = [], 0
    while have < num_seq:
        n = max(2 * (num_seq - have), 64)
        xy_probs = (p.p_static, p.p_line, p.p_parabola, p.p_sinusoid)
        dx = _piecewise(rng, n, T, xy_probs, p.vel_std_x, p.acc_std_x, p.freq_std_x, p.phase_std, p.max_segments)
        dy = _piecewise(rng, n, T, xy_probs, p.vel_std_y, p.acc_std_y, p.freq_std_y, p.phase_std, p.max_segments)
        if p.manoeuvre_prob > 0:
            mx, my = _manoeuvres(rng, n, T, p)
            walk = rng.random((n, 1)) < p.manoeuvre_prob
            dx, dy = np.where(walk, mx, dx), np.where(walk, my, dy)
        w_probs = (p.p_width_static, p.p_width_line, p.p_width_parabola, 0.0)
        dw = _piecewise(rng, n, T, w_probs, p.width_vel_std, p.width_acc_std, 1.0, 0.0, p.max_segments)
        w0 = np.exp(rng.normal(p.width_log_mean, p.width_log_std, size=(n, 1)))
        width = w0 + dw
        aspect = rng.normal(p.aspect_mean, p.aspect_std, size=(n, 1))
        height = width * aspect
        x0 = rng.uniform(0.0, 1.0, size=(n, 1)) * np.clip(1.0 - w0, 0.0, None)
        y0 = rng.uniform(0.0, 1.0, size=(n, 1)) * np.clip(1.0 - w0 * aspect, 0.0, None)
        x1, y1 = x0 + dx, y0 + dy
        boxes = np.stack([x1, y1, x1 + width, y1 + height], axis=-1)
        ok = ((width.min(1) > p.min_width) & (aspect[:, 0] > 0.5)
              & (boxes[..., :2].min(axis=(1, 2)) >= 0.0) & (boxes[..., 2:].max(axis=(1, 2)) <= 1.0))
        out.append(boxes[ok][:, ::step])
        have += int(ok.sum())
    return np.concatenate(out)[:num_seq].astype(np.float32)


def save_split(path: Path, boxes: np.ndarray, params: TrajectoryParams, seed: int) -> None:
    """Write one split as ``.npz`` with ``boxes`` (num_seq, T, 4), ``T``, ``seed`` and the parameters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, boxes=boxes, T=boxes.shape[1], seed=seed, params=json.dumps(asdict(params)))
    tmp.replace(path)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/generated/mot_synthetic"), help="output directory")
    ap.add_argument("--num-train", type=int, default=20000)
    ap.add_argument("--num-val", type=int, default=5000)
    ap.add_argument("--seq-len", type=int, default=60, help="frames per sequence (T)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--manoeuvres", action="store_true",
                    help="every trajectory manoeuvres: turns and stop-and-go (same as --manoeuvre-prob 1)")
    ap.add_argument("--overwrite", action="store_true", help="replace trajectories already in --out")
    for f in fields(TrajectoryParams):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = ap.parse_args(argv)
    if args.manoeuvres:
        args.manoeuvre_prob = 1.0
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.num_train < 1 or args.num_val < 0 or args.seq_len < 2:
        raise UserError("--num-train must be >= 1, --num-val >= 0 and --seq-len >= 2")
    if args.frame_step < 1 or not 0 <= args.manoeuvre_prob <= 1 or args.manoeuvre_max < 1:
        raise UserError("--frame-step must be >= 1, --manoeuvre-prob in [0, 1] and --manoeuvre-max >= 1")
    params = TrajectoryParams(**{f.name: getattr(args, f.name) for f in fields(TrajectoryParams)})
    check_out_dir(args.out, args.overwrite, ("train", "val"))
    rng = np.random.default_rng(args.seed)
    with staged_dir(args.out) as staging:   # both splits appear together, or neither
        written = []
        for split, n in (("train", args.num_train), ("val", args.num_val)):
            if n == 0:
                continue
            boxes = generate_trajectories(n, args.seq_len, rng, params)
            save_split(staging / split / "trajectories.npz", boxes, params, args.seed)
            written.append((args.out / split / "trajectories.npz", boxes.shape))
    for path, shape in written:
        print(f"wrote {path}: {shape[0]} sequences x {shape[1]} frames")


if __name__ == "__main__":
    run_main(main)
