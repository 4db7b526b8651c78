"""Evaluation-set builder, tuning and results-table tools, on tiny data; the bootstrap by hand."""

import csv
import json

import numpy as np
import pytest

from tests.conftest import REPO
from tools import make_mot_eval_sets, mot_results_table, tune_mot
from utils.errors import UserError
from utils.mot_eval import mota_idf1
from utils.mot_experiments import COUNT_KEYS, MethodSpec, bootstrap_ci, dataset_metrics, mean_over_runs, \
    score_samples

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


def test_the_extra_test_splits_have_their_own_seeds_and_are_built_only_when_asked(tmp_path):
    make_mot_eval_sets.main(["--root", str(tmp_path), "--sets", "synthetic", "--num-val", "2", "--num-test", "2"])
    assert not (tmp_path / "synthetic" / "test2").exists()
    assert not (tmp_path / "synthetic" / "test3").exists()
    make_mot_eval_sets.main(["--root", str(tmp_path), "--sets", "synthetic", "--num-val", "2", "--num-test", "2",
                             "--num-test2", "3", "--num-test3", "4"])
    seeds = {split: json.loads((tmp_path / "synthetic" / split / "metadata.json").read_text())["args"]["seed"]
             for split in ("val", "test", "test2", "test3")}
    assert len(set(seeds.values())) == 4
    assert len(list((tmp_path / "synthetic" / "test2").glob("*.npz"))) == 3
    assert len(list((tmp_path / "synthetic" / "test3").glob("*.npz"))) == 4
    for split in ("test2", "test3"):
        with pytest.raises(UserError, match=f"num-{split}"):
            make_mot_eval_sets.main(["--root", str(tmp_path), f"--num-{split}", "-1"])


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


def test_tuning_over_several_splits_scores_the_mean_of_each_split(sets, tuning, tmp_path):
    root, _ = sets
    single, _ = tuning
    args = ["--dvae", f"ref={DVAE}", "--taus", "0.1,1", "--init-lens", "10", "--accels", "0.003,0.01", *FAST]
    occ = tmp_path / "occlusion"
    tune_mot.main(["--data", str(root / "occlusion" / "val"), "--out", str(occ), *args])
    pooled = tmp_path / "pooled"
    tune_mot.main(["--data", str(root / "synthetic" / "val"), "--data", str(root / "occlusion" / "val"),
                   "--out", str(pooled), *args])
    key = lambda r: (r["method"], r["assignment_temperature"], r["z_mode"], r["accel_std_ratio"])      # noqa: E731
    syn = {key(r): r for r in read_csv(single / "grid.csv")}
    occ_rows = {key(r): r for r in read_csv(occ / "grid.csv")}
    rows = read_csv(pooled / "grid.csv")
    assert len(rows) == 12
    for r in rows:
        a, b = syn[key(r)], occ_rows[key(r)]
        assert float(r["idf1"]) == pytest.approx((float(a["idf1"]) + float(b["idf1"])) / 2, abs=2e-3)
        assert int(r["ids"]) == int(a["ids"]) + int(b["ids"])
        assert r["splits"] == f"synthetic/val:{float(a['idf1']):.3f};occlusion/val:{float(b['idf1']):.3f}"
    best = json.loads((pooled / "best.json").read_text())
    assert best["selected_by"] == "mean validation IDF1 over 2 splits"
    for method, chosen in best["methods"].items():
        assert chosen["val_idf1"] == max(float(r["idf1"]) for r in rows if r["method"] == method)


def test_tuning_needs_a_split_and_refuses_an_old_grid_file(tmp_path):
    with pytest.raises(UserError, match="at least one validation split"):
        tune_mot.main(["--out", str(tmp_path), "--dvae", DVAE, *FAST])
    (tmp_path / "grid.csv").write_text("method,kind,idf1\n")
    with pytest.raises(UserError, match="another version of this tool"):
        tune_mot.main(["--data", str(tmp_path), "--out", str(tmp_path), "--dvae", DVAE, *FAST])


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


def test_results_table_averages_mixdvae_counts_over_vem_seeds(sets, tmp_path):
    root, _ = sets
    common = ["--root", str(root), "--sets", "synthetic", "--dvae", f"ref={DVAE}", "--methods", "mixdvae,kf_filter",
              "--num-boot", "20", "--init-len", "5", *FAST]
    ids = {}
    for seeds in ("0", "1", "0,1"):
        out = tmp_path / seeds.replace(",", "_")
        mot_results_table.main([*common, "--vem-seeds", seeds, "--out", str(out)])
        res = json.loads((out / "results.json").read_text())
        assert res["vem"]["seeds"] == [int(v) for v in seeds.split(",")]
        rows = res["sets"]["synthetic"]["methods"]
        ids[seeds] = {label: row["metrics"]["ids"][0] for label, row in rows.items()}
        ids[seeds]["idf1"] = rows["MixDVAE-ref"]["metrics"]["idf1"][0]
    assert ids["0,1"]["MixDVAE-ref"] == pytest.approx((ids["0"]["MixDVAE-ref"] + ids["1"]["MixDVAE-ref"]) / 2)
    assert ids["0,1"]["KF-VEM-filter"] == ids["0"]["KF-VEM-filter"] == ids["1"]["KF-VEM-filter"]
    assert "averaged over VEM seeds [0, 1]" in (tmp_path / "0_1" / "results.md").read_text()
    with pytest.raises(UserError, match="at least one seed"):
        mot_results_table.main([*common, "--vem-seeds", ","])


def test_tuning_files_merge_and_a_label_tuned_twice_is_refused(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    kf = {"kind": "kf_filter", "init_subseq_len": 7}
    a.write_text(json.dumps({"data": "val A", "methods": {"KF-VEM-filter": kf}}))
    b.write_text(json.dumps({"data": "val B", "methods": {"MixDVAE-x": {"kind": "mixdvae", "dvae_var_scale": 4}}}))
    merged = mot_results_table.load_tuning([str(a), str(b), str(tmp_path / "missing.json")], "synthetic")
    assert merged["methods"]["KF-VEM-filter"]["data"] == "val A" and merged["methods"]["MixDVAE-x"]["data"] == "val B"
    spec, source = mot_results_table.tuned(MethodSpec("KF-VEM-filter", "kf_filter"), merged)
    assert spec.init_subseq_len == 7 and source == "tuned on val A"
    with pytest.raises(UserError, match="tuned in two files"):
        mot_results_table.load_tuning([str(a), str(a)], "synthetic")


def test_mean_over_runs_averages_each_sample():
    a = {"idtp": np.array([4, 0]), "hota": np.array([0.5, 1.0])}
    b = {"idtp": np.array([2, 1]), "hota": np.array([0.7, 0.0])}
    mean = mean_over_runs([a, b])
    np.testing.assert_allclose(mean["idtp"], [3.0, 0.5])
    np.testing.assert_allclose(mean["hota"], [0.6, 0.5])
    with pytest.raises(ValueError):
        mean_over_runs([])


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

    seen, real_run_row = [], mx.run_row

    def fake_run_row(dynamics, det, mask, init, settings, image_size, factor):
        seen.append(settings)
        return real_run_row(dynamics, det, mask, init, settings, image_size, factor)

    monkeypatch.setattr(mx, "run_row", fake_run_row)
    base = mx.reference_vem_settings(REPO / "config" / "cfg_dvae_vem_mot.ini", n_iter=1, init_iter=1)
    spec = mx.MethodSpec("KF-VEM-filter", "kf_filter").with_settings({"clutter_logprob": -10.0, "kind": "x"})
    assert spec.settings()["clutter_logprob"] == -10.0 and spec.kind == "kf_filter"
    batch = mx.load_split(sets[0] / "synthetic" / "test")
    mx.MethodRunner(base).run(spec, batch)
    mx.MethodRunner(base).run(mx.MethodSpec("KF-VEM-filter", "kf_filter"), batch)
    assert [s.clutter_logprob for s in seen] == [-10.0, base.clutter_logprob]
    assert "clutter_logprob" not in mx.MethodSpec("KF-VEM-filter", "kf_filter").settings()


def test_a_mixdvae_row_gives_the_same_tracks_whether_it_runs_first_or_later(sets):
    """The runner loads a checkpoint lazily; building the SRNN draws its initial weights from torch's RNG, so the
    load must come before the seed, or a row's z samples depend on which rows ran before it."""
    import utils.mot_experiments as mx

    base = mx.reference_vem_settings(REPO / "config" / "cfg_dvae_vem_mot.ini", n_iter=3, init_iter=2)
    ckpt = str(REPO / "model" / "pretrained" / "mot_srnn_causal_dngap.pt")
    spec = mx.MethodSpec("MixDVAE-x", "mixdvae", ckpt, 0.1, 5, dvae_es="propagate")
    other = mx.MethodSpec("MixDVAE-y", "mixdvae", ckpt, 0.1, 5, dvae_var_scale=2.0)
    batch = mx.load_split(sets[0] / "occlusion" / "test")
    runner = mx.MethodRunner(base, seed=3)
    first = runner.run(spec, batch)
    runner.run(other, batch)
    np.testing.assert_array_equal(runner.run(spec, batch), first)
    np.testing.assert_array_equal(mx.MethodRunner(base, seed=3).run(spec, batch), first)


def test_a_choice_row_may_give_each_dvae_its_own_es_variance_scale():
    """MethodSpec.option_var_scales: one E-S variance scale per DVAE of a "+" choice, in the row's settings; a
    count that does not match the DVAEs is refused."""
    import utils.mot_experiments as mx
    from model.dvae_choice import DVAEChoice

    ckpt = REPO / "model" / "pretrained" / "mot_srnn_causal_dngap.pt"
    other = REPO / "model" / "pretrained" / "mot_srnn_causal_vel.pt"
    spec = MethodSpec("MixDVAE-pick", "mixdvae", f"{ckpt}+{other}", dvae_es="smoother", dvae_es_var="fixed",
                      option_var_scales=(1.0, 0.3))
    assert spec.settings()["option_var_scales"] == (1.0, 0.3)
    dyn = mx.MethodRunner(mx.reference_vem_settings(REPO / "config" / "cfg_dvae_vem_mot.ini")).dynamics(spec)
    assert isinstance(dyn, DVAEChoice) and dyn.var_scales == (1.0, 0.3)
    assert dyn.options[1].model.velocity and not dyn.options[0].model.velocity
    with pytest.raises(UserError, match="one value per DVAE"):
        MethodSpec("MixDVAE-pick", "mixdvae", f"{ckpt}+{other}", option_var_scales=(1.0,))
