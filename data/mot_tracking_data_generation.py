"""Build N-target MOT samples from MOTChallenge sequences or synthetic trajectories.

Every sample is one ``.npz`` with ``det`` (T, K, 4) detector boxes in pixels (NaN rows = no
detection; the order inside a frame is shuffled for t >= 1 and carries no identity), ``gt``
(T, N, 4), ``gt_ids`` (N,), ``init`` (N, 4) = the detection of each target at frame 0,
``image_size`` (width, height), ``sequence`` and ``start_frame``. The output directory also gets
``index.csv`` (one row per sample) and ``metadata.json`` (arguments and dataset statistics).

MOTChallenge (the MOT17-3T protocol)::

    python data/mot_tracking_data_generation.py --mot-root MOT17/train --sequences MOT17-02-SDP \
        --out data/generated/mot17_3t --num-targets 3 --seq-len 60

reads ``SEQ/gt/gt.txt`` and ``SEQ/det/det.txt`` (``--det-file``), matches detections to the ground
truth per frame (Hungarian, IoU >= 0.5), slides a ``--seq-len`` window by ``--slide-step`` frames and
keeps targets annotated on every frame of the window, detected on its first frame and on at least
``--min-obs-ratio`` of its frames; up to ``--max-combinations`` random N-subsets per window.

Synthetic (the demo/test default)::

    python data/mot_tracking_data_generation.py --synthetic --out data/generated/mot_synthetic_3t

renders N trajectories of ``data/mot_generate_synthetic_data.py`` at ``--image-size``; detections
are the boxes plus Gaussian noise (std = ``--noise-ratio`` x width for x, x height for y), missed
with probability ``--miss-prob`` (never on frame 0), plus ``--clutter-rate`` random boxes per frame.
Harder variants, one seeded flag each (they combine):

- ``--frame-step 2``: half frame rate (trajectories drawn twice as long, every 2nd frame kept);
- ``--manoeuvres``: turns and stop-and-go (see ``data/mot_generate_synthetic_data.py``);
- ``--occlusion``: one target per sample is undetected for 1-2 runs of 8-15 consecutive frames
  (``--occlusion-runs``, ``--occlusion-len``), never on frame 0; it is detected on the frame before and
  after each run, so a run is exactly as long as drawn;
- ``--camera-motion pan|jitter|pan+jitter`` with ``--camera-magnitude`` px: one shift per frame, common to
  every box of a sample (ground truth, detections, clutter). A pan starts at a random frame of the first
  half and moves the view by the magnitude per frame in a random direction; a jitter adds an independent
  Gaussian shift of std = magnitude on every frame t >= 1.

Occlusion and camera motion draw from their own child generators (``rng.spawn``), so a sample differs
from the one of the same seed without them only by the occlusion runs and the shift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.mot_from_motchallenge import (MATCH_IOU, MOTSequence, build_from_mot, draw_subsets,  # noqa: E402, F401
                                        find_sequences, gt_layout, load_sequence, match_frame, mot_samples,
                                        valid_windows, window_sample)
from data.mot_generate_synthetic_data import TrajectoryParams  # noqa: E402
from data.mot_samples import (SAMPLE_KEYS, has_crossing, prepare_out_dir, sample_stats,  # noqa: E402, F401
                              shuffle_detections, write_dataset, write_sample)
from data.mot_synthetic_samples import (CAMERA_MOTIONS, OCCLUSION_LEN, OCCLUSION_RUNS,  # noqa: E402, F401
                                        camera_shift, clutter_boxes, crossing_partner, occlusion_mask,
                                        synthetic_samples)
from utils.errors import UserError, run_main  # noqa: E402

def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--mot-root", type=Path, help="directory of MOTChallenge sequence directories")
    src.add_argument("--synthetic", action="store_true",
                     help="synthetic trajectories instead of MOTChallenge")
    ap.add_argument("--out", type=Path, default=Path("data/generated/mot_tracking"), help="output directory")
    ap.add_argument("--overwrite", action="store_true", help="replace samples already in --out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-targets", type=int, default=3, help="N, targets per sample")
    ap.add_argument("--seq-len", type=int, default=60, help="T, frames per sample (sequence_len)")
    ap.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"), default=None,
                    help="image size in pixels (synthetic default 1920 1080; MOT: used without seqinfo.ini)")
    mot = ap.add_argument_group("MOTChallenge")
    mot.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    mot.add_argument("--det-file", default="det/det.txt",
                     help="detection/result file relative to each sequence dir, or absolute; "
                          "{seq} is replaced by the sequence name")
    mot.add_argument("--layout", choices=("auto", "mot15", "mot17"), default="auto",
                     help="gt column layout: mot15 = 10 columns, mot17 (MOT16/17/20) = 9 columns")
    mot.add_argument("--slide-step", type=int, default=40)
    mot.add_argument("--min-obs-ratio", type=float, default=0.65)
    mot.add_argument("--max-combinations", type=int, default=10)
    mot.add_argument("--include-other-detections", action="store_true",
                     help="also keep all other detections of each frame as clutter")
    syn = ap.add_argument_group("synthetic")
    syn.add_argument("--num-samples", type=int, default=500)
    syn.add_argument("--noise-ratio", type=float, default=0.03)
    syn.add_argument("--miss-prob", type=float, default=0.1)
    syn.add_argument("--clutter-rate", type=float, default=0.0)
    syn.add_argument("--crossing-fraction", type=float, default=0.0)
    syn.add_argument("--frame-step", type=int, default=1,
                     help="keep every k-th frame of trajectories drawn k times longer (2 = half frame rate)")
    syn.add_argument("--manoeuvres", action="store_true", help="trajectories with turns and stop-and-go")
    syn.add_argument("--occlusion", action="store_true",
                     help="one target per sample undetected for --occlusion-runs runs of --occlusion-len frames")
    syn.add_argument("--occlusion-len", type=int, nargs=2, default=list(OCCLUSION_LEN), metavar=("MIN", "MAX"))
    syn.add_argument("--occlusion-runs", type=int, nargs=2, default=list(OCCLUSION_RUNS), metavar=("MIN", "MAX"))
    syn.add_argument("--camera-motion", choices=CAMERA_MOTIONS, default="none",
                     help="shift common to every box of a sample")
    syn.add_argument("--camera-magnitude", type=float, default=4.0,
                     help="pan speed (px per frame) and jitter std (px) of --camera-motion")
    return ap.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    checks = [(args.num_targets >= 1, "--num-targets must be >= 1"),
              (args.seq_len >= 2, "--seq-len must be >= 2"),
              (args.slide_step >= 1, "--slide-step must be >= 1"),
              (0 < args.min_obs_ratio <= 1, "--min-obs-ratio must be in (0, 1]"),
              (args.max_combinations >= 1, "--max-combinations must be >= 1"),
              (args.num_samples >= 1, "--num-samples must be >= 1"),
              (args.noise_ratio >= 0, "--noise-ratio must be >= 0"),
              (0 <= args.miss_prob < 1, "--miss-prob must be in [0, 1)"),
              (args.clutter_rate >= 0, "--clutter-rate must be >= 0"),
              (0 <= args.crossing_fraction <= 1, "--crossing-fraction must be in [0, 1]"),
              (args.crossing_fraction == 0 or args.num_targets >= 2,
               "--crossing-fraction needs --num-targets >= 2"),
              (args.image_size is None or min(args.image_size) > 0, "--image-size must be positive"),
              (args.frame_step >= 1, "--frame-step must be >= 1"),
              (1 <= args.occlusion_len[0] <= args.occlusion_len[1], "--occlusion-len needs 1 <= MIN <= MAX"),
              (1 <= args.occlusion_runs[0] <= args.occlusion_runs[1], "--occlusion-runs needs 1 <= MIN <= MAX"),
              (args.camera_magnitude >= 0, "--camera-magnitude must be >= 0")]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def main(argv=None) -> None:
    args = parse_args(argv)
    check_args(args)
    prepare_out_dir(args.out, args.overwrite)
    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        size = tuple(args.image_size) if args.image_size else (1920, 1080)
        params = TrajectoryParams(frame_step=args.frame_step, manoeuvre_prob=1.0 if args.manoeuvres else 0.0)
        samples = synthetic_samples(args.num_samples, seq_len=args.seq_len, num_targets=args.num_targets,
                                    image_size=size, noise_ratio=args.noise_ratio, miss_prob=args.miss_prob,
                                    clutter_rate=args.clutter_rate, crossing_fraction=args.crossing_fraction,
                                    occlusion=args.occlusion, occlusion_len=tuple(args.occlusion_len),
                                    occlusion_runs=tuple(args.occlusion_runs), camera_motion=args.camera_motion,
                                    camera_magnitude=args.camera_magnitude, rng=rng, params=params)
        names = [f"synthetic_{i:06d}" for i in range(len(samples))]
        extra = {"crossing_fraction_requested": args.crossing_fraction}
    else:
        samples, names, extra = build_from_mot(args, rng)
    meta = {"mode": "synthetic" if args.synthetic else "motchallenge",
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, **extra}
    rows = write_dataset(args.out, samples, names, meta)
    print(f"wrote {len(rows)} samples (T={args.seq_len}, N={args.num_targets}) to {args.out}, "
          f"plus {args.out / 'index.csv'} and {args.out / 'metadata.json'}")


if __name__ == "__main__":
    run_main(main)
