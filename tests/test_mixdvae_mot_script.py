"""mixdvae_mot.py end to end on tiny data, and its answers to bad inputs (DESIGN §5, §7, §8.1, §10; issue 3).

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


def run(ini: Path) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "mixdvae_mot.py", str(ini)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


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
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(run, cases.values())))
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
    for name in ("syn.ini", "log.txt", "summary.txt", "summary.json", "metrics_per_sample.csv",
                 "metric_per_iteration.csv", "elbo_per_iteration.csv", "figures/mota_idf1_per_iteration.png",
                 "figures/tracks_s0.png", "figures/tracks_s1.png"):
        assert (out / name).is_file(), name
    for method in METHODS:
        files = sorted((out / "tracks" / method).glob("*.txt"))
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
    assert set(summary["methods"]) == set(METHODS) and summary["num_samples"] == 6
    per_sample = pd.read_csv(out / "metrics_per_sample.csv")
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
    per_sample = pd.read_csv(out / "metrics_per_sample.csv")
    assert {s.split("_")[0] for s in per_sample["sample"]} == {"TOY-mot17", "TOY-mot15"}
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
