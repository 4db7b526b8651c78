"""Kill and resume: a pre-training killed with SIGKILL at a random point and resumed loses at
most the interrupted epoch, ``loss.csv`` holds exactly one row per epoch, and ``best.pt`` is the best
epoch of the whole history."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from model.schedules import final_schedule_epoch
from tests.conftest import REPO, SCRIPT_ENV, run_script, tiny_mot_sections, write_ini

N_EPOCHS = 10


def read_csv_rows(path: Path) -> int:
    try:
        return len(pd.read_csv(path))
    except (OSError, pd.errors.EmptyDataError):
        return 0


def test_sigkill_at_a_random_point_then_resume_loses_at_most_the_interrupted_epoch(tmp_path, mot_data):
    sections = tiny_mot_sections(mot_data, tmp_path / "runs")
    sections["Training"].update(n_epochs=N_EPOCHS, save_frequency=4, ss_start=1, ss_end=3, lr=0.02)
    ini = write_ini(tmp_path / "t.ini", sections)
    proc = subprocess.Popen([sys.executable, "train_dvae_single.py", str(ini)], cwd=REPO, env=SCRIPT_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "runs").glob("*/latest.pt")):     # first epoch committed
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        (run_dir,) = (tmp_path / "runs").iterdir()
        first = time.monotonic()
        while read_csv_rows(run_dir / "loss.csv") < 2:                # measure one epoch
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        epoch_seconds = time.monotonic() - first
        delay = random.Random(os.urandom(8)).uniform(0.0, 4 * epoch_seconds)   # anywhere in the next epochs
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    where = f"killed {delay:.2f} s after epoch 1 (epochs take {epoch_seconds:.2f} s)"
    rows_at_kill = read_csv_rows(run_dir / "loss.csv")
    latest_at_kill = torch.load(run_dir / "latest.pt", weights_only=False)["epoch"]
    assert rows_at_kill - 1 <= latest_at_kill, where          # the checkpoint is never behind loss.csv

    sections["Training"].update(continue_train=True, resume_dir=run_dir)
    resumed = run_script("train_dvae_single.py", write_ini(tmp_path / "resume.ini", sections), timeout=300)
    assert resumed.returncode == 0, (where, resumed.stderr)
    if latest_at_kill < N_EPOCHS - 1:
        assert f"resumed from {run_dir / 'latest.pt'} (epoch {latest_at_kill})" in resumed.stdout, where
        # only epochs after the last committed one are (re)run: at most the interrupted epoch was lost
        assert f"epoch {latest_at_kill + 1:4d}" in resumed.stdout and f"epoch {latest_at_kill:4d} " not in \
            resumed.stdout, where

    losses = pd.read_csv(run_dir / "loss.csv")
    assert list(losses["epoch"]) == list(range(N_EPOCHS)), where          # exactly one row per epoch
    assert torch.load(run_dir / "latest.pt", weights_only=False)["epoch"] == N_EPOCHS - 1
    final = final_schedule_epoch(1, 3, True, True)
    eligible = losses[losses["epoch"] >= final]
    best = torch.load(run_dir / "best.pt", weights_only=False)
    assert best["epoch"] == int(eligible.loc[eligible["val_total"].idxmin(), "epoch"]), where
    assert best["val_loss"] == pytest.approx(eligible["val_total"].min(), rel=1e-5), where
    assert not list(run_dir.glob("*.tmp")), where
