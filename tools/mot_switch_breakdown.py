"""Where do identity switches and fragmentations happen? A breakdown per method on one MOT set.

    python tools/mot_switch_breakdown.py data/generated/mot_sets/synthetic/val \
        --dvae model/pretrained/mot_srnn_causal.pt --tau 0.1 --init-subseq-len 30 \
        --kf-tau 0.3 --kf-init-subseq-len 5 --kf-accel 0.01

Every ID switch (motmetrics ``SWITCH`` event) and fragmentation (an object matched again after frames
without a match) is put in the first class that applies, looking at frames t-3..t:

- ``crossing``: the object's ground-truth box overlaps another target's (IoU > 0);
- ``miss``: the object has no detection on one of those frames;
- ``window join``: t is within 2 frames of an initialisation-window boundary (§5.7; VEM methods only, and only for
  windows longer than 5 frames: in a window of 5 or fewer every frame is that close to a boundary);
- ``other``.

It also reports the share of present detections whose final assignment is soft (max_n eta < 0.9), for the
VEM methods. Output: a markdown table on stdout (and ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.mot_dataset import MOTSampleDataset, collate_mot
from model.fast_srnn import ES_MODES, ES_VARS
from model.kf_vem import KalmanDynamics
from model.sort_tracker import sort_track
from model.vem_mot import SRNNDynamics, run_vem
from utils.checkpoint import load_dvae
from utils.errors import run_main
from utils.mot_eval import accumulate, iou_matrix
from utils.mot_experiments import reference_vem_settings

CLASSES = ("crossing", "miss", "window join", "other")
CONTEXT = 3          # frames before an event that are looked at
JOIN_MARGIN = 2      # frames around a window boundary that count as a join


def events(gt: np.ndarray, tracks: np.ndarray) -> list[tuple[str, int, int]]:
    """(kind, frame, object) of every ID switch and fragmentation of one sample. gt (T, N, 4), tracks (T, S, 4)."""
    ev = accumulate(gt, tracks).mot_events
    out = [("switch", int(f), int(o)) for (f, _), o in ev[ev.Type == "SWITCH"]["OId"].items()]
    matched = ev[ev.Type.isin(["MATCH", "SWITCH"])]
    for obj in range(gt.shape[1]):
        frames = sorted(int(f) for (f, _), o in matched["OId"].items() if int(o) == obj)
        out += [("frag", b, obj) for a, b in zip(frames, frames[1:]) if b > a + 1]
    return out


def classify(t: int, obj: int, gt: np.ndarray, det_present: np.ndarray, window: int | None) -> str:
    """The first class of :data:`CLASSES` that applies to an event at frame t of object obj."""
    lo = max(0, t - CONTEXT)
    iou = iou_matrix(gt[lo:t + 1, obj:obj + 1], gt[lo:t + 1])[:, 0]          # (frames, N)
    iou[:, obj] = 0.0
    if (iou > 0).any():
        return "crossing"
    if not det_present[lo:t + 1, obj].all():
        return "miss"
    if window and window > 2 * JOIN_MARGIN + 1 and min(t % window, window - t % window) <= JOIN_MARGIN:
        return "window join"
    return "other"


def target_detected(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, N) whether each target has a detection with IoU >= 0.5 on each frame. det (T, K, 4), gt (T, N, 4)."""
    return (np.nan_to_num(iou_matrix(gt, det)) >= 0.5).any(-1)


def breakdown(name: str, gt: np.ndarray, det: np.ndarray, tracks: np.ndarray, window: int | None,
              eta: torch.Tensor | None, det_mask: torch.Tensor) -> dict:
    counts = {f"{kind} {c}": 0 for kind in ("switch", "frag") for c in CLASSES}
    for b in range(gt.shape[0]):
        present = target_detected(det[b], gt[b])
        for kind, t, obj in events(gt[b], tracks[b]):
            counts[f"{kind} {classify(t, obj, gt[b], present, window)}"] += 1
    row = {"method": name, **counts}
    if eta is not None:
        hard = eta[..., :gt.shape[2]].amax(-1)[det_mask.bool()]
        row["soft share %"] = 100.0 * (hard < 0.9).float().mean().item()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir")
    ap.add_argument("--dvae", action="append", default=[], help="name=checkpoint (repeatable)")
    ap.add_argument("--num-samples", type=int, default=300)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--init-subseq-len", type=int, default=30)
    ap.add_argument("--z-mode", default="sample")
    ap.add_argument("--var-scale", type=float, default=1.0)
    ap.add_argument("--dvae-es", choices=ES_MODES, default="filter")
    ap.add_argument("--es-var", choices=ES_VARS, default="model", help="MixDVAE dvae_es_var")
    ap.add_argument("--kf-tau", type=float, default=0.1)
    ap.add_argument("--kf-init-subseq-len", type=int, default=30)
    ap.add_argument("--kf-accel", type=float, default=0.01)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dataset = MOTSampleDataset(args.data_dir)
    batch = collate_mot([dataset[i] for i in range(min(args.num_samples, len(dataset)))])
    gt, det = batch["gt"].numpy(), batch["det"].numpy()
    # the shipped config's caps and observation model, as the results tables run them
    dvae = reference_vem_settings(init_subseq_len=args.init_subseq_len, temperature=args.tau)
    kf = reference_vem_settings(init_subseq_len=args.kf_init_subseq_len, temperature=args.kf_tau)
    methods = {f"MixDVAE-{n}": (SRNNDynamics(load_dvae(p, head="gaussian")[0], args.z_mode, var_scale=args.var_scale,
                                             es_mode=args.dvae_es, es_var=args.es_var),
                                dvae) for n, _, p in (s.partition("=") for s in args.dvae)}
    methods["KF-VEM-filter"] = (KalmanDynamics(args.kf_accel, smooth=False), kf)
    methods["KF-VEM-smoother"] = (KalmanDynamics(args.kf_accel, smooth=True), kf)
    rows = []
    for name, (dynamics, settings) in methods.items():
        res = run_vem(batch["det"], batch["det_mask"], batch["init"], dynamics, settings, batch["image_size"])
        rows.append(breakdown(name, gt, det, res.tracks.numpy(), settings.init_subseq_len, res.eta,
                              batch["det_mask"]))
    sort = sort_track(batch["det"], batch["det_mask"], batch["init"]).numpy()
    rows.append(breakdown("SORT", gt, det, sort, None, None, batch["det_mask"]))
    cols = list(rows[0])
    print(f"{len(gt)} samples of {args.data_dir}; event classes checked in this order: {', '.join(CLASSES)}")
    short = [n for n, (_, s) in methods.items() if s.init_subseq_len <= 2 * JOIN_MARGIN + 1]
    if short:
        print(f"{', '.join(short)}: initialisation windows of {2 * JOIN_MARGIN + 1} frames or fewer put every frame "
              f"within {JOIN_MARGIN} of a join, so no event is classed 'window join' for them")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r.get(c, ''):.1f}" if isinstance(r.get(c), float) else str(r.get(c, ""))
                                for c in cols) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run_main(main)
