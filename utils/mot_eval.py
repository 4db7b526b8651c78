"""MOT evaluation: IoU, CLEAR-MOT / ID metrics (py-motmetrics) and HOTA (TrackEval) (docs/method.md (8.1)).

Every sample is scored on its own: objects are the ground-truth targets ``0..N-1``, hypotheses
are the tracker's sources ``0..S-1`` (MixDVAE: source ``n`` with box ``m_tn`` on every frame),
the distance is ``1 - IoU`` and pairs with IoU < 0.5 may not be matched. A NaN box means "absent
on this frame" for an object or a hypothesis.

- :func:`accumulate` builds one ``motmetrics.MOTAccumulator`` per sample, :func:`hota_input` the
  per-sequence dict TrackEval's ``HOTA.eval_sequence`` expects, and :func:`mot_summary` turns both
  into one table (a row per sample plus ``OVERALL``). :func:`evaluate_mot` does all three for a batch.
- :func:`mota_idf1` is a vectorised re-implementation of motmetrics' MOTA and IDF1 for per-iteration
  convergence curves, where building pandas accumulators would dominate the run time.

motmetrics' own ``distances.iou_matrix`` uses ``np.asfarray`` (removed in NumPy 2), hence
:func:`iou_matrix` here. MOTP is motmetrics' definition: mean ``1 - IoU`` over matches (lower is better).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import motmetrics as mm
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from trackeval.metrics import HOTA

IOU_THRESHOLD = 0.5

MOT_METRICS = ("mota", "motp", "idf1", "idp", "idr", "num_switches", "num_false_positives", "num_misses",
               "mostly_tracked", "partially_tracked", "mostly_lost", "num_fragmentations")
HOTA_METRICS = ("hota", "deta", "assa")

# Above this many rows/columns the exhaustive search over permutations in `_match` gives way to scipy.
_MAX_PERMUTATION_SIZE = 6


def _as_numpy(x) -> np.ndarray:
    """float64 numpy view of an array or a (CPU, possibly grad-carrying) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def iou_matrix(a, b) -> np.ndarray:
    """Pairwise intersection-over-union of boxes ``(x1, y1, x2, y2)``.

    Boxes with a NaN coordinate, zero area or inverted corners have IoU 0 with everything.

    Args:
        a: boxes, numpy array or torch tensor.
        b: boxes, same leading dimensions as ``a`` (broadcastable).

    Shape:
        a: (..., M, 4), b: (..., K, 4) -> (..., M, K)

    Returns:
        float64 numpy array of IoU values in [0, 1].
    """
    a = _as_numpy(a)[..., :, None, :]
    b = _as_numpy(b)[..., None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0.0, None) * np.clip(a[..., 3] - a[..., 1], 0.0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0.0, None) * np.clip(b[..., 3] - b[..., 1], 0.0, None)
    union = area_a + area_b - inter
    ok = (union > 0) & (inter > 0)                                   # False for NaN boxes
    return np.divide(inter, union, out=np.zeros(np.broadcast_shapes(inter.shape, union.shape)), where=ok)


def _present(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) -> (...,) True where the box has no NaN."""
    return np.isfinite(boxes).all(axis=-1)


def accumulate(gt, tracks, iou_threshold: float = IOU_THRESHOLD) -> mm.MOTAccumulator:
    """motmetrics accumulator of one sample (§8.1).

    Args:
        gt: ground-truth boxes in pixels, NaN where a target is not annotated.
        tracks: hypothesis boxes in pixels, NaN where a source outputs nothing.

    Shape:
        gt: (T, N, 4), tracks: (T, S, 4)

    Returns:
        ``MOTAccumulator`` with object ids ``0..N-1`` and hypothesis ids ``0..S-1``, distance
        ``1 - IoU`` and NaN (not pairable) where IoU < 0.5.
    """
    gt, tracks = _as_numpy(gt), _as_numpy(tracks)
    iou = iou_matrix(gt, tracks)                                     # (T, N, S)
    dist = np.where(iou >= iou_threshold, 1.0 - iou, np.nan)
    obj_on, hyp_on = _present(gt), _present(tracks)
    acc = mm.MOTAccumulator(auto_id=True)
    for t in range(gt.shape[0]):
        oids, hids = np.flatnonzero(obj_on[t]), np.flatnonzero(hyp_on[t])
        acc.update(oids, hids, dist[t][np.ix_(oids, hids)])
    return acc


def hota_input(gt, tracks) -> dict:
    """The per-sequence dict TrackEval's ``HOTA.eval_sequence`` expects (similarity = IoU).

    Shape:
        gt: (T, N, 4), tracks: (T, S, 4), NaN boxes absent.

    Returns:
        dict with ``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``, ``num_gt_dets``,
        ``num_tracker_dets`` and per-frame lists ``gt_ids``, ``tracker_ids``, ``similarity_scores``.
    """
    gt, tracks = _as_numpy(gt), _as_numpy(tracks)
    iou = iou_matrix(gt, tracks)
    obj_on, hyp_on = _present(gt), _present(tracks)
    gt_ids = [np.flatnonzero(o) for o in obj_on]
    tracker_ids = [np.flatnonzero(h) for h in hyp_on]
    return {
        "num_timesteps": gt.shape[0],
        "num_gt_ids": gt.shape[1],
        "num_tracker_ids": tracks.shape[1],
        "num_gt_dets": int(obj_on.sum()),
        "num_tracker_dets": int(hyp_on.sum()),
        "gt_ids": gt_ids,
        "tracker_ids": tracker_ids,
        "similarity_scores": [s[np.ix_(o, h)] for s, o, h in zip(iou, gt_ids, tracker_ids)],
    }


def _hota_row(res: dict) -> dict:
    """HOTA, DetA, AssA averaged over TrackEval's localisation thresholds alpha = 0.05 .. 0.95."""
    return {"hota": float(np.mean(res["HOTA"])), "deta": float(np.mean(res["DetA"])),
            "assa": float(np.mean(res["AssA"]))}


def mot_summary(accs: Sequence[mm.MOTAccumulator], names: Sequence[str],
                hota_inputs: Sequence[dict] | None = None) -> pd.DataFrame:
    """Dataset table of MOT metrics: one row per sample plus ``OVERALL`` (§8.1).

    Args:
        accs: one accumulator per sample (:func:`accumulate`).
        names: sample names (row index), unique.
        hota_inputs: optional per-sample :func:`hota_input` dicts, same order; adds ``hota``,
            ``deta``, ``assa`` columns (``OVERALL`` = TrackEval's ``combine_sequences``).

    Returns:
        DataFrame indexed by name with columns :data:`MOT_METRICS` (+ :data:`HOTA_METRICS`).
        Rates are fractions (MOTA 0.6 = 60 %); MOTP is the mean 1 - IoU of matches.
    """
    names = [str(n) for n in names]
    if len(accs) != len(names) or len(set(names)) != len(names):
        raise ValueError("mot_summary needs one unique name per accumulator")
    host = mm.metrics.create()
    table = host.compute_many(list(accs), names=names, metrics=list(MOT_METRICS), generate_overall=True)
    table = table[list(MOT_METRICS)]
    if hota_inputs is not None:
        metric = HOTA()
        per_seq = {name: metric.eval_sequence(data) for name, data in zip(names, hota_inputs)}
        rows = {name: _hota_row(res) for name, res in per_seq.items()}
        rows["OVERALL"] = _hota_row(metric.combine_sequences(per_seq))
        table = table.join(pd.DataFrame.from_dict(rows, orient="index"))
    return table


def evaluate_mot(gt, tracks, names: Sequence[str] | None = None,
                 iou_threshold: float = IOU_THRESHOLD) -> pd.DataFrame:
    """:func:`mot_summary` (with HOTA) of a batch of samples.

    Shape:
        gt: (B, T, N, 4), tracks: (B, T, S, 4), pixels, NaN boxes absent.

    Returns:
        DataFrame as :func:`mot_summary`; rows named ``names`` (default ``"0".."B-1"``) and ``OVERALL``.
    """
    gt, tracks = _as_numpy(gt), _as_numpy(tracks)
    names = [str(b) for b in range(gt.shape[0])] if names is None else list(names)
    accs = [accumulate(g, h, iou_threshold) for g, h in zip(gt, tracks)]
    return mot_summary(accs, names, [hota_input(g, h) for g, h in zip(gt, tracks)])


def _match(valid: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Batched assignment: most valid pairs first, then least total cost (motmetrics' rule).

    Args:
        valid: pairs allowed to match.
        cost: pair costs in [-1, 1] (only valid pairs count).

    Shape:
        valid, cost: (B, R, C) -> (B, R)

    Returns:
        int array, column matched to each row, -1 for unmatched rows.
    """
    B, R, C = valid.shape
    M = max(R, C)
    if M == 0:
        return np.full((B, R), -1)
    cost = np.where(valid, cost, 0.0)
    if M > _MAX_PERMUTATION_SIZE:
        col = np.full((B, R), -1)
        for b in range(B):                                           # rare: more than 6 targets
            big = 4.0 * M + 1.0                                      # beats any sum of valid costs
            rows, cols = linear_sum_assignment(np.where(valid[b], cost[b], big))
            keep = valid[b, rows, cols]
            col[b, rows[keep]] = cols[keep]
        return col
    v = np.zeros((B, M, M), dtype=bool)
    c = np.zeros((B, M, M))
    v[:, :R, :C], c[:, :R, :C] = valid, cost
    perms = np.array(list(itertools.permutations(range(M))))        # (P, M)
    rows = np.arange(M)[None, :]
    pv, pc = v[:, rows, perms], c[:, rows, perms]                    # (B, P, M)
    score = pv.sum(-1) * (2.0 * M + 1.0) - (pc * pv).sum(-1)         # count first, then cost
    best = perms[score.argmax(-1)]                                   # (B, M)
    matched = np.take_along_axis(v, best[:, :, None], axis=2)[..., 0]
    return np.where(matched, best, -1)[:, :R]


def mot_counts(gt, tracks, iou_threshold: float = IOU_THRESHOLD) -> dict[str, np.ndarray]:
    """Per-sample CLEAR-MOT and ID counts, computed as motmetrics does, vectorised over the batch.

    Frame by frame: previous object-hypothesis pairs still within IoU >= 0.5 are kept; the rest is
    matched maximising the number of pairs, then minimising sum(1 - IoU); a match to another
    hypothesis than the object's last one is an ID switch. IDTP is the best one-to-one
    object/hypothesis assignment of the per-pair counts of frames with IoU >= 0.5.

    Shape:
        gt: (B, T, N, 4), tracks: (B, T, S, 4), NaN boxes absent.

    Returns:
        dict of (B,) arrays: ``num_objects``, ``num_predictions``, ``num_matches``, ``num_misses``,
        ``num_false_positives``, ``num_switches``, ``idtp``.
    """
    gt, tracks = _as_numpy(gt), _as_numpy(tracks)
    B, T, N, _ = gt.shape
    S = tracks.shape[2]
    iou = iou_matrix(gt, tracks)                                     # (B, T, N, S)
    obj_on, hyp_on = _present(gt), _present(tracks)                  # (B, T, N), (B, T, S)
    valid = (iou >= iou_threshold) & obj_on[..., None] & hyp_on[..., None, :]
    dist = 1.0 - iou
    prev = np.full((B, N), -1)                                       # last hypothesis of each object
    earlier = np.tril(np.ones((N, N), dtype=bool), k=-1)             # earlier[o, o'] = o' < o
    matches = switches = np.zeros(B, dtype=np.int64)
    for t in range(T):
        v_t = valid[:, t]
        # 1. keep previous pairs still valid; an object listed earlier wins a shared hypothesis
        cand = ((prev[..., None] == np.arange(S)) & v_t).any(-1)     # (B, N)
        same = (prev[:, :, None] == prev[:, None, :]) & cand[:, None, :] & earlier[None]
        keep = cand & ~same.any(-1)
        taken = ((prev[..., None] == np.arange(S)) & keep[..., None]).any(1)   # (B, S)
        # 2. optimal assignment of the remaining objects and hypotheses
        rest = v_t & ~keep[..., None] & ~taken[:, None, :]
        new = _match(rest, dist[:, t])
        got = new >= 0
        switches = switches + (got & (prev >= 0) & (prev != new)).sum(-1)
        matches = matches + keep.sum(-1) + got.sum(-1)
        prev = np.where(got, new, prev)
    num_objects, num_predictions = obj_on.sum((1, 2)), hyp_on.sum((1, 2))
    pair_frames = valid.sum(1)                                       # (B, N, S)
    id_col = _match(np.ones_like(pair_frames, dtype=bool), -pair_frames / max(T, 1))
    id_frames = np.take_along_axis(pair_frames, np.maximum(id_col, 0)[..., None], axis=2)[..., 0]
    idtp = np.where(id_col >= 0, id_frames, 0).sum(-1)
    return {"num_objects": num_objects, "num_predictions": num_predictions, "num_matches": matches,
            "num_misses": num_objects - matches, "num_false_positives": num_predictions - matches,
            "num_switches": switches, "idtp": idtp}


def mota_idf1(gt, tracks, per_sample: bool = False, iou_threshold: float = IOU_THRESHOLD):
    """Fast MOTA and IDF1 of a batch, equal to motmetrics' (``OVERALL`` row by default).

    Args:
        gt: ground-truth boxes, NaN where absent.
        tracks: hypothesis boxes, NaN where absent.
        per_sample: return (B,) arrays instead of dataset values.

    Shape:
        gt: (B, T, N, 4), tracks: (B, T, S, 4)

    Returns:
        (mota, idf1): floats (counts summed over the batch, as motmetrics' ``OVERALL``) or (B,) arrays.
        MOTA = 1 - (misses + false positives + switches) / objects; IDF1 = 2 IDTP / (objects + predictions).
    """
    c = mot_counts(gt, tracks, iou_threshold)
    if not per_sample:
        c = {k: v.sum() for k, v in c.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        mota = 1.0 - (c["num_misses"] + c["num_false_positives"] + c["num_switches"]) / c["num_objects"]
        idf1 = 2.0 * c["idtp"] / (c["num_objects"] + c["num_predictions"])
    if per_sample:
        return mota, idf1
    return float(mota), float(idf1)


HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)


def hota_per_sample(gt, tracks) -> dict[str, np.ndarray]:
    """TrackEval's per-sequence HOTA, DetA and AssA (means over alpha = 0.05 .. 0.95), vectorised over samples.

    The same computation as ``HOTA.eval_sequence`` on :func:`hota_input` (similarity = IoU): a global
    alignment score per (object, hypothesis) pair, one assignment per frame maximising alignment x IoU
    among the present boxes, then for each alpha the matches with IoU >= alpha. :func:`mot_summary` calls
    TrackEval itself; this is for many evaluations (tuning grids, bootstrap tables), where TrackEval's
    per-frame Python loops dominate. Ties between equally good assignments may be broken differently.

    Shape:
        gt: (B, T, N, 4), tracks: (B, T, S, 4), NaN boxes absent.

    Returns:
        dict of (B,) arrays ``hota``, ``deta``, ``assa`` (fractions).
    """
    gt, tracks = _as_numpy(gt), _as_numpy(tracks)
    eps = np.finfo(float).eps
    sim = iou_matrix(gt, tracks)                                     # (B, T, N, S), 0 for absent boxes
    obj_on, hyp_on = _present(gt), _present(tracks)
    pair_on = obj_on[..., None] & hyp_on[..., None, :]
    denom = sim.sum(-2, keepdims=True) + sim.sum(-1, keepdims=True) - sim
    sim_iou = np.divide(sim, denom, out=np.zeros_like(sim), where=denom > eps)
    potential = sim_iou.sum(1)                                       # (B, N, S)
    gt_count, trk_count = obj_on.sum(1)[..., None], hyp_on.sum(1)[:, None, :]
    union = gt_count + trk_count - potential
    alignment = np.divide(potential, union, out=np.zeros_like(potential), where=union > 0)
    B, T, N, S = sim.shape
    score = (alignment[:, None] * sim).reshape(B * T, N, S)
    col = _match(pair_on.reshape(B * T, N, S), -score).reshape(B, T, N)   # max #pairs, then max total score
    matched = col >= 0
    match_sim = np.where(matched, np.take_along_axis(sim, np.maximum(col, 0)[..., None], -1)[..., 0], -1.0)
    hit = match_sim[None] >= HOTA_ALPHAS[:, None, None, None] - eps            # (A, B, T, N)
    tp = hit.sum((2, 3)).astype(float)                                          # (A, B)
    fn = obj_on.sum((1, 2))[None] - tp
    fp = hyp_on.sum((1, 2))[None] - tp
    onehot = (np.maximum(col, 0)[..., None] == np.arange(S)) & matched[..., None]   # (B, T, N, S)
    counts = np.einsum("abtn,btns->abns", hit.astype(float), onehot.astype(float))  # (A, B, N, S)
    ass = counts / np.maximum(1, gt_count + trk_count - counts)
    assa = (counts * ass).sum((2, 3)) / np.maximum(1, tp)
    deta = tp / np.maximum(1, tp + fn + fp)
    hota = np.sqrt(deta * assa)
    return {"hota": hota.mean(0), "deta": deta.mean(0), "assa": assa.mean(0)}
