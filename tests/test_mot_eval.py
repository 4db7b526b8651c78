"""MOT evaluation (§8.1): IoU, motmetrics accumulators, HOTA, the fast MOTA/IDF1, MOTChallenge I/O."""

import numpy as np
import pytest
import torch

from utils.errors import UserError
from utils.mot_eval import HOTA_METRICS, MOT_METRICS, accumulate, evaluate_mot, hota_per_sample, iou_matrix, \
    mot_summary, mota_idf1
from utils.mot_io import load_mot_txt, read_tracks, write_results, write_tracks


def box(x, y, w=10.0, h=20.0):
    return [x, y, x + w, y + h]


# ----------------------------------------------------------------------------- IoU


def test_iou_hand_values():
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1]], dtype=float)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 4, 2], [5, 5, 6, 6]], dtype=float)
    expected = np.array([[1 / 7, 1.0, 0.0, 0.0],          # corner overlap; identical; touching edge; far
                         [0.0, 1 / 4, 0.0, 0.0]])         # touching corner; contained quarter
    np.testing.assert_allclose(iou_matrix(a, b), expected)


def test_iou_missing_and_degenerate_boxes_are_zero():
    a = np.array([[0, 0, 2, 2]], dtype=float)
    b = np.array([[np.nan] * 4, [1, 1, 1, 3], [2, 2, 0, 0], [0, 0, 2, 2]])   # NaN, zero width, inverted, same
    np.testing.assert_allclose(iou_matrix(a, b), [[0, 0, 0, 1]])
    assert iou_matrix(b, b)[0, 0] == 0


def test_iou_batched_shapes_and_torch_input():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 5, (2, 3, 1, 4)) + np.array([0, 0, 5, 5])
    b = rng.uniform(0, 5, (2, 3, 6, 4)) + np.array([0, 0, 5, 5])
    iou = iou_matrix(torch.from_numpy(a), torch.from_numpy(b).requires_grad_())
    assert iou.shape == (2, 3, 1, 6)
    np.testing.assert_allclose(iou[1, 2], iou_matrix(a[1, 2], b[1, 2]))
    assert np.all((iou >= 0) & (iou <= 1))


# ----------------------------------------------------------------------------- accumulators / summary


def swap_case():
    """Two far-apart static targets; the hypotheses swap identities at frame 2 of 4."""
    A, B = box(0, 0), box(100, 0)
    gt = np.array([[A, B]] * 4, dtype=float)                   # (T=4, N=2, 4)
    tracks = np.array([[A, B], [A, B], [B, A], [B, A]], dtype=float)
    return gt, tracks


def test_swap_halfway_hand_metrics():
    gt, tracks = swap_case()
    df = mot_summary([accumulate(gt, tracks)], ["swap"])
    row = df.loc["swap"]
    # frame 2: both objects are re-matched to the other hypothesis -> 2 switches, no miss, no FP
    assert row.num_switches == 2 and row.num_misses == 0 and row.num_false_positives == 0
    assert row.mota == pytest.approx(1 - 2 / 8)
    # every object/hypothesis pair overlaps on 2 frames: best one-to-one IDTP = 2 + 2 of 8 + 8 boxes
    assert row.idf1 == pytest.approx(2 * 4 / 16)
    assert row.mostly_tracked == 2 and row.num_fragmentations == 0
    assert row.motp == pytest.approx(0.0)


def test_swap_halfway_hota():
    """DetA = 1 (every box found exactly); each true positive's association IoU is 2 / (4 + 4 - 2)."""
    gt, tracks = swap_case()
    row = evaluate_mot(gt[None], tracks[None], ["swap"]).loc["swap"]
    assert row.deta == pytest.approx(1.0)
    assert row.assa == pytest.approx(1 / 3)
    assert row.hota == pytest.approx(np.sqrt(1 / 3))


def test_miss_and_false_positive_hand_metrics():
    """One target; on frame 2 the hypothesis is off (IoU < 0.5): one miss, one FP, one fragmentation."""
    gt = np.array([[box(0, 0)]] * 4, dtype=float)
    tracks = gt.copy()
    tracks[2, 0] = box(8, 0)                                    # IoU = 2/18
    row = mot_summary([accumulate(gt, tracks)], ["m"]).loc["m"]
    assert (row.num_misses, row.num_false_positives, row.num_switches) == (1, 1, 0)
    assert row.mota == pytest.approx(0.5)
    assert row.idf1 == pytest.approx(2 * 3 / 8)
    assert row.num_fragmentations == 1


def test_perfect_tracks_score_one():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 500, (3, 1, 4, 2)) + np.cumsum(rng.normal(0, 2, (3, 12, 4, 2)), axis=1)
    gt = np.concatenate([xy, xy + [30, 80]], axis=-1)           # (B=3, T=12, N=4, 4)
    df = evaluate_mot(gt, gt.copy(), ["a", "b", "c"])
    assert list(df.index) == ["a", "b", "c", "OVERALL"]
    assert list(df.columns) == list(MOT_METRICS + HOTA_METRICS)
    np.testing.assert_allclose(df[["mota", "idf1", "idp", "idr", "hota", "deta", "assa"]].to_numpy(), 1.0)
    assert (df.num_switches == 0).all() and (df.motp.abs() < 1e-12).all()
    assert mota_idf1(gt, gt) == (1.0, 1.0)


def test_nan_gt_is_not_an_object_and_nan_track_is_not_a_hypothesis():
    gt = np.array([[box(0, 0)]] * 3, dtype=float)
    gt[1] = np.nan                                              # target not annotated on frame 1
    tracks = np.array([[box(0, 0)]] * 3, dtype=float)
    tracks[2] = np.nan                                          # source outputs nothing on frame 2
    row = mot_summary([accumulate(gt, tracks)], ["x"]).loc["x"]
    # objects on frames 0, 2; hypotheses on frames 0, 1: FP on 1, miss on 2
    assert (row.num_misses, row.num_false_positives) == (1, 1)
    assert row.mota == pytest.approx(1 - 2 / 2)


# ----------------------------------------------------------------------------- fast MOTA / IDF1


def random_case(rng, B, T, N, S, noise):
    xy = rng.uniform(0, 40, (B, 1, max(N, S), 2)) + np.cumsum(rng.normal(0, 2, (B, T, max(N, S), 2)), axis=1)
    boxes = np.concatenate([xy, xy + 10], axis=-1)
    gt = boxes[:, :, :N].copy()
    swap = rng.random((B, T, 1)) < 0.15                         # occasional identity swaps
    order = np.where(swap, np.roll(np.arange(S), 1), np.arange(S))
    tracks = np.take_along_axis(boxes[:, :, :S], order[..., None], axis=2)
    tracks = tracks + rng.normal(0, noise, tracks.shape)
    gt[rng.random((B, T, N)) < 0.1] = np.nan
    tracks[rng.random((B, T, S)) < 0.1] = np.nan
    return gt, tracks


@pytest.mark.parametrize("N, S", [(3, 3), (4, 2), (2, 4), (8, 8)])
def test_fast_mota_idf1_equals_motmetrics(N, S):
    """Per sample and OVERALL, including gaps, unequal counts and the > 6-target scipy path."""
    rng = np.random.default_rng(N * 10 + S)
    gt, tracks = random_case(rng, B=4, T=15, N=N, S=S, noise=1.0)
    df = mot_summary([accumulate(g, h) for g, h in zip(gt, tracks)], ["0", "1", "2", "3"])
    mota, idf1 = mota_idf1(gt, tracks, per_sample=True)
    np.testing.assert_allclose(mota, df.mota.to_numpy()[:-1])
    np.testing.assert_allclose(idf1, df.idf1.to_numpy()[:-1])
    overall = mota_idf1(torch.from_numpy(gt), torch.from_numpy(tracks))
    np.testing.assert_allclose(overall, df.loc["OVERALL", ["mota", "idf1"]].to_numpy(dtype=float))


def test_vectorised_hota_of_the_swap_case():
    gt, tracks = swap_case()
    got = hota_per_sample(gt[None], tracks[None])
    np.testing.assert_allclose([got["deta"][0], got["assa"][0], got["hota"][0]], [1.0, 1 / 3, np.sqrt(1 / 3)])


@pytest.mark.parametrize("N, S", [(3, 3), (4, 2), (2, 4)])
def test_vectorised_hota_equals_trackeval(N, S):
    """Per sample, with gaps on both sides, identity swaps and noise large enough to fail some alphas."""
    rng = np.random.default_rng(N * 7 + S)
    gt, tracks = random_case(rng, B=6, T=15, N=N, S=S, noise=4.0)
    df = evaluate_mot(gt, tracks)
    got = hota_per_sample(gt, tracks)
    for key in HOTA_METRICS:
        np.testing.assert_allclose(got[key], df[key].to_numpy()[:-1], atol=1e-12)


# ----------------------------------------------------------------------------- MOTChallenge I/O


def test_write_read_tracks_round_trip(tmp_path):
    tracks = np.array([[box(1.5, 2.25), box(50, 60)], [[np.nan] * 4, box(51, 61.125)]])   # (T=2, S=2, 4)
    assert write_tracks(tmp_path / "s.txt", tracks) == 3
    lines = (tmp_path / "s.txt").read_text().splitlines()
    assert lines[0] == "1,1,1.500,2.250,10.000,20.000,1,-1,-1,-1"             # 1-based frame and id, ltwh
    back, ids = read_tracks(tmp_path / "s.txt")
    np.testing.assert_array_equal(ids, [1, 2])
    np.testing.assert_allclose(back, tracks, atol=1e-3)
    paths = write_results(tmp_path / "res", ["a", "b"], np.stack([tracks, tracks]))
    assert [p.name for p in paths] == ["a.txt", "b.txt"]
    assert read_tracks(paths[1], num_frames=4)[0].shape == (4, 2, 4)


def test_load_mot_txt_reports_file_and_line(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text("1,1,0,0,10,20,1,1,1\n\n2,1,0,0,10,x,1,1,1\n")
    with pytest.raises(UserError, match=r"gt.txt:3: expected comma-separated numbers"):
        load_mot_txt(f)
    f.write_text("1,1,0,0,10,20,1,1,1\n2,1,0,0,10,20,1,1\n")
    with pytest.raises(UserError, match=r"gt.txt:2: 8 columns where earlier lines have 9"):
        load_mot_txt(f)
    with pytest.raises(UserError, match="not found"):
        load_mot_txt(tmp_path / "missing.txt")


def test_iou_threshold_decides_what_counts_as_a_match():
    # one target, one track shifted so that IoU = 1/3 on every frame: a match only below 0.34
    gt = np.array([[[0.0, 0.0, 10.0, 10.0]]] * 5)
    tracks = gt + np.array([5.0, 0.0, 5.0, 0.0])
    strict = mota_idf1(gt[None], tracks[None], iou_threshold=0.5)
    loose = mota_idf1(gt[None], tracks[None], iou_threshold=0.3)
    assert strict == (-1.0, 0.0)          # 5 misses + 5 false positives over 5 objects
    assert loose == (1.0, 1.0)
    acc = accumulate(gt, tracks, iou_threshold=0.3)
    assert acc.mot_events["Type"].eq("MATCH").sum() == 5


def test_method_tables_in_worker_processes_equal_the_serial_tables():
    """Scores.tables(workers) summarises the methods in worker processes: the same tables, in method order."""
    import pandas as pd

    from utils.mot_scores import Scores

    rng = np.random.default_rng(5)
    scores = Scores(0.5)
    scores.names.extend(f"s{b}" for b in range(4))
    for method, noise in (("b", 1.0), ("a", 3.0), ("c", 6.0)):
        gt, tracks = random_case(rng, 4, 12, 3, 3, noise)
        scores.add(method, gt, tracks)
    serial = scores.tables()
    parallel = scores.tables(workers=2)
    assert list(parallel) == list(serial) == ["b", "a", "c"]
    for method in serial:
        pd.testing.assert_frame_equal(parallel[method], serial[method], check_exact=True)
