"""Generate two-source mixtures (flute s1 + speech s2) for SC-ASS.

Each mixture takes one random segment from a random file of each source directory. The
segment has ``(sequence_len - 1) * hop`` samples, so its STFT has exactly ``sequence_len``
frames. A segment is *silent somewhere*, and never used, when one of its 32 ms frames
(``--silence-frame-sec``; hop half a frame, aligned with the segment start) has an energy more
than ``top_db`` dB below the loudest 32 ms frame of its file; segments are drawn uniformly
among the silence-free offsets of a randomly chosen file. s1 is scaled so that
``10 log10(||s2||² / ||s1||²) = snr`` and the mixture is ``s1 + s2``.

Writes ``OUT/mix_00000.npz ...`` (keys: mixture, s1, s2, fs, snr_db, s1_file, s2_file,
s1_offset, s2_offset), ``OUT/metadata.csv`` and, with ``--wav``, ``OUT/wav/mix_00000_{mix,s1,s2}.wav``.

    python data/scass_mixture_audio_generation.py --s1-dir FLUTE --s2-dir SPEECH --out DIR --num 100
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from tqdm import tqdm

from utils.audio_io import list_audio_files, load_audio, write_wav
from utils.errors import UserError, run_main
from utils.output_dir import atomic_write, check_out_dir, staged_dir
from utils.stft import STFT

OWNED = ("mix_*.npz", "metadata.csv", "wav")   # what a mixture set holds (see check_out_dir)


def valid_offsets(x: np.ndarray, segment_len: int, frame_len: int, top_db: float) -> np.ndarray:
    """Start offsets of the silence-free segments of ``x`` (see module docstring).

    A frame starting at sample ``a`` has energy ``sum(x[a:a+frame_len]**2)``; the file's peak
    is the maximum over every ``a``. A segment starting at ``o`` is valid when every frame
    ``o + k * hop`` (``hop = frame_len // 2``, frames inside the segment) is within ``top_db``
    of that peak.

    Shape:
        x: (L,) -> (num_valid,) int64, sorted.
    """
    hop = max(frame_len // 2, 1)
    num_frames = (segment_len - frame_len) // hop + 1
    if len(x) < segment_len or num_frames < 1:
        return np.zeros(0, dtype=np.int64)
    cumsum = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
    energy = cumsum[frame_len:] - cumsum[:-frame_len]            # (L - frame_len + 1,)
    peak = energy.max()
    if peak <= 0:
        return np.zeros(0, dtype=np.int64)
    quiet = energy < peak * 10.0 ** (-top_db / 10.0)
    # Offsets o = m * hop + r: the frames of segment o are rows m..m+num_frames-1 of column r.
    rows = math.ceil(len(quiet) / hop)
    grid = np.ones(rows * hop, dtype=bool)
    grid[:len(quiet)] = quiet
    grid = grid.reshape(rows, hop)
    quiet_count = np.concatenate([np.zeros((1, hop), dtype=np.int64), np.cumsum(grid, axis=0)])
    ok = (quiet_count[num_frames:] - quiet_count[:-num_frames]) == 0   # (rows - num_frames + 1, hop)
    offsets = np.flatnonzero(ok.reshape(-1))
    return offsets[offsets <= len(x) - segment_len]


def scale_to_snr(s1: np.ndarray, s2: np.ndarray, snr_db: float) -> np.ndarray:
    """Scale s1 so that ``10 log10(||s2||² / ||s1_scaled||²) = snr_db``.

    Shape:
        s1, s2: (L,) -> (L,).
    """
    e1 = np.sum(np.square(s1, dtype=np.float64))
    e2 = np.sum(np.square(s2, dtype=np.float64))
    return (s1 * math.sqrt(e2 / (e1 * 10.0 ** (snr_db / 10.0)))).astype(np.float32)


class _SegmentSource:
    """Draws silence-free segments from the audio files of one directory."""

    def __init__(self, data_dir: Path, fs: int, segment_len: int, frame_len: int, top_db: float):
        self.data_dir = Path(data_dir)
        self.files = list_audio_files(self.data_dir)
        if not self.files:
            raise UserError(f"no .wav/.flac files in {self.data_dir}")
        self.usable = list(range(len(self.files)))
        self.fs, self.segment_len, self.frame_len, self.top_db = fs, segment_len, frame_len, top_db
        self._load = lru_cache(maxsize=256)(self._load_uncached)

    def _load_uncached(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x = load_audio(self.files[index], self.fs)
        return x, valid_offsets(x, self.segment_len, self.frame_len, self.top_db)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, Path, int]:
        """A random silence-free segment: (samples (segment_len,), file, offset)."""
        while self.usable:
            pos = int(rng.integers(len(self.usable)))
            index = self.usable[pos]
            audio, offsets = self._load(index)
            if len(offsets) == 0:
                self.usable.pop(pos)
                continue
            offset = int(offsets[rng.integers(len(offsets))])
            segment = audio[offset:offset + self.segment_len]
            return segment, self.files[index].relative_to(self.data_dir), offset
        raise UserError(f"no file in {self.data_dir} has a {self.segment_len}-sample segment without "
                        f"silence (all too short, or with pauses of {self.frame_len} samples or more)")


def _save_npz_atomic(path: Path, **arrays) -> None:
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def make_mixtures(s1_dir, s2_dir, out_dir, num: int, sequence_len: int = 50, snr_db: float = 0.0,
                  fs: int = 16000, wlen_sec: float = 0.064, hop_percent: float = 0.25, top_db: float = 30.0,
                  seed: int = 0, write_wavs: bool = False, silence_frame_sec: float = 0.032,
                  overwrite: bool = False) -> list[dict]:
    """Write ``num`` mixtures of a flute (s1) and a speech (s2) segment to ``out_dir``.

    Args:
        s1_dir, s2_dir: source directories (flute, speech), searched recursively.
        out_dir: output directory. The set is written into a temporary folder and swapped in at the
            end, so a failed run leaves an existing set untouched; replacing one needs ``overwrite``.
        num: number of mixtures.
        sequence_len: STFT frames per mixture; segments have ``(sequence_len - 1) * hop`` samples.
        snr_db: speech-to-flute ratio ``10 log10(||s2||² / ||s1||²)``.
        fs, wlen_sec, hop_percent: the STFT defining ``hop``.
        top_db, silence_frame_sec: silence threshold and frame length (see :func:`valid_offsets`).
        seed: random seed.
        write_wavs: also write ``wav/mix_XXXXX_{mix,s1,s2}.wav`` (float wav).
        overwrite: replace an existing set in ``out_dir``.

    Returns:
        one metadata row (dict) per mixture, as written to ``metadata.csv``.
    """
    if num < 1 or sequence_len < 2:
        raise UserError(f"need num >= 1 and sequence_len >= 2 (got num={num}, sequence_len={sequence_len})")
    stft = STFT(fs, wlen_sec, hop_percent)
    segment_len = stft.segment_samples(sequence_len)
    frame_len = max(round(silence_frame_sec * fs), 2)
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite, OWNED)
    sources = [_SegmentSource(d, fs, segment_len, frame_len, top_db) for d in (s1_dir, s2_dir)]
    with staged_dir(out_dir) as staging:
        rows = _write_mixtures(sources, staging, num, snr_db, fs, segment_len, seed, write_wavs)
    return rows


def _write_mixtures(sources: list[_SegmentSource], out_dir: Path, num: int, snr_db: float, fs: int,
                    segment_len: int, seed: int, write_wavs: bool) -> list[dict]:
    """The mixtures, metadata.csv and (``write_wavs``) the wavs, written into the fresh folder ``out_dir``."""
    if write_wavs:
        (out_dir / "wav").mkdir()
    rng = np.random.default_rng(seed)
    rows = []
    for i in tqdm(range(num), desc="mixtures", disable=None):
        (s1, s1_file, s1_offset), (s2, s2_file, s2_offset) = (src.draw(rng) for src in sources)
        s1 = scale_to_snr(s1, s2, snr_db)
        mixture = s1 + s2
        name = f"mix_{i:05d}"
        _save_npz_atomic(out_dir / f"{name}.npz", mixture=mixture, s1=s1, s2=s2, fs=np.int64(fs),
                         snr_db=np.float64(snr_db), s1_file=str(s1_file), s2_file=str(s2_file),
                         s1_offset=np.int64(s1_offset), s2_offset=np.int64(s2_offset))
        if write_wavs:
            for suffix, signal in (("mix", mixture), ("s1", s1), ("s2", s2)):
                write_wav(out_dir / "wav" / f"{name}_{suffix}.wav", signal, fs, subtype="FLOAT")
        rows.append({"name": name, "s1_file": str(s1_file), "s1_offset": s1_offset, "s2_file": str(s2_file),
                     "s2_offset": s2_offset, "snr_db": snr_db, "fs": fs, "num_samples": segment_len})

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out_dir / "metadata.csv", text.getvalue())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--s1-dir", required=True, help="flute (source 1) audio directory")
    parser.add_argument("--s2-dir", required=True, help="speech (source 2) audio directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num", type=int, default=100, help="number of mixtures")
    parser.add_argument("--sequence-len", type=int, default=50, help="STFT frames per mixture")
    parser.add_argument("--snr", type=float, default=0.0, help="speech-to-flute SNR in dB")
    parser.add_argument("--fs", type=int, default=16000)
    parser.add_argument("--wlen-sec", type=float, default=0.064)
    parser.add_argument("--hop-percent", type=float, default=0.25)
    parser.add_argument("--top-db", type=float, default=30.0, help="silence threshold below the file peak")
    parser.add_argument("--silence-frame-sec", type=float, default=0.032,
                        help="frame length of the silence test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wav", action="store_true", help="also write wav triplets for listening")
    parser.add_argument("--overwrite", action="store_true", help="replace a set already in --out")
    args = parser.parse_args()
    rows = make_mixtures(args.s1_dir, args.s2_dir, args.out, args.num, sequence_len=args.sequence_len,
                         snr_db=args.snr, fs=args.fs, wlen_sec=args.wlen_sec, hop_percent=args.hop_percent,
                         top_db=args.top_db, seed=args.seed, write_wavs=args.wav,
                         silence_frame_sec=args.silence_frame_sec, overwrite=args.overwrite)
    seconds = rows[0]["num_samples"] / args.fs
    print(f"wrote {len(rows)} mixtures of {seconds:.3f} s ({args.sequence_len} frames) at SNR "
          f"{args.snr:g} dB to {args.out} (npz + metadata.csv{' + wav/' if args.wav else ''})")


if __name__ == "__main__":
    run_main(main)
