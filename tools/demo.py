"""The one-command demo (``make demo``): embedded data -> MixDVAE tracking and separation.

1. builds a small synthetic 3-target tracking set and a small set of surrogate speech + flute
   test mixtures (skipped when they already exist: re-running reuses them);
2. runs ``mixdvae_mot.py`` and ``mixdvae_scass.py`` on the demo configs with the shipped
   checkpoints in ``model/pretrained/`` and their baselines;
3. prints both result tables and where the figures and audio were written.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DEMO = ROOT / "data" / "generated" / "demo"
MOT_DIR = DEMO / "mot_3t"
CORPUS_DIR = DEMO / "surrogate"
MIX_DIR = DEMO / "mixtures"
MOT_CFG = ROOT / "config" / "demo" / "cfg_vem_mot_demo.ini"
SCASS_CFG = ROOT / "config" / "demo" / "cfg_vem_scass_demo.ini"


def run(args: list[str], capture: bool = False) -> str:
    print("$ " + " ".join(str(a) for a in args), flush=True)
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE if capture else None)
    if proc.returncode != 0:
        sys.exit(f"demo step failed (exit {proc.returncode}): {' '.join(str(a) for a in args)}")
    return proc.stdout or ""


def has_npz(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.npz"))


def make_data() -> None:
    if has_npz(MOT_DIR):
        print(f"reusing {MOT_DIR.relative_to(ROOT)}")
    else:
        run([PY, "data/mot_tracking_data_generation.py", "--synthetic", "--out", MOT_DIR, "--num-samples", 50,
             "--seq-len", 60, "--num-targets", 3, "--noise-ratio", 0.04, "--miss-prob", 0.15,
             "--crossing-fraction", 0.5, "--seed", 2026])
    if has_npz(MIX_DIR):
        print(f"reusing {MIX_DIR.relative_to(ROOT)}")
        return
    if not any((CORPUS_DIR / "speech" / "test").glob("*.wav")):
        # test split only: voices and sentences never used to pre-train the shipped DVAEs
        run([PY, "data/scass_surrogate_corpus.py", "--out", CORPUS_DIR, "--seed", 2026,
             "--speech-train", 0, "--speech-val", 0, "--speech-test", 12,
             "--flute-train", 0, "--flute-val", 0, "--flute-test", 12, "--jobs", 2])
    run([PY, "data/scass_mixture_audio_generation.py", "--s1-dir", CORPUS_DIR / "flute" / "test",
         "--s2-dir", CORPUS_DIR / "speech" / "test", "--out", MIX_DIR, "--num", 20, "--snr", 0,
         "--seed", 2026, "--wav"])


def main() -> None:
    t0 = time.perf_counter()
    make_data()
    t_data = time.perf_counter() - t0
    run([PY, "mixdvae_mot.py", MOT_CFG])
    t_mot = time.perf_counter() - t0 - t_data
    run([PY, "mixdvae_scass.py", SCASS_CFG])
    t_scass = time.perf_counter() - t0 - t_data - t_mot
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s (data {t_data:.0f} s, tracking {t_mot:.0f} s, "
          f"separation {t_scass:.0f} s). Run directories (tables, figures, tracks, separated wavs) are under "
          "output/demo/; the newest MOT_* and SC-ASS_* folders are this run's.")


if __name__ == "__main__":
    main()
