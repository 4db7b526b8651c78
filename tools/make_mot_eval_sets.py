"""Build the synthetic MOT evaluation sets: a validation and a test split of each hard set.

    python tools/make_mot_eval_sets.py                     # all sets, 300 val / 300 test samples
    python tools/make_mot_eval_sets.py --quick             # 12 / 12 samples in data/generated/mot_sets_quick
    python tools/make_mot_eval_sets.py --sets synthetic,occlusion --num-val 100
    python tools/make_mot_eval_sets.py --num-test2 2000    # also a second, larger test split (seed 3)
    python tools/make_mot_eval_sets.py --num-test3 2000    # and a third, confirmation split (seed 4)
    python tools/make_mot_eval_sets.py --num-val2 2000 --num-test4 2000   # round 9: a larger validation split
                                                           # (seed 5) and a fourth test split (seed 6)
    python tools/make_mot_eval_sets.py --num-test5 2000    # round 10: a fifth test split (seed 7)
    python tools/make_mot_eval_sets.py --num-test6 2000    # round 11: a sixth (seed 8)

writes ``ROOT/<set>/{val,test}/`` with ``data/mot_tracking_data_generation.py --synthetic`` (3 targets,
60 frames, 1920 x 1080). Every set starts from the project's synthetic default (noise 0.03, 15 % misses,
half the samples built with a crossing) and adds one difficulty:

| set | extra flags |
|---|---|
| synthetic | (none) |
| half_rate | ``--frame-step 2`` |
| occlusion | ``--occlusion`` (one target, 1-2 runs of 8-15 frames) |
| clutter | ``--clutter-rate 1`` (Poisson, per frame) |
| camera | ``--camera-motion pan+jitter --camera-magnitude 4`` |
| manoeuvre | ``--manoeuvres`` |

Validation uses ``--seed 2`` and test ``--seed 1`` in every set: val and test never share a seed, and a
hard set's samples are those of ``synthetic`` with the one change (same seed, same draws wherever the
change allows), so differences between rows measure the difficulty, not a new draw. ``--num-test2 N`` adds
``ROOT/<set>/test2/``, an independent replication split with ``--seed 3`` (README, Tracking, round 8: the
300-sample test intervals are wider than the gaps they must decide); ``--num-test3 N`` adds
``ROOT/<set>/test3/`` with ``--seed 4``, a confirmation split run once on the rows frozen before it was built
(round 9); ``--num-val2`` (seed 5) and ``--num-test4`` (seed 6) add a 2 000-sample validation split for choices
that 300 samples cannot make, and a test split for the rows chosen on it; ``--num-test5`` (seed 7) adds the
split of round 10's factor-separation run (docs/tracking_round10/README.md), ``--num-test6`` (seed 8) round 11's
(docs/tracking_round11/README.md). A split that already holds samples is
skipped (``--overwrite`` rebuilds it).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data import mot_tracking_data_generation as gen  # noqa: E402
from utils.errors import UserError, run_main  # noqa: E402

BASE = ["--num-targets", "3", "--seq-len", "60", "--noise-ratio", "0.03", "--miss-prob", "0.15",
        "--crossing-fraction", "0.5"]
SETS = {
    "synthetic": [],
    "half_rate": ["--frame-step", "2"],
    "occlusion": ["--occlusion"],
    "clutter": ["--clutter-rate", "1"],
    "camera": ["--camera-motion", "pan+jitter", "--camera-magnitude", "4"],
    "manoeuvre": ["--manoeuvres"],
}
SEEDS = {"val": 2, "test": 1, "test2": 3, "test3": 4, "val2": 5, "test4": 6, "test5": 7, "test6": 8}
EXTRA = ("test2", "test3", "val2", "test4", "test5", "test6")               # built only when asked (--num-<split>)


def split_args(name: str, split: str, out: Path, num_samples: int) -> list[str]:
    """The ``mot_tracking_data_generation.py`` arguments of one split of one set."""
    return ["--synthetic", "--out", str(out), "--num-samples", str(num_samples), "--seed", str(SEEDS[split]),
            *BASE, *SETS[name]]


def build(root: Path, names: list[str], sizes: dict[str, int], overwrite: bool = False) -> list[Path]:
    """Build every missing split; returns the directories written (skipped ones are reported, not returned)."""
    written = []
    for name in names:
        for split, num in sizes.items():
            out = root / name / split
            if not overwrite and (out / "metadata.json").is_file() and any(out.glob("*.npz")):
                print(f"{out}: exists, skipped (--overwrite rebuilds it)")
                continue
            argv = split_args(name, split, out, num)
            print("python data/mot_tracking_data_generation.py " + shlex.join(argv))
            gen.main(argv + ["--overwrite"])
            written.append(out)
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--root", type=Path, default=None,
                    help="output root (default data/generated/mot_sets, with --quick data/generated/mot_sets_quick)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated subset of " + ", ".join(SETS))
    ap.add_argument("--num-val", type=int, default=300)
    ap.add_argument("--num-test", type=int, default=300)
    ap.add_argument("--num-test2", type=int, default=0,
                    help="samples of the second test split test2 (seed 3); 0 = do not build it")
    for split in EXTRA[1:]:
        ap.add_argument(f"--num-{split}", type=int, default=0,
                        help=f"samples of the split {split} (seed {SEEDS[split]}); 0 = do not build it")
    ap.add_argument("--quick", action="store_true", help="12 val / 12 test samples (smoke test)")
    ap.add_argument("--overwrite", action="store_true", help="rebuild splits that exist")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SETS))
    if unknown:
        raise UserError(f"--sets: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    sizes = {"val": 12, "test": 12} if args.quick else {"val": args.num_val, "test": args.num_test}
    if min(sizes.values()) < 1:
        raise UserError("--num-val and --num-test must be >= 1")
    for split in EXTRA:
        num = getattr(args, f"num_{split}")
        if num < 0:
            raise UserError(f"--num-{split} must be >= 0, got {num}")
        if num and not args.quick:
            sizes[split] = num
    root = args.root or Path("data/generated/mot_sets_quick" if args.quick else "data/generated/mot_sets")
    build(root, names, sizes, args.overwrite)


if __name__ == "__main__":
    run_main(main)
