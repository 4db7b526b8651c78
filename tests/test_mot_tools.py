"""Evaluation-set builder, tuning and results-table tools, on tiny data; the bootstrap by hand."""

import csv
import json

import numpy as np
import pytest

from tests.conftest import REPO
from tools import make_mot_eval_sets, mot_results_table, tune_mot
from utils.errors import UserError
from utils.mot_eval import mota_idf1
from utils.mot_experiments import COUNT_KEYS, bootstrap_ci, dataset_metrics, score_samples

DVAE = str(REPO / "model" / "pretrained" / "mot_srnn.pt")
FAST = ["--n-iter", "2", "--init-iter", "1", "--config", str(REPO / "config" / "cfg_dvae_vem_mot.ini")]


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot_sets")
    written = make_mot_eval_sets.build(root, ["synthetic", "occlusion"], {"val": 5, "test": 4})
    return root, written


def test_sets_have_val_and_test_from_different_seeds_and_are_not_rebuilt(sets, capsys):
    root, written = sets
    assert sorted(p.relative_to(root).as_posix() for p in written) == [
        "occlusion/test", "occlusion/val", "synthetic/test", "synthetic/val"]
    meta = {split: json.loads((root / "synthetic" / split / "metadata.json").read_text()) for split in ("val", "test")}
    assert meta["val"]["args"]["seed"] != meta["test"]["args"]["seed"]
    assert meta["val"]["num_samples"] == 5 and meta["test"]["num_samples"] == 4
    assert json.loads((root / "occlusion" / "val" / "metadata.json").read_text())["args"]["occlusion"]
    with np.load(root / "synthetic" / "val" / "synthetic_000000.npz") as a, \
            np.load(root / "synthetic" / "test" / "synthetic_000000.npz") as b:
        assert not np.allclose(a["gt"], b["gt"])
    assert make_mot_eval_sets.build(root, ["synthetic"], {"val": 5, "test": 4}) == []
    assert "exists, skipped" in capsys.readouterr().out
    with pytest.raises(UserError, match="unknown set"):
        make_mot_eval_sets.main(["--root", str(root), "--sets", "synthetic,rain"])


def test_quick_sets_go_to_their_own_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mot_eval_sets.main(["--quick", "--sets", "camera"])
    assert not (tmp_path / "data" / "generated" / "mot_sets").exists()
    for split in ("val", "test"):
        assert len(list((tmp_path / "data" / "generated" / "mot_sets_quick" / "camera" / split).glob("*.npz"))) == 12


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tuning(sets, tmp_path_factory):
    root, _ = sets
    out = tmp_path_factory.mktemp("tuning") / "synthetic"
    argv = ["--data", str(root / "synthetic" / "val"), "--out", str(out), "--dvae", f"ref={DVAE}",
            "--taus", "0.1,1", "--init-lens", "10", "--accels", "0.003,0.01", *FAST]
    tune_mot.main(argv)
    return out, argv


def test_tuning_runs_an_equal_grid_and_selects_by_val_idf1(tuning, capsys):
    out, argv = tuning
    rows = read_csv(out / "grid.csv")
    per_method = {m: [r for r in rows if r["method"] == m] for m in {r["method"] for r in rows}}
    assert sorted(per_method) == ["KF-VEM-filter", "KF-VEM-smoother", "MixDVAE-ref"]
    assert all(len(v) == 4 for v in per_method.values())                        # 2 taus x 1 init x 2
    best = json.loads((out / "best.json").read_text())
    assert best["grid_points_per_method"] == {m: 4 for m in per_method}
    for method, grid in per_method.items():
        top = max(grid, key=lambda r: (float(r["idf1"]), float(r["mota"]), float(r["hota"])))
        chosen = best["methods"][method]
        assert chosen["val_idf1"] == float(top["idf1"])
        assert chosen["assignment_temperature"] == float(top["assignment_temperature"])
    assert best["methods"]["MixDVAE-ref"]["checkpoint"] == DVAE
    assert "4 grid points per method" in (out / "best.md").read_text()
    tune_mot.main(argv)                                                            # resumes: nothing new
    assert len(read_csv(out / "grid.csv")) == 12
    assert "] tau" not in capsys.readouterr().out.split("(equal budget)")[-1]


def test_tuning_refuses_unequal_budgets(sets, tmp_path):
    root, _ = sets
    with pytest.raises(UserError, match="unequal tuning budgets"):
        tune_mot.main(["--data", str(root / "synthetic" / "val"), "--out", str(tmp_path), "--dvae", DVAE,
                       "--accels", "0.003,0.01,0.03", *FAST])


def test_results_table_uses_tuned_settings_and_writes_cis(sets, tuning, tmp_path):
    root, _ = sets
    out, _ = tuning
    tuning_pattern = str(out.parent / "{set}" / "best.json")
    mot_results_table.main(["--root", str(root), "--sets", "synthetic,occlusion", "--dvae", f"ref={DVAE}",
                            "--dvae", f"other={DVAE}", "--tuning", tuning_pattern, "--num-boot", "50",
                            "--out", str(tmp_path), *FAST])
    res = json.loads((tmp_path / "results.json").read_text())
    best = json.loads((out / "best.json").read_text())["methods"]
    syn = res["sets"]["synthetic"]
    assert syn["num_samples"] == 4 and list(syn["methods"]) == [
        "MixDVAE-ref", "MixDVAE-other", "KF-VEM-filter", "KF-VEM-smoother", "SORT"]
    for label in ("MixDVAE-ref", "KF-VEM-filter", "KF-VEM-smoother"):
        row = syn["methods"][label]
        assert row["settings_from"].startswith("tuned on")
        assert row["settings"]["assignment_temperature"] == best[label]["assignment_temperature"]
    assert syn["methods"]["MixDVAE-other"]["settings_from"] == "defaults"      # no tuning entry of its own
    assert res["sets"]["occlusion"]["methods"]["KF-VEM-filter"]["settings_from"] == "defaults"
    for row in syn["methods"].values():
        for value, low, high in row["metrics"].values():
            assert low <= value + 1e-9 and value <= high + 1e-9
    text = (tmp_path / "results.md").read_text()
    assert "| method | MOTA | IDF1 | IDs | HOTA | settings |" in text and "### occlusion (test, 4 samples)" in text


def test_dataset_metrics_equal_the_motmetrics_overall():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 300, (6, 12, 3, 2)).repeat(2, -1) + [0, 0, 40, 80]
    tracks = gt + rng.normal(0, 6, gt.shape)
    tracks[:, 6:] = tracks[:, 6:, [1, 0, 2]]
    tracks[rng.random(tracks.shape[:3]) < 0.1] = np.nan
    m = dataset_metrics(score_samples(gt, tracks))
    np.testing.assert_allclose([m["mota"], m["idf1"]], mota_idf1(gt, tracks))


def counts_of(rows):
    """per-sample dict from (objects, predictions, misses, fps, switches, idtp, hota) rows."""
    arr = np.array(rows, dtype=float)
    return {**{k: arr[:, i] for i, k in enumerate(COUNT_KEYS)}, "hota": arr[:, 6]}


def test_bootstrap_by_hand():
    # two samples: perfect (10 objects) and poor (10 objects, 4 misses, 2 FP, 1 switch, IDTP 5)
    per_sample = counts_of([(10, 10, 0, 0, 0, 10, 0.9), (10, 8, 4, 2, 1, 5, 0.5)])
    ci = bootstrap_ci(per_sample, num_boot=2000, seed=1)
    assert ci["mota"][0] == pytest.approx(1 - 7 / 20)
    assert ci["idf1"][0] == pytest.approx(2 * 15 / 38)
    assert ci["ids"][0] == 1 and ci["hota"][0] == pytest.approx(0.7)
    assert ci["mota"][1] == pytest.approx(1 - 14 / 20) and ci["mota"][2] == pytest.approx(1.0)   # both extremes drawn
    assert ci["hota"][1:] == pytest.approx((0.5, 0.9))
    assert bootstrap_ci(per_sample, 300, seed=4) == bootstrap_ci(per_sample, 300, seed=4)
    same = counts_of([(10, 10, 1, 1, 0, 9, 0.8)] * 5)
    value, low, high = bootstrap_ci(same, 200)["idf1"]
    assert value == low == high == pytest.approx(0.9)


def test_a_tuned_clutter_class_reaches_the_vem(monkeypatch, sets):
    import utils.mot_experiments as mx

    seen, real_run_vem = [], mx.run_vem_upsampled

    def fake_run_vem(det, mask, init, dynamics, settings, image_size, factor):
        seen.append(settings)
        return real_run_vem(det, mask, init, dynamics, settings, image_size, factor)

    monkeypatch.setattr(mx, "run_vem_upsampled", fake_run_vem)
    base = mx.reference_vem_settings(REPO / "config" / "cfg_dvae_vem_mot.ini", n_iter=1, init_iter=1)
    spec = mx.MethodSpec("KF-VEM-filter", "kf_filter").with_settings({"clutter_logprob": -10.0, "kind": "x"})
    assert spec.settings()["clutter_logprob"] == -10.0 and spec.kind == "kf_filter"
    batch = mx.load_split(sets[0] / "synthetic" / "test")
    mx.MethodRunner(base).run(spec, batch)
    mx.MethodRunner(base).run(mx.MethodSpec("KF-VEM-filter", "kf_filter"), batch)
    assert [s.clutter_logprob for s in seen] == [-10.0, base.clutter_logprob]
    assert "clutter_logprob" not in mx.MethodSpec("KF-VEM-filter", "kf_filter").settings()
