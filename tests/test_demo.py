"""The demo pipeline (make demo) end to end at a toy size, so CI catches a broken demo."""

import shutil

import pytest

from tests.conftest import REPO, run_script

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("fluidsynth")),
    reason="the demo's surrogate corpus needs espeak-ng and fluidsynth (make test installs them as root)")


def test_quick_demo_builds_data_runs_both_scripts_and_prints_both_tables(tmp_path):
    proc = run_script("tools/demo.py", "--quick", "--workdir", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for method in ("MixDVAE", "KF-VEM", "SORT", "NMF", "IBM", "Mixture"):
        assert method in out, f"{method} missing from the printed tables"
    runs = sorted(p.name.split("_")[0] for p in (tmp_path / "output").iterdir())
    assert runs == ["MOT", "SC-ASS"]
    for run in (tmp_path / "output").iterdir():
        assert (run / "summary.txt").is_file() and (run / "log.txt").is_file()
    assert (REPO / "model" / "pretrained" / "mot_srnn.pt").is_file()
