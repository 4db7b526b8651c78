"""The one-command demo (``make demo``): embedded data -> MixDVAE tracking and separation.

1. builds a small synthetic 3-target tracking set and a small set of surrogate speech + flute
   test mixtures (skipped when they already exist: re-running reuses them);
2. runs ``mixdvae_mot.py`` and ``mixdvae_scass.py`` on the demo configs with the shipped
   checkpoints in ``model/pretrained/`` and their baselines;
3. prints both result tables and where the figures and audio were written.

``--quick --workdir DIR`` runs the same pipeline at a toy size in DIR (used by the test suite).
"""

from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MOT_CFG = ROOT / "config" / "demo" / "cfg_vem_mot_demo.ini"
SCASS_CFG = ROOT / "config" / "demo" / "cfg_vem_scass_demo.ini"
FULL = {"mot_samples": 50, "mixtures": 20, "files_per_source": 12}
QUICK = {"mot_samples": 4, "mixtures": 2, "files_per_source": 2}
QUICK_VEM = {"N_iter_total": "3", "init_iter_number": "2"}


def run(args: list) -> None:
    print("$ " + " ".join(str(a) for a in args), flush=True)
    proc = subprocess.run([str(a) for a in args], cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"demo step failed (exit {proc.returncode}): {' '.join(str(a) for a in args)}")


def has_npz(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.npz"))


def make_data(data: Path, size: dict) -> tuple[Path, Path]:
    mot_dir, corpus, mix_dir = data / "mot_3t", data / "surrogate", data / "mixtures"
    if has_npz(mot_dir):
        print(f"reusing {mot_dir}")
    else:
        run([PY, "data/mot_tracking_data_generation.py", "--synthetic", "--out", mot_dir,
             "--num-samples", size["mot_samples"], "--seq-len", 60, "--num-targets", 3, "--noise-ratio", 0.04,
             "--miss-prob", 0.15, "--crossing-fraction", 0.5, "--seed", 2026])
    if has_npz(mix_dir):
        print(f"reusing {mix_dir}")
        return mot_dir, mix_dir
    n = size["files_per_source"]
    if not any((corpus / "speech" / "test").glob("*.wav")):
        # test split only: voices and sentences never used to pre-train the shipped DVAEs
        run([PY, "data/scass_surrogate_corpus.py", "--out", corpus, "--seed", 2026, "--speech-train", 0,
             "--speech-val", 0, "--speech-test", n, "--flute-train", 0, "--flute-val", 0, "--flute-test", n,
             "--jobs", 2])
    run([PY, "data/scass_mixture_audio_generation.py", "--s1-dir", corpus / "flute" / "test",
         "--s2-dir", corpus / "speech" / "test", "--out", mix_dir, "--num", size["mixtures"], "--snr", 0,
         "--seed", 2026, "--wav"])
    return mot_dir, mix_dir


def quick_config(src: Path, dst: Path, data_dir: Path, save_root: Path, vem: dict) -> Path:
    """Copy an INI with its data dir, output root and VEM iteration counts replaced."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str
    cfg.read(src)
    cfg["User"]["data_dir"] = str(data_dir)
    cfg["User"]["save_root"] = str(save_root)
    for key, value in vem.items():
        if cfg.has_option("VEM", key):
            cfg["VEM"][key] = value
    with open(dst, "w") as f:
        cfg.write(f)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes and 3 VEM iterations (for tests)")
    ap.add_argument("--workdir", type=Path, help="data and outputs go here (default: data/generated/demo, output/demo)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = args.workdir / "data" if args.workdir else ROOT / "data" / "generated" / "demo"
    mot_dir, mix_dir = make_data(data, QUICK if args.quick else FULL)
    mot_cfg, scass_cfg, out = MOT_CFG, SCASS_CFG, ROOT / "output" / "demo"
    if args.workdir:
        out = args.workdir / "output"
        vem = QUICK_VEM if args.quick else {}
        mot_cfg = quick_config(MOT_CFG, args.workdir / MOT_CFG.name, mot_dir, out, vem)
        scass_cfg = quick_config(SCASS_CFG, args.workdir / SCASS_CFG.name, mix_dir, out, vem)
    t_data = time.perf_counter() - t0
    run([PY, "mixdvae_mot.py", mot_cfg])
    t_mot = time.perf_counter() - t0 - t_data
    run([PY, "mixdvae_scass.py", scass_cfg])
    t_scass = time.perf_counter() - t0 - t_data - t_mot
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s (data {t_data:.0f} s, tracking {t_mot:.0f} s, "
          f"separation {t_scass:.0f} s).\nRun directories (tables, figures, tracks, separated wavs) are in {out}/: "
          "the newest MOT_* and SC-ASS_* folders are this run's.")


if __name__ == "__main__":
    main()
