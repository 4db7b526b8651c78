"""The one-command demo (``make demo``): embedded data -> MixDVAE tracking and separation.

1. builds a small synthetic 3-target tracking set and a small set of surrogate speech + flute
   test mixtures (skipped when they already exist: re-running reuses them);
2. runs ``mixdvae_mot.py`` and ``mixdvae_scass.py`` on the demo configs with the shipped
   checkpoints in ``model/pretrained/`` and their baselines;
3. prints both result tables and where the figures and audio were written.

``--quick --workdir DIR`` runs the same pipeline at a toy size in DIR (used by the test suite).
``--set Section.key=value`` (repeatable) goes to each script whose INI reads that key; an unknown key
stops the demo before any work. ``--print-config`` prints both effective configurations.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.cli import route_overrides  # noqa: E402
from utils.config_keys_mot import VEM_MOT  # noqa: E402
from utils.config_keys_scass import VEM_SCASS  # noqa: E402
from utils.errors import run_main  # noqa: E402

PY = sys.executable
MOT_CFG = ROOT / "config" / "demo" / "cfg_vem_mot_demo.ini"
SCASS_CFG = ROOT / "config" / "demo" / "cfg_vem_scass_demo.ini"
FULL = {"mot_samples": 50, "mixtures": 20, "files_per_source": 12}
QUICK = {"mot_samples": 4, "mixtures": 2, "files_per_source": 2}
QUICK_VEM = ["VEM.N_iter_total=3", "VEM.init_iter_number=2"]


def run(args: list, echo: bool = True) -> None:
    if echo:
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


def sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes and 3 VEM iterations (for tests)")
    ap.add_argument("--workdir", type=Path, help="data and outputs go here (default: data/generated/demo, output/demo)")
    ap.add_argument("--set", action="append", default=[], metavar="Section.key=value", dest="overrides",
                    help="override a value of the demo INIs (repeatable), e.g. --set VEM.N_iter_total=10")
    ap.add_argument("--print-config", action="store_true", help="print both effective configurations and exit")
    args = ap.parse_args()
    t0 = time.perf_counter()
    data = args.workdir / "data" if args.workdir else ROOT / "data" / "generated" / "demo"
    out = args.workdir / "output" if args.workdir else ROOT / "output" / "demo"
    routed = route_overrides((QUICK_VEM if args.quick else []) + args.overrides, {"mot": VEM_MOT, "scass": VEM_SCASS})
    if args.workdir:
        routed["mot"][:0] = [f"User.data_dir={data / 'mot_3t'}", f"User.save_root={out}"]
        routed["scass"][:0] = [f"User.data_dir={data / 'mixtures'}", f"User.save_root={out}"]
    if args.print_config:
        run([PY, "mixdvae_mot.py", MOT_CFG, *sets(routed["mot"]), "--print-config"], echo=False)
        run([PY, "mixdvae_scass.py", SCASS_CFG, *sets(routed["scass"]), "--print-config"], echo=False)
        return
    make_data(data, QUICK if args.quick else FULL)
    t_data = time.perf_counter() - t0
    run([PY, "mixdvae_mot.py", MOT_CFG, *sets(routed["mot"])])
    t_mot = time.perf_counter() - t0 - t_data
    run([PY, "mixdvae_scass.py", SCASS_CFG, *sets(routed["scass"])])
    t_scass = time.perf_counter() - t0 - t_data - t_mot
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s (data {t_data:.0f} s, tracking {t_mot:.0f} s, "
          f"separation {t_scass:.0f} s).\nRun directories (tables, figures, tracks, separated wavs) are in {out}/: "
          "the newest MOT_* and SC-ASS_* folders are this run's.")


if __name__ == "__main__":
    run_main(main)
