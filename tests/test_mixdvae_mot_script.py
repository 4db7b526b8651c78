"""mixdvae_mot.py end to end on tiny data, its TrackEval export, overrides, provenance and its answers to bad inputs.

Everything is built in a temporary directory with the project's own builders: a tiny untrained SRNN
checkpoint (the script's plumbing is under test here, not the tracking quality), a synthetic 3-target
set holding a frame without detections, a zero-area and an inverted box, a clutter set, and two
MOTChallenge-layout toy sequences (MOT17: 9-column gt; MOT15: 10-column gt) turned into samples by
data/mot_tracking_data_generation.py. The script runs are subprocesses, two at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_ini_overridden
import torch

from data import mot_tracking_data_generation as gen
from model.srnn import SRNN
from utils.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
NETWORK = dict(name="SRNN", x_dim=4, z_dim=2, activation="tanh", dense_x_h=[4], dim_RNN_h=6, num_RNN_h=1,
               dense_hx_g=[], dim_RNN_g=0, num_RNN_g=1, dense_gz_z=[8], dense_hz_x=[8], dense_hz_z=[8],
               dropout_p=0.0)
T_SYN, N_SYN = 20, 3
METHODS = ("MixDVAE", "KF-VEM-filter", "KF-VEM-smoother", "SORT")


def write_ini(path: Path, root: Path, data_dir: Path, **overrides) -> Path:
    """A complete INI for the tiny setup; ``overrides`` maps "Section.key" -> value (None = delete)."""
    sections = {
        "User": {"task_name": "MOT", "save_root": str(root / "out"), "logger_type": 3, "print_model": False,
                 "data_dir": str(data_dir)},
        "Network": {"x_dim": 4, "z_dim": 2, "dim_RNN_h": 6},
        "VEM": {"N_iter_total": 3, "num_source": N_SYN, "num_obs": 3, "o_dim": 4, "std_ratio": 0.04,
                "init_iter_number": 2, "init_subseq_len": 10, "assignment_temperature": 0.01,
                "clutter_logprob": "", "z_mode": "sample", "update_phi": False, "save_all_iters": True},
        "Training": {"use_cuda": False, "finetune": False, "lr": 0.001, "beta": 1,
                     "saved_dvae": str(root / "dvae.pt"), "seed": 0, "num_threads": 1},
        "DataFrame": {"batch_size": 4, "normalize": "fixed", "normalize_range": "1920, 1080"},
        "Eval": {"baselines": "kf_filter, kf_vem, sort", "num_plot_samples": 2, "iou_threshold": 0.5},
        "KF": {"accel_std_ratio": 0.01, "init_vel_std_ratio": 0.1},
    }
    return write_ini_overridden(path, sections, overrides)


def run(ini: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "mixdvae_mot.py", str(ini), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def toy_mot_sequence(root: Path, layout: str) -> None:
    """``root/TOY-<layout>``: a 20-frame MOTChallenge sequence of 4 walkers (640 x 480), detections 2 px off,
    target 1 missed on frame 3; gt in the MOT17 (9 columns, seqinfo.ini) or MOT15 (10 columns) layout."""
    seq = root / f"TOY-{layout}"
    (seq / "gt").mkdir(parents=True)
    (seq / "det").mkdir()
    rows = [(f, i, 20.0 + 5 * f, 100.0 * i - 60, 40.0, 90.0) for f in range(1, 21) for i in range(1, 5)]
    tail = ",1,1,1.0" if layout == "mot17" else ",1,-1,-1,-1"
    (seq / "gt" / "gt.txt").write_text("".join(",".join(f"{v:g}" for v in r) + tail + "\n" for r in rows))
    dets = [r for r in rows if not (r[1] == 1 and r[0] == 3)]
    (seq / "det" / "det.txt").write_text("".join(f"{r[0]},-1,{r[2] + 2:.1f},{r[3] + 2:.1f},{r[4]:.1f},{r[5]:.1f},"
                                                 "0.9,-1,-1,-1\n" for r in dets))
    if layout == "mot17":
        (seq / "seqinfo.ini").write_text("[Sequence]\nname=TOY\nimWidth=640\nimHeight=480\nseqLength=20\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot_script")
    torch.manual_seed(0)
    model = SRNN(**{k: v for k, v in NETWORK.items() if k != "name"}).eval()
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]))
    save_checkpoint(root / "dvae.pt", model, NETWORK, epoch=0)
    rng = np.random.default_rng(0)
    samples = gen.synthetic_samples(6, seq_len=T_SYN, num_targets=N_SYN, miss_prob=0.2, crossing_fraction=0.5,
                                    rng=rng)
    samples[0]["det"][5] = np.nan                                       # a frame without any detection
    samples[1]["det"][6, 0] = [50.0, 50.0, 50.0, 200.0]                 # zero width: skipped with a warning
    samples[2]["det"][7, 1] = [300.0, 300.0, 250.0, 100.0]              # inverted: skipped with a warning
    clutter = gen.synthetic_samples(2, seq_len=T_SYN, num_targets=N_SYN, clutter_rate=3.0, rng=rng)
    for name, items in (("syn", samples), ("clutter", clutter)):
        gen.prepare_out_dir(root / name, overwrite=False)
        gen.write_dataset(root / name, items, [f"{name[0]}{i}" for i in range(len(items))], {})
    (root / "empty").mkdir()
    for layout in ("mot17", "mot15"):
        toy_mot_sequence(root / "raw", layout)
    gen.main(["--mot-root", str(root / "raw"), "--out", str(root / "motchallenge"), "--num-targets", "3",
              "--seq-len", "10", "--slide-step", "5", "--max-combinations", "1", "--image-size", "640", "480"])
    cases = {
        "synthetic": write_ini(root / "syn.ini", root, root / "syn", **{"User.run_name": "syn"}),
        "motchallenge": write_ini(root / "motc.ini", root, root / "motchallenge",
                                  **{"User.run_name": "motc", "DataFrame.normalize": "image_size"}),
        "clutter": write_ini(root / "clutter.ini", root, root / "clutter",
                             **{"User.run_name": "clutter", "VEM.num_obs": 12, "VEM.clutter_logprob": -10,
                                "Eval.baselines": "", "Eval.num_plot_samples": 0}),
        "network": write_ini(root / "net.ini", root, root / "syn", **{"Network.z_dim": 3}),
        "empty": write_ini(root / "empty.ini", root, root / "empty"),
        "num_obs": write_ini(root / "obs.ini", root, root / "clutter"),
        "num_source": write_ini(root / "src.ini", root, root / "syn", **{"VEM.num_source": 2}),
        "baseline": write_ini(root / "base.ini", root, root / "syn", **{"Eval.baselines": "kf_vem, deepsort"}),
    }
    cases = {name: (ini,) for name, ini in cases.items()}
    cases["overrides"] = (cases["synthetic"][0], "--set", "VEM.N_iter_total=2", "--set", "User.run_name=ovr")
    cases["typo"] = (*cases["overrides"], "--set", "VEM.N_iter_totl=2")
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(lambda args: run(*args), cases.values())))
    return root, results


def run_dir(root: Path, name: str) -> Path:
    dirs = sorted((root / "out").glob(f"MOT_{name}_*"))
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_end_to_end_writes_every_output(setup):
    root, results = setup
    proc = results["synthetic"]
    assert proc.returncode == 0, proc.stderr
    out = run_dir(root, "syn")
    for name in ("syn.ini", "log.txt", "summary.txt", "summary.json", "metrics_per_item.csv",
                 "metric_per_iteration.csv", "elbo_per_iteration.csv", "figures/mota_idf1_per_iteration.png",
                 "figures/tracks_s0.png", "figures/tracks_s1.png"):
        assert (out / name).is_file(), name
    for method in METHODS:
        files = sorted((out / "trackers" / "MixDVAE-syn" / method / "data").glob("*.txt"))
        assert [f.stem for f in files] == [f"s{i}" for i in range(6)]
        first = files[0].read_text().splitlines()[0].split(",")
        assert len(first) == 10 and first[:2] == ["1", "1"]             # MOTChallenge: frame, id, l, t, w, h, ...
    # ONE table with the three methods and the §8.1 columns, printed and saved
    table = (out / "summary.txt").read_text()
    assert table.strip() in proc.stdout
    header = table.splitlines()[1].split()
    assert header == ["MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDs", "FP", "FN", "MT", "PT", "ML", "Frag", "HOTA",
                      "DetA", "AssA"]
    assert [line.split()[0] for line in table.splitlines()[2:6]] == list(METHODS)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == set(METHODS) and summary["num_items"] == 6
    per_sample = pd.read_csv(out / "metrics_per_item.csv")
    assert len(per_sample) == 24 and {"mota", "idf1", "hota"} <= set(per_sample.columns)
    curves = pd.read_csv(out / "metric_per_iteration.csv")
    assert len(curves) == 3 + 1 and {"MixDVAE_mota", "KF-VEM-smoother_idf1"} <= set(curves.columns)
    assert len(pd.read_csv(out / "elbo_per_iteration.csv")) == 3
    assert (out / "log.txt").read_text().count("MixDVAE") >= 1


def test_motchallenge_layouts_go_through_builder_script_and_metrics(setup):
    """MOT17 (9-column gt) and MOT15 (10-column gt) sequences -> builder -> mixdvae_mot.py -> metrics."""
    root, results = setup
    proc = results["motchallenge"]
    assert proc.returncode == 0, proc.stderr
    out = run_dir(root, "motc")
    per_sample = pd.read_csv(out / "metrics_per_item.csv")
    assert {s.split("_")[0] for s in per_sample["item"]} == {"TOY-mot17", "TOY-mot15"}
    summary = json.loads((out / "summary.json").read_text())
    for method in METHODS:
        assert 0.0 <= summary["methods"][method]["hota"] <= 1.0
        assert np.isfinite(summary["methods"][method]["mota"])
    # clean walkers, detections 2 px off: every method tracks them
    assert summary["methods"]["KF-VEM-smoother"]["idf1"] > 0.9 and summary["methods"]["SORT"]["idf1"] > 0.9


def test_clutter_detections_with_a_clutter_class_and_no_baselines(setup):
    """More detections than sources: with num_obs raised and a clutter class the run goes through."""
    root, results = setup
    proc = results["clutter"]
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir(root, "clutter") / "summary.json").read_text())
    assert list(summary["methods"]) == ["MixDVAE"]
    table = (run_dir(root, "clutter") / "summary.txt").read_text().splitlines()
    assert len(table) == 3 and table[2].startswith("MixDVAE")


@pytest.mark.parametrize(("case", "message"), [
    ("network", r"\[Network\] z_dim = 2 but .*net\.ini says 3"),
    ("empty", r"no \.npz samples in .*empty"),
    ("num_obs", r"frame \d+ has \d+ detections but .*\[VEM\] num_obs = 3"),
    ("num_source", r"3 targets but .*\[VEM\] num_source = 2"),
    ("baseline", r"\[Eval\] baselines: unknown value\(s\) deepsort"),
])
def test_bad_inputs_exit_2_with_one_line(setup, case, message):
    import re

    _, results = setup
    proc = results[case]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert re.search(message, lines[0]), lines[0]


# ----------------------------------------------------------------------------- researcher's workflow


def test_set_overrides_are_validated_applied_and_kept_in_the_run_directory(setup):
    root, results = setup
    typo = results["typo"]
    assert typo.returncode == 2 and not list((root / "out").glob("MOT_ovr_*_1"))
    (line,) = typo.stderr.strip().splitlines()
    assert "N_iter_totl" in line and "did you mean N_iter_total?" in line
    assert results["overrides"].returncode == 0, results["overrides"].stderr
    out = run_dir(root, "ovr")
    ini = (out / "syn.ini").read_text()                            # the effective INI, under the INI's name
    assert "N_iter_total = 2" in ini and "N_iter_total = 3" not in ini and "--set VEM.N_iter_total=2" in ini
    assert len(pd.read_csv(out / "elbo_per_iteration.csv")) == 2    # 2 iterations ran, not the file's 3
    from utils.config import load_config
    from utils.config_keys_mot import VEM_MOT

    again = load_config(out / "syn.ini", VEM_MOT)                   # the kept INI reproduces the run's config
    provenance = json.loads((out / "summary.json").read_text())["provenance"]
    assert again["VEM"]["N_iter_total"] == 2 and again.digest() == provenance["config_sha256"]


def test_print_config_prints_the_effective_config_and_exits_0(setup):
    root, _ = setup
    proc = run(root / "syn.ini", "--set", "VEM.std_ratio=0.05", "--print-config")
    assert proc.returncode == 0, proc.stderr
    assert "std_ratio = 0.05" in proc.stdout and "[KF]" in proc.stdout
    assert "# dvae_var_scale = 1.0" in proc.stdout                # a key the file leaves at its default


def test_summary_json_records_provenance(setup):
    root, _ = setup
    prov = json.loads((run_dir(root, "syn") / "summary.json").read_text())["provenance"]
    assert prov["seed"] == 0 and prov["device"] == "cpu"
    assert prov["git_commit"] == "none" or len(prov["git_commit"]) == 40
    for package in ("python", "torch", "numpy", "motmetrics", "trackeval", "scipy", "pandas"):
        assert prov["versions"][package] not in ("", "absent"), package
    assert len(prov["config_sha256"]) == 64 and prov["machine"]["hostname"] and prov["machine"]["cpu_count"]


def trackeval_hota(out: Path, benchmark: str, split: str) -> dict[str, float]:
    """TrackEval's own evaluator over the run's exported tree: HOTA per tracker (combined over sequences)."""
    import trackeval

    config = {**trackeval.Evaluator.get_default_eval_config(), "USE_PARALLEL": False, "PRINT_RESULTS": False,
              "PRINT_CONFIG": False, "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
              "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True}
    dataset = trackeval.datasets.MotChallenge2DBox({
        **trackeval.datasets.MotChallenge2DBox.get_default_dataset_config(), "GT_FOLDER": str(out / "gt"),
        "TRACKERS_FOLDER": str(out / "trackers"), "SEQMAP_FOLDER": str(out / "seqmaps"), "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": split, "OUTPUT_FOLDER": str(out / "trackeval_output"), "PRINT_CONFIG": False})
    results, _ = trackeval.Evaluator(config).evaluate([dataset], [trackeval.metrics.HOTA({"PRINT_CONFIG": False})])
    per_tracker = results["MotChallenge2DBox"]
    return {name: float(np.mean(r["COMBINED_SEQ"]["pedestrian"]["HOTA"]["HOTA"])) for name, r in per_tracker.items()}


@pytest.mark.parametrize("case, run_name, split",
                         [("synthetic", "syn", "syn"), ("motchallenge", "motc", "motchallenge")])
def test_trackeval_scores_the_exported_tree_as_the_run_does(setup, case, run_name, split):
    """The MOTChallenge tree a run writes, scored by TrackEval's own evaluator, gives the run's HOTA (1e-6)."""
    root, results = setup
    assert results[case].returncode == 0, results[case].stderr
    out = run_dir(root, run_name)
    report = json.loads((out / "summary.json").read_text())
    summary = report["methods"]
    seqs = (out / "seqmaps" / f"MixDVAE-{split}.txt").read_text().split()
    assert seqs[0] == "name" and len(seqs) - 1 == report["num_items"]
    got = trackeval_hota(out, "MixDVAE", split)
    assert set(got) == set(METHODS)
    for method in METHODS:
        assert abs(got[method] - summary[method]["hota"]) < 1e-6, method


def test_motchallenge_export_keeps_original_frames_and_identities(setup):
    root, _ = setup
    out = run_dir(root, "motc")
    samples = sorted((root / "motchallenge").glob("*.npz"))
    late = next(p for p in samples if int(np.load(p)["start_frame"]) > 1)
    with np.load(late) as sample:
        start, ids, T = int(sample["start_frame"]), sorted(sample["gt_ids"].tolist()), len(sample["gt"])
    seq = out / "gt" / "MixDVAE-motchallenge" / late.stem
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    assert gt[:, 0].min() == start and gt[:, 0].max() == start + T - 1
    assert sorted(set(gt[:, 1].astype(int).tolist())) == ids
    assert f"seqLength={start + T - 1}" in (seq / "seqinfo.ini").read_text()
    tracks = np.loadtxt(out / "trackers" / "MixDVAE-motchallenge" / "MixDVAE" / "data" / f"{late.stem}.txt",
                        delimiter=",", ndmin=2)
    assert tracks[:, 0].min() >= start and set(tracks[:, 1].astype(int).tolist()) <= set(ids)
