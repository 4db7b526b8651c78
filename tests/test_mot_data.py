"""N-target MOT samples: MOTChallenge builder, synthetic builder, dataset and collate."""

import json
import warnings

import numpy as np
import pytest
import torch

from data import mot_tracking_data_generation as gen
from data.mot_dataset import MOTSampleDataset, collate_mot
from utils.errors import UserError
from utils.mot_eval import iou_matrix

T_SEQ = 20                               # frames of the toy sequence
SEQ_KW = dict(num_targets=2, sequence_len=8, slide_step=4, min_obs_ratio=0.65, max_combinations=3)


def toy_tracks():
    """Ground truth (frame, id, left, top, w, h) of 4 pedestrians walking right, 20 frames."""
    rows = []
    for f in range(1, T_SEQ + 1):
        for i in range(1, 5):
            rows.append((f, i, 20.0 + 5 * f, 100.0 * i, 40.0, 90.0))
    return np.array(rows)


def det_rows(gt):
    """Detections: every gt box shifted by 2 px, except target 4 (detected on 1 frame in 4) and
    frame 3 of target 1 (missed); plus one far clutter box per frame."""
    keep = ~((gt[:, 1] == 4) & (gt[:, 0] % 4 != 1)) & ~((gt[:, 1] == 1) & (gt[:, 0] == 3))
    det = gt[keep].copy()
    det[:, 2:4] += 2.0
    clutter = np.array([(f, -1, 600.0, 5.0, 30.0, 60.0) for f in range(1, T_SEQ + 1)])
    return np.concatenate([det, clutter])


def write_rows(path, rows, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(fmt(r) + "\n" for r in rows))


@pytest.fixture
def mot17_root(tmp_path):
    """MOT17 layout: 9-column gt with consider flag / class, 10-column det, seqinfo.ini."""
    seq = tmp_path / "mot" / "TOY-01"
    gt = toy_tracks()
    extra = [(f, 7, 300.0, 300.0, 40.0, 90.0, 1, 3, 1.0) for f in range(1, T_SEQ + 1)]       # a car
    extra += [(f, 8, 300.0, 50.0, 40.0, 90.0, 0, 1, 1.0) for f in range(1, T_SEQ + 1)]       # not considered
    gt9 = [tuple(r) + (1, 1, 1.0) for r in gt] + extra
    write_rows(seq / "gt" / "gt.txt", gt9, lambda r: ",".join(f"{v:g}" for v in r))
    dets = np.concatenate([det_rows(gt), det_rows(np.array([r[:6] for r in extra]))])
    write_rows(seq / "det" / "det.txt", dets,
               lambda r: f"{int(r[0])},-1,{r[2]:.1f},{r[3]:.1f},{r[4]:.1f},{r[5]:.1f},0.9,-1,-1,-1")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=TOY-01\nimWidth=640\nimHeight=480\nseqLength=20\n")
    return tmp_path / "mot"


@pytest.fixture
def mot15_root(tmp_path):
    """MOT15 layout: 10-column gt and det with world coordinates -1, no seqinfo.ini."""
    seq = tmp_path / "mot15" / "TOY-15"
    gt = toy_tracks()
    write_rows(seq / "gt" / "gt.txt", gt, lambda r: ",".join(f"{v:g}" for v in r) + ",1,-1,-1,-1")
    write_rows(seq / "det" / "det.txt", det_rows(gt),
               lambda r: f"{int(r[0])},-1,{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},1,-1,-1,-1")
    return tmp_path / "mot15"


def check_samples(samples, image_size):
    # windows start at frames 1, 5, 9, 13; valid targets {1, 2, 3} -> all 3 pairs per window
    assert len(samples) == 4 * 3
    assert sorted({s["start_frame"] for s in samples}) == [1, 5, 9, 13]
    for s in samples:
        assert s["det"].shape == (8, 2, 4) and s["gt"].shape == (8, 2, 4) and s["init"].shape == (2, 4)
        assert set(s["gt_ids"].tolist()) <= {1, 2, 3}
        assert tuple(s["image_size"]) == image_size
        # init = the detection matched to each target at frame 0, in target order
        np.testing.assert_allclose(s["init"], s["gt"][0] + [2, 2, 2, 2])
        np.testing.assert_array_equal(s["det"][0], s["init"])
        # every present detection belongs to one of the sample's targets
        present = np.isfinite(s["det"]).all(-1)
        best = iou_matrix(s["det"], s["gt"]).max(-1)
        assert np.all(best[present] > 0.8)
    # target 1 is missed on frame 3: its window-1 samples have one NaN row
    with_1 = [s for s in samples if s["start_frame"] == 1 and 1 in s["gt_ids"]]
    assert all(np.isnan(s["det"]).all(-1).sum() == 1 for s in with_1)


def test_mot17_layout_builder(mot17_root):
    seq = gen.load_sequence(mot17_root / "TOY-01")
    assert seq.image_size == (640, 480)
    assert seq.gt_ids.tolist() == [1, 2, 3, 4]                  # car (class 3) and consider=0 dropped
    check_samples(gen.mot_samples(seq, rng=np.random.default_rng(0), **SEQ_KW), (640, 480))


def test_mot15_layout_builder(mot15_root):
    with pytest.raises(UserError, match="--image-size"):
        gen.load_sequence(mot15_root / "TOY-15")
    seq = gen.load_sequence(mot15_root / "TOY-15", layout="auto", image_size=(1920, 1080))
    check_samples(gen.mot_samples(seq, rng=np.random.default_rng(0), **SEQ_KW), (1920, 1080))


def test_include_other_detections_adds_clutter(mot17_root):
    seq = gen.load_sequence(mot17_root / "TOY-01")
    samples = gen.mot_samples(seq, rng=np.random.default_rng(0), include_other=True, **SEQ_KW)
    for s in samples:
        # other targets (1 or 2 of ids 1-4 detected) + the car + the not-considered one + 2 clutter boxes
        assert s["det"].shape[1] > 2
        np.testing.assert_array_equal(s["det"][0, :2], s["init"])
        assert np.isfinite(s["det"]).all(-1).sum() > 2 * s["det"].shape[0]


def test_max_combinations_draws_distinct_subsets():
    subsets = gen.draw_subsets(10, 3, 5, np.random.default_rng(0))
    assert len(subsets) == 5 and len({tuple(s) for s in subsets}) == 5
    assert gen.draw_subsets(3, 2, 10, np.random.default_rng(0)) == [[0, 1], [0, 2], [1, 2]]


def test_cli_writes_samples_index_and_metadata(mot17_root, tmp_path, capsys):
    out = tmp_path / "out"
    gen.main(["--mot-root", str(mot17_root), "--out", str(out), "--num-targets", "2", "--seq-len", "8",
              "--slide-step", "4", "--max-combinations", "3"])
    assert "wrote 12 samples" in capsys.readouterr().out
    assert len(list(out.glob("*.npz"))) == 12
    index = (out / "index.csv").read_text().splitlines()
    assert index[0].startswith("file,sequence,start_frame") and len(index) == 13
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["samples_per_sequence"] == {"TOY-01": 12}
    with pytest.raises(UserError, match="--overwrite"):
        gen.main(["--mot-root", str(mot17_root), "--out", str(out), "--seq-len", "8", "--num-targets", "2"])
    batch = collate_mot([it for it in MOTSampleDataset(out)])
    assert batch["det"].shape == (12, 8, 2, 4) and batch["names"][0] == "TOY-01_000001_00"


def test_builder_user_errors(mot17_root, tmp_path):
    seq = mot17_root / "TOY-01"
    with pytest.raises(UserError, match="no window of 4 valid targets in TOY-01"):
        gen.main(["--mot-root", str(mot17_root), "--out", str(tmp_path / "o"), "--num-targets", "4",
                  "--seq-len", "8"])
    with pytest.raises(UserError, match="missing detection file"):
        gen.load_sequence(seq, det_file="det/other.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no MOTChallenge sequence"):
        gen.find_sequences(tmp_path / "empty", None)
    with (seq / "det" / "det.txt").open("a") as f:
        f.write("21,-1,oops\n")
    with pytest.raises(UserError, match=r"det.txt:\d+: expected comma-separated numbers"):
        gen.load_sequence(seq)
    (seq / "gt" / "gt.txt").unlink()
    with pytest.raises(UserError, match=r"missing ground truth .*gt/gt.txt"):
        gen.load_sequence(seq)


# ----------------------------------------------------------------------------- synthetic


def synth(seed=0, **kw):
    args = dict(seq_len=30, num_targets=3, image_size=(1920, 1080), noise_ratio=0.03, miss_prob=0.2)
    return gen.synthetic_samples(40, rng=np.random.default_rng(seed), **{**args, **kw})


def test_synthetic_detections_first_frame_misses_and_noise():
    samples = synth()
    det = np.stack([s["det"] for s in samples])                 # (B, T, N, 4)
    gt = np.stack([s["gt"] for s in samples])
    np.testing.assert_array_equal(det[:, 0], np.stack([s["init"] for s in samples]))
    assert np.isfinite(det[:, 0]).all()                         # never missed on frame 0
    assert np.isnan(det[:, 1:]).all(-1).mean() == pytest.approx(0.2, abs=0.03)
    # identify each detection's target by IoU; the noise is std 0.03 x box size
    match = iou_matrix(det, gt).argmax(-1)                      # (B, T, K)
    own = np.take_along_axis(gt, match[..., None], axis=2)
    rel = (det - own) / np.tile(own[..., 2:] - own[..., :2], 2)
    assert np.nanstd(rel) == pytest.approx(0.03, rel=0.1)
    assert (gt[..., 2:] > gt[..., :2]).all() and (gt >= 0).all() and (gt[..., 2:] <= [1920.01, 1080.01]).all()


def test_synthetic_detection_order_is_shuffled_after_frame_0():
    samples = synth(miss_prob=0.0)
    det = np.stack([s["det"] for s in samples])
    gt = np.stack([s["gt"] for s in samples])
    order = iou_matrix(gt, det).argmax(-1)                      # slot of each target's detection
    identity = (order == np.arange(3)).all(-1)                  # (B, T)
    assert identity[:, 0].all()
    assert identity[:, 1:].mean() == pytest.approx(1 / 6, abs=0.05)   # 1 of 3! orders


def test_synthetic_is_reproducible_with_seed():
    a, b, c = synth(seed=3), synth(seed=3), synth(seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["det"], y["det"])
        np.testing.assert_array_equal(x["gt"], y["gt"])
    assert not np.allclose(a[0]["gt"], c[0]["gt"])


def test_synthetic_crossings_and_clutter():
    samples = synth(crossing_fraction=0.75, clutter_rate=1.5)
    assert np.mean([gen.has_crossing(s["gt"]) for s in samples]) >= 0.75
    num_slots = [s["det"].shape[1] for s in samples]
    assert min(num_slots) > 3 and len(set(num_slots)) > 1      # K = N + the sample's max clutter count
    present = np.concatenate([np.isfinite(s["det"]).all(-1).sum(1)[1:] for s in samples])   # per frame t >= 1
    assert present.mean() == pytest.approx(3 * (1 - 0.2) + 1.5, abs=0.2)


def test_synthetic_cli_reports_crossing_fraction(tmp_path):
    gen.main(["--synthetic", "--out", str(tmp_path), "--num-samples", "12", "--seq-len", "20",
              "--crossing-fraction", "0.5", "--seed", "1"])
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["crossing_fraction_requested"] == 0.5 and meta["crossing_fraction_obtained"] >= 0.5
    assert len(list(tmp_path.glob("synthetic_*.npz"))) == 12


# ----------------------------------------------------------------------------- dataset / collate


def test_dataset_pads_and_masks(tmp_path):
    gt = np.tile(np.array([[0, 0, 10, 20], [50, 0, 60, 20]], dtype=np.float32), (3, 1, 1))    # (T=3, N=2, 4)
    common = dict(gt=gt, gt_ids=[5, 6], init=gt[0], image_size=(640, 480), sequence="s", start_frame=1)
    det_a = gt.copy()
    det_a[1, 0] = [5, 5, 5, 9]                                   # zero width
    det_a[2, 1] = [60, 20, 50, 0]                                # inverted
    det_b = np.full((3, 4, 4), np.nan, dtype=np.float32)
    det_b[0, :2], det_b[2, 3] = gt[0], gt[2, 1]                  # frame 1: no detection at all
    gen.write_sample(tmp_path / "a.npz", det=det_a, **common)
    gen.write_sample(tmp_path / "b.npz", det=det_b, **common)
    ds = MOTSampleDataset(tmp_path)
    with pytest.warns(UserWarning, match=r"a\.npz: 2 zero-area or inverted"):
        items = [ds[0], ds[1]]
    batch = collate_mot(items)
    assert batch["names"] == ["a", "b"]
    assert batch["det"].shape == (2, 3, 4, 4) and batch["det_mask"].shape == (2, 3, 4)
    expected_a = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(batch["det_mask"][0], expected_a)
    assert not batch["det_mask"][1, 1].any()
    assert torch.equal(batch["det_mask"], torch.isfinite(batch["det"]).all(-1))   # NaN <=> missing
    assert batch["gt"].shape == (2, 3, 2, 4) and batch["init"].shape == (2, 2, 4)
    assert batch["image_size"].tolist() == [[640, 480], [640, 480]]
    assert batch["gt_ids"].tolist() == [[5, 6], [5, 6]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[1]                                                    # a clean file does not warn


def test_dataset_empty_dir_names_it(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path)):
        MOTSampleDataset(tmp_path)
