"""Surrogate speech and flute corpora for SC-ASS demos and tests.

Speech: random English sentences (an embedded grammar) spoken by one or more synthesis
engines (``--engines``): espeak-ng with several voice variants, rates and pitches (the default,
the corpus of the shipped DVAEs), Flite's voices and Festival's diphone and HTS voices. The test
split uses voices that train/val never use, and sentences that never occur in train. Flute:
random melodic phrases written as a General-MIDI file (program 73, flute) with random key,
tempo, note lengths, dynamics, rests between phrases and delayed pitch-bend vibrato, rendered by
FluidSynth with a GM SoundFont (``--all-soundfonts``: each file with one of every installed GM
SoundFont). The MuseScore General SoundFont is reserved for independent evaluation (README, reserved data) and refused.

``--aug-*`` flags augment the files of ``--aug-splits`` (default train) with ``data/augment.py``:
speed, tempo, pitch, spectral tilt/EQ, room reverberation, noise, gain and a band limit (a low-pass at
a random cutoff, ``--aug-bandlimit``; not part of ``--aug-all``), every parameter drawn from a seeded
stream of its own (the un-augmented draws stay the same) and recorded per file.

Every file is folded to mono, resampled to ``--fs``, (augmented,) trimmed (30 dB) and
peak-normalised (then, with ``--aug-gain-db``, attenuated). Writes
``OUT/{speech,flute}/{train,val,test}/*.wav`` and ``OUT/manifest.json``.

    python data/scass_surrogate_corpus.py --out data/generated/surrogate --seed 0
    python data/scass_surrogate_corpus.py --out data/generated/surrogate_broad --seed 0 \
        --engines espeak,flite,festival --all-soundfonts --aug-all
    python data/scass_surrogate_corpus.py --out data/generated/surrogate_bl --seed 0 \
        --aug-bandlimit 3400,8000 --aug-prob 0.5 --aug-splits train
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from tqdm import tqdm

from data.augment import AugmentOptions, apply, apply_gain, draw_parameters
from data.surrogate_scores import flute_events, midi_file, speech_sentences
from utils.audio_io import load_audio, trim_silence, write_wav
from utils.errors import UserError, run_main
from utils.output_dir import check_out_dir, staged_dir

SPLITS = ("train", "val", "test")
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2")
PEAK = 0.9
ESPEAK_AMPLITUDE = 80          # headroom: some voices clip espeak-ng's 16-bit output above ~150

# Voice variants (voice+variant): the test split's are disjoint from train/val's, so test
# speakers are unseen. British variants are spelled "en+..." because espeak-ng 1.51 silently
# ignores the variant in "en-gb+...".
SEEN_VOICES = ("en-us", "en", "en-us+f2", "en+f3", "en+m3", "en-gb-x-rp+m1", "en-us+f4", "en+m5",
               "en-029+f1", "en-gb-scotland+m2")
UNSEEN_VOICES = ("en-us+m7", "en+f5", "en-gb-x-gbclan+m4", "en-us+f1", "en-gb-x-rp+f4", "en+m6")

# Other engines' voices (Debian flite, festival + festvox-kallpc16k, festvox-kdlpc16k,
# festvox-us-slt-hts). Kal's voice is in both Flite (kal16) and Festival (kal_diphone): it is
# the unseen test speaker of both; SLT's (Flite slt, Festival's HTS voice) is seen in both.
ENGINE_VOICES = {
    "espeak": (SEEN_VOICES, UNSEEN_VOICES),
    "flite": (("awb", "rms", "slt"), ("kal16",)),
    "festival": (("ked_diphone", "cmu_us_slt_arctic_hts"), ("kal_diphone",)),
}
ENGINE_TOOLS = {"espeak": ("espeak-ng", "espeak-ng"), "flite": ("flite", "flite"),
                "festival": ("text2wave", "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts")}
NEUTRAL_WPM = 160.0            # flite/festival: duration stretch = NEUTRAL_WPM / rate_wpm
RESERVED_SOUNDFONT = "musescore"   # MuseScore General (any variant): kept for independent evaluation, never used


# --- planning and rendering -------------------------------------------------------------
def voice_list(engines: tuple[str, ...], split: str) -> list[str]:
    """The voices of ``split`` as ``engine:voice`` (espeak-ng voices alone keep their plain names)."""
    unseen = split == "test"
    return [voice if engine == "espeak" else f"{engine}:{voice}"
            for engine in engines for voice in ENGINE_VOICES[engine][1 if unseen else 0]]


def plan_jobs(counts: dict, seed: int, min_sec: float, max_sec: float, engines: tuple[str, ...] = ("espeak",),
              soundfonts: tuple[str, ...] = (), augment: AugmentOptions | None = None,
              augment_splits: tuple[str, ...] = ("train",), fs: int = 16000) -> list[dict]:
    """Every file to render, with all its random parameters drawn up front (reproducible
    whatever the number of parallel jobs).

    The SoundFont choice (when there are several) and the augmentation parameters come from
    streams of their own, so the text, voices and melodies are the same with or without them;
    with the defaults the plan is the one the shipped DVAEs' corpus was rendered from.
    """
    jobs = []
    train_sentences: set = set()
    for source in ("speech", "flute"):
        for split_index, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, 0 if source == "speech" else 1, split_index])
            for i in range(counts[source][split]):
                seconds = float(rng.uniform(min_sec, max_sec))
                job = {"source": source, "split": split, "target_sec": round(seconds, 2),
                       "path": f"{source}/{split}/{source}_{split}_{i:04d}.wav"}
                if source == "speech":
                    rate = int(rng.integers(130, 191))
                    sentences = speech_sentences(rng, seconds, rate,
                                                 exclude=set() if split == "train" else train_sentences)
                    if split == "train":
                        train_sentences.update(sentences)
                    voice = str(rng.choice(voice_list(engines, split)))
                    engine, _, name = voice.rpartition(":")
                    job.update(engine=engine or "espeak", voice=name, rate_wpm=rate,
                               pitch=int(rng.integers(25, 76)), text=" ".join(sentences))
                else:
                    events, info = flute_events(rng, seconds)
                    job.update(info, events=events)
                    if len(soundfonts) > 1:
                        pick = np.random.default_rng([seed, 4, split_index, i])
                        job["soundfont"] = soundfonts[int(pick.integers(len(soundfonts)))]
                    elif soundfonts:
                        job["soundfont"] = soundfonts[0]
                if augment is not None and augment.enabled and split in augment_splits:
                    stream = np.random.default_rng([seed, 2 if source == "speech" else 3, split_index, i])
                    job["augment"] = draw_parameters(augment, stream, fs)
                jobs.append(job)
    return jobs


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no message").splitlines()[-1]
        raise UserError(f"{command[0]} failed on {what} (exit {result.returncode}): {last}")


def speech_command(job: dict, raw: Path, text_file: Path) -> list[str]:
    """The synthesiser command line that speaks ``job['text']`` into ``raw``."""
    if job["engine"] == "espeak":
        return ["espeak-ng", "-w", str(raw), "-v", job["voice"], "-s", str(job["rate_wpm"]),
                "-p", str(job["pitch"]), "-a", str(ESPEAK_AMPLITUDE), job["text"]]
    stretch = f"{NEUTRAL_WPM / job['rate_wpm']:.3f}"
    text_file.write_text(job["text"] + "\n")
    if job["engine"] == "flite":
        return ["flite", "-voice", job["voice"], "--setf", f"duration_stretch={stretch}", "-f", str(text_file),
                "-o", str(raw)]
    return ["text2wave", "-eval", f"(voice_{job['voice']})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})",
            "-o", str(raw), str(text_file)]


def render(job: dict, out_dir: Path, tmp_dir: Path, fs: int, soundfont: str | None, top_db: float) -> dict:
    """Render one planned file to ``out_dir / job['path']``; returns its manifest entry.

    ``soundfont`` is used for flute jobs that do not name their own.
    """
    stem = Path(job["path"]).stem
    raw = tmp_dir / f"{stem}.wav"
    if job["source"] == "speech":
        text_file = tmp_dir / f"{stem}.txt"
        _run(speech_command(job, raw, text_file), job["path"])
        text_file.unlink(missing_ok=True)
    else:
        midi = tmp_dir / f"{stem}.mid"
        midi.write_bytes(midi_file(job["events"]))
        _run(["fluidsynth", "-ni", "-q", "-O", "float", "-F", str(raw), "-r", str(fs),
              job.get("soundfont", soundfont), str(midi)], job["path"])
        midi.unlink()
    x = load_audio(raw, fs)
    raw.unlink()
    if "augment" in job:
        x = apply(x, fs, job["augment"])
    x = trim_silence(x, top_db)
    peak = float(np.max(np.abs(x), initial=0.0))
    if peak == 0.0:
        raise UserError(f"rendering {job['path']} produced silence")
    x = x * (PEAK / peak)
    if "gain_db" in job.get("augment", {}):
        x = apply_gain(x, job["augment"]["gain_db"])
    write_wav(out_dir / job["path"], x, fs)
    entry = {k: v for k, v in job.items() if k != "events"}
    entry["duration_sec"] = round(len(x) / fs, 3)
    return entry


def check_soundfont(path: str) -> str:
    """The SoundFont ``path`` if it exists and is not reserved for independent evaluation, symlinks followed."""
    if not Path(path).is_file():
        raise UserError(f"SoundFont not found: {path}")
    if RESERVED_SOUNDFONT in Path(path).resolve().name.lower() or RESERVED_SOUNDFONT in Path(path).name.lower():
        raise UserError(f"{path} is the MuseScore General SoundFont ({Path(path).resolve()}), which is reserved "
                        "for independent evaluation; pass another --soundfont")
    return path


def find_tools(need_speech: bool, need_flute: bool, soundfont: str | list[str] | None,
               engines: tuple[str, ...] = ("espeak",), all_soundfonts: bool = False) -> list[str]:
    """Check the external renderers; return the SoundFont paths (empty when no flute is needed).

    ``soundfont``: one path or a list of paths; None = the first installed of :data:`SOUNDFONTS`,
    or every installed one with ``all_soundfonts``.
    """
    if need_speech:
        for engine in engines:
            if engine not in ENGINE_TOOLS:
                raise UserError(f"unknown speech engine {engine!r}; choose among {', '.join(ENGINE_TOOLS)}")
            tool, packages = ENGINE_TOOLS[engine]
            if shutil.which(tool) is None:
                raise UserError(f"{tool} not found; install it with: apt-get install {packages}")
    if not need_flute:
        return []
    if shutil.which("fluidsynth") is None:
        raise UserError("fluidsynth not found; install it with: apt-get install fluidsynth")
    if soundfont:
        return [check_soundfont(p) for p in ([soundfont] if isinstance(soundfont, str) else soundfont)]
    found = [check_soundfont(p) for p in SOUNDFONTS if Path(p).is_file()]
    if not found:
        raise UserError(f"no General-MIDI SoundFont found ({' or '.join(SOUNDFONTS)}); install one with: "
                        "apt-get install fluid-soundfont-gm (or timgm6mb-soundfont), or pass --soundfont FILE")
    return found if all_soundfonts else found[:1]


def make_corpus(out_dir, counts: dict, seed: int = 0, fs: int = 16000, min_sec: float = 3.0,
                max_sec: float = 8.0, soundfont: str | list[str] | None = None, jobs: int = 2,
                top_db: float = 30.0, engines: tuple[str, ...] = ("espeak",), all_soundfonts: bool = False,
                augment: AugmentOptions | None = None, augment_splits: tuple[str, ...] = ("train",),
                overwrite: bool = False) -> dict:
    """Render the surrogate corpora into ``out_dir`` and write ``manifest.json``.

    Everything is rendered into a temporary folder that replaces ``out_dir`` only at the end, so a failed
    run leaves an existing corpus as it was; replacing one needs ``overwrite``.

    Args:
        counts: ``{"speech": {"train": n, "val": n, "test": n}, "flute": {...}}``.
        min_sec, max_sec: range of the target duration of each file (before trimming).
        soundfont, all_soundfonts: see :func:`find_tools`.
        jobs: parallel renderer processes (1 or 2).
        engines: speech synthesisers among espeak, flite, festival.
        augment, augment_splits: augmentation (``data/augment.py``) of the files of these splits.

    Returns:
        the manifest (also written to ``out_dir/manifest.json``).
    """
    if not 0 < min_sec <= max_sec:
        raise UserError(f"need 0 < --min-sec <= --max-sec, got {min_sec} and {max_sec}")
    unknown_splits = sorted(set(augment_splits) - set(SPLITS))
    if unknown_splits:
        raise UserError(f"unknown split(s) to augment: {unknown_splits}; choose among {', '.join(SPLITS)}")
    engines = tuple(dict.fromkeys(engines))
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite, ("speech", "flute", "manifest.json"))
    soundfonts = find_tools(sum(counts["speech"].values()) > 0, sum(counts["flute"].values()) > 0, soundfont,
                            engines, all_soundfonts)
    planned = plan_jobs(counts, seed, min_sec, max_sec, engines, tuple(soundfonts), augment, augment_splits, fs)
    soundfont = soundfonts[0] if soundfonts else None
    start = time.monotonic()
    with staged_dir(out_dir) as staging:
        with tempfile.TemporaryDirectory(prefix=".render-", dir=staging) as tmp:
            pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, 2)))
            try:
                results = pool.map(lambda job: render(job, staging, Path(tmp), fs, soundfont, top_db), planned)
                files = list(tqdm(results, total=len(planned), desc="rendering", disable=None))
            finally:
                pool.shutdown(cancel_futures=True)
        extra = {"soundfonts": soundfonts, "engines": list(engines),
                 "augment": augment.as_dict() if augment is not None and augment.enabled else None,
                 "augment_splits": list(augment_splits)}
        manifest = _write_manifest(staging, files, fs, seed, soundfont, top_db, time.monotonic() - start, extra)
    return manifest


def _write_manifest(out_dir: Path, files: list[dict], fs: int, seed: int, soundfont: str | None, top_db: float,
                    seconds: float, extra: dict | None = None) -> dict:
    summary = {source: {split: {"files": 0, "minutes": 0.0} for split in SPLITS}
               for source in ("speech", "flute")}
    for f in files:
        summary[f["source"]][f["split"]]["files"] += 1
        summary[f["source"]][f["split"]]["minutes"] += f["duration_sec"] / 60
    for splits in summary.values():
        for info in splits.values():
            info["minutes"] = round(info["minutes"], 2)
    manifest = {"fs": fs, "seed": seed, "soundfont": soundfont, **(extra or {}), "peak": PEAK, "top_db": top_db,
                "render_seconds": round(seconds, 1), "summary": summary, "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


# Ranges of --aug-all (each overridden by its own flag). The band limit is not among them: --aug-all
# builds the same corpus as before it existed.
AUG_ALL = {"speed": (0.85, 1.15), "tempo": (0.85, 1.15), "pitch": (-2.0, 2.0), "tilt": (-3.0, 3.0), "eq": 6.0,
           "reverb": (0.15, 0.8), "noise_snr": (30.0, 50.0), "gain_db": (-12.0, 0.0)}


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (two numbers), got {text!r}") from None
    return low, high


def augment_options(args: argparse.Namespace) -> AugmentOptions:
    """The :class:`AugmentOptions` of the ``--aug-*`` flags (``--aug-all`` fills the unset ones)."""
    def pick(name, value):
        return value if value is not None else (AUG_ALL[name] if args.aug_all else None)

    try:
        return AugmentOptions(speed=pick("speed", args.aug_speed), tempo=pick("tempo", args.aug_tempo),
                              pitch=pick("pitch", args.aug_pitch), tilt=pick("tilt", args.aug_tilt),
                              eq_db=pick("eq", args.aug_eq) or 0.0, rt60=pick("reverb", args.aug_reverb),
                              drr_db=args.aug_drr, noise_snr=pick("noise_snr", args.aug_noise_snr),
                              gain_db=pick("gain_db", args.aug_gain_db), bandlimit=args.aug_bandlimit,
                              prob=args.aug_prob)
    except ValueError as err:
        raise UserError(f"augmentation flags: {err}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    for source, defaults in (("speech", (120, 20, 30)), ("flute", (120, 20, 30))):
        for split, default in zip(SPLITS, defaults):
            parser.add_argument(f"--{source}-{split}", type=int, default=default,
                                help=f"number of {source} files in {split} (default {default})")
    parser.add_argument("--min-sec", type=float, default=3.0, help="shortest target duration per file")
    parser.add_argument("--max-sec", type=float, default=8.0, help="longest target duration per file")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--top-db", type=float, default=30.0, help="silence trimming threshold")
    parser.add_argument("--engines", default="espeak",
                        help="comma list of speech synthesisers: espeak, flite, festival (default espeak)")
    parser.add_argument("--soundfont", action="append", default=None,
                        help="General-MIDI .sf2, repeatable (default: FluidR3_GM or TimGM6mb in /usr/share/sounds/sf2)")
    parser.add_argument("--all-soundfonts", action="store_true",
                        help="render each flute file with one of every installed GM SoundFont (seeded choice)")
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="parallel renderers")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    aug = parser.add_argument_group("augmentation (data/augment.py; seeded, recorded per file in manifest.json)")
    aug.add_argument("--aug-all", action="store_true",
                     help="enable every step with the ranges " + ", ".join(f"{k} {v}" for k, v in AUG_ALL.items()))
    aug.add_argument("--aug-speed", type=_range, metavar="MIN,MAX",
                     help="speed factor (tempo and pitch), e.g. 0.85,1.15")
    aug.add_argument("--aug-tempo", type=_range, metavar="MIN,MAX", help="tempo factor at constant pitch")
    aug.add_argument("--aug-pitch", type=_range, metavar="MIN,MAX", help="pitch shift in semitones")
    aug.add_argument("--aug-tilt", type=_range, metavar="MIN,MAX", help="spectral tilt in dB per octave")
    aug.add_argument("--aug-eq", type=float, metavar="DB", help="largest |gain| of 1-3 random peaking EQ bands")
    aug.add_argument("--aug-reverb", type=_range, metavar="MIN,MAX", help="room reverberation time RT60 in seconds")
    aug.add_argument("--aug-drr", type=_range, metavar="MIN,MAX", default=(0.0, 12.0),
                     help="direct-to-reverberant ratio in dB (default 0,12)")
    aug.add_argument("--aug-noise-snr", type=_range, metavar="MIN,MAX", help="SNR in dB of added white/pink noise")
    aug.add_argument("--aug-gain-db", type=_range, metavar="MIN,MAX",
                     help="gain in dB after peak normalisation (<= 0)")
    aug.add_argument("--aug-bandlimit", type=_range, metavar="MIN,MAX",
                     help="low-pass cutoff in Hz, e.g. 3400,8000 (telephone band; a cutoff >= fs/2 is no-op; "
                          "not part of --aug-all)")
    aug.add_argument("--aug-prob", type=float, default=0.5, help="probability of each enabled step (default 0.5)")
    aug.add_argument("--aug-splits", default="train", help="comma list of splits to augment (default train)")
    args = parser.parse_args()
    counts = {source: {split: getattr(args, f"{source}_{split}") for split in SPLITS}
              for source in ("speech", "flute")}
    if any(n < 0 for c in counts.values() for n in c.values()):
        raise UserError("file counts must be >= 0")
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    if not engines:
        raise UserError("--engines: name at least one of espeak, flite, festival")
    manifest = make_corpus(args.out, counts, seed=args.seed, fs=args.fs, min_sec=args.min_sec,
                           max_sec=args.max_sec, soundfont=args.soundfont, jobs=args.jobs, top_db=args.top_db,
                           overwrite=args.overwrite, engines=engines, all_soundfonts=args.all_soundfonts,
                           augment=augment_options(args),
                           augment_splits=tuple(s.strip() for s in args.aug_splits.split(",") if s.strip()))
    for source, splits in manifest["summary"].items():
        for split, info in splits.items():
            print(f"{args.out}/{source}/{split}: {info['files']} files, {info['minutes']:.2f} min")
    print(f"wrote {args.out}/manifest.json (rendered in {manifest['render_seconds']:.1f} s)")


if __name__ == "__main__":
    run_main(main)
