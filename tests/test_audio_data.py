"""Audio data specification (§4 audio data): file I/O, single-source sequences, mixtures."""

import argparse
import csv
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from data import scass_surrogate_corpus as corpus
from data import surrogate_scores as scores
from data.audio_dataset import SpectrogramDataset
from data.augment import AugmentOptions
from data.mixture_dataset import MixtureDataset, collate
from data import scass_mixture_audio_generation as mixture_generation
from data.scass_mixture_audio_generation import make_mixtures, scale_to_snr, valid_offsets
from utils.audio_io import load_audio, trim_silence, write_wav
from utils.errors import UserError, run_main
from utils.stft import STFT

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
FS = 16000


@pytest.fixture
def stft():
    return STFT(FS, 0.064, 0.25, 0)


def tone(seconds, freq=440.0, fs=FS, amplitude=0.5):
    t = np.arange(int(round(seconds * fs))) / fs
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path, x, fs=FS):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, fs, subtype="PCM_16" if path.suffix == ".flac" else "FLOAT")
    return path


# --- utils/audio_io ----------------------------------------------------------------------
def test_load_audio_resamples_with_a_notice(tmp_path, caplog):
    path = write(tmp_path / "a.wav", tone(0.5, 440, fs=22050), fs=22050)
    with caplog.at_level(logging.INFO, logger="utils.audio_io"):
        x = load_audio(path, FS)
    assert x.dtype == np.float32 and len(x) == 8000
    assert "a.wav" in caplog.text and "22050" in caplog.text and "16000" in caplog.text
    spectrum = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(len(x), 1 / FS)[spectrum.argmax()] == pytest.approx(440, abs=2)


def test_load_audio_folds_stereo_by_averaging(tmp_path, caplog):
    left, right = tone(0.1, 440), tone(0.1, 880)
    path = write(tmp_path / "st.flac", np.stack([left, right], axis=1))
    with caplog.at_level(logging.INFO, logger="utils.audio_io"):
        x = load_audio(path, FS)
    assert "st.flac" in caplog.text and "mono" in caplog.text
    np.testing.assert_allclose(x, (left + right) / 2, atol=1e-4)     # flac is 16-bit


def test_load_audio_missing_or_unreadable_file(tmp_path):
    with pytest.raises(UserError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav", FS)
    (tmp_path / "bad.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(UserError, match="bad.wav"):
        load_audio(tmp_path / "bad.wav", FS)


def test_trim_silence_keeps_the_loud_part():
    x = np.concatenate([np.zeros(8000), tone(1.0), 1e-3 * tone(0.5), np.zeros(4000)]).astype(np.float32)
    y = trim_silence(x, top_db=30)
    # The 1e-3 tail is 54 dB down: removed; frames are 1024 long, hop 256, so edges are within a frame.
    assert 16000 <= len(y) <= 16000 + 2 * 1024
    assert np.abs(y[:256]).max() < np.abs(y).max()      # starts at the onset frame
    assert len(trim_silence(np.zeros(5000, np.float32))) == 0
    quiet = 1e-3 * tone(0.5)
    np.testing.assert_array_equal(trim_silence(quiet), quiet)    # relative threshold: nothing to trim


def test_write_wav_is_atomic_and_round_trips(tmp_path):
    x = tone(0.2)
    path = write_wav(tmp_path / "sub" / "out.wav", x, FS, subtype="FLOAT")
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]      # no temporary left
    np.testing.assert_array_equal(load_audio(path, FS), x)


# --- data/audio_dataset ------------------------------------------------------------------
def test_dataset_tiles_non_overlapping_sequences(tmp_path, stft):
    # Frames = 1 + L // 256: 35 frames -> 3 sequences of 10, 10 -> 1, 6 -> none (skipped).
    write(tmp_path / "b" / "long.wav", tone(256 * 34 / FS))
    write(tmp_path / "a.wav", tone(256 * 9 / FS, 1000))
    write(tmp_path / "short.flac", tone(256 * 5 / FS))
    (tmp_path / "notes.txt").write_text("ignored")
    data = SpectrogramDataset(tmp_path, stft, sequence_len=10, trim=False)
    assert [p.name for p in data.files] == ["a.wav", "long.wav"]
    assert len(data) == 4
    item = data[3]
    assert item.shape == (10, 513) and item.dtype == torch.float32
    full = stft.stft(torch.from_numpy(tone(256 * 34 / FS))).abs().square()
    torch.testing.assert_close(item, full[20:30])
    assert (data[0].argmax(dim=-1) == 64).all()     # the 1 kHz file comes first (sorted)


def test_dataset_random_crops_one_per_file_per_epoch(tmp_path, stft):
    write(tmp_path / "a.wav", tone(1.0, 500))
    write(tmp_path / "b.wav", tone(0.5, 700))
    data = SpectrogramDataset(tmp_path, stft, sequence_len=8, trim=False, use_random_seq=True, seed=3)
    assert len(data) == 2
    crops = [data[0] for _ in range(2)]
    torch.testing.assert_close(crops[0], crops[1])          # same epoch, same crop
    full = data.spectrograms[0]
    starts = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        crop = data[0]
        matches = [s for s in range(full.shape[0] - 7) if torch.equal(full[s:s + 8], crop)]
        assert matches
        starts.add(matches[0])
    assert len(starts) > 1


def test_dataset_errors_name_the_directory(tmp_path, stft):
    with pytest.raises(UserError, match="empty"):
        SpectrogramDataset(tmp_path / "empty", stft, 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty"):
        SpectrogramDataset(tmp_path / "empty", stft, 10)
    write(tmp_path / "silent" / "a.wav", np.zeros(16000, np.float32))
    write(tmp_path / "silent" / "b.wav", np.zeros(8000, np.float32))
    with pytest.raises(UserError, match="silent"):
        SpectrogramDataset(tmp_path / "silent", stft, 10)
    write(tmp_path / "tiny" / "a.wav", tone(0.05))
    with pytest.raises(UserError, match="tiny"):
        SpectrogramDataset(tmp_path / "tiny", stft, 10)


# --- mixtures ---------------------------------------------------------------------------
def brute_force_valid(x, segment_len, frame_len, top_db):
    hop = frame_len // 2
    energy = np.array([np.sum(x[a:a + frame_len].astype(np.float64) ** 2)
                       for a in range(len(x) - frame_len + 1)])
    threshold = energy.max() * 10 ** (-top_db / 10)
    starts = np.arange(0, segment_len - frame_len + 1, hop)
    return [o for o in range(len(x) - segment_len + 1) if (energy[o + starts] >= threshold).all()]


def test_valid_offsets_matches_the_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=900).astype(np.float32)
    x[300:340] = 0.0                                  # a pause
    x[700:] *= 0.01                                   # a quiet (40 dB down) tail
    expected = brute_force_valid(x, 200, 32, 30)
    assert 0 < len(expected) < 900
    np.testing.assert_array_equal(valid_offsets(x, 200, 32, 30), expected)
    assert len(valid_offsets(np.zeros(900, np.float32), 200, 32, 30)) == 0
    assert len(valid_offsets(x[:150], 200, 32, 30)) == 0


def test_scale_to_snr_is_exact():
    rng = np.random.default_rng(1)
    s1, s2 = rng.normal(size=1000).astype(np.float32), 0.1 * rng.normal(size=1000).astype(np.float32)
    for snr in (-5.0, 0.0, 7.5):
        scaled = scale_to_snr(s1, s2, snr)
        assert 10 * np.log10(np.sum(s2.astype(np.float64) ** 2) / np.sum(scaled.astype(np.float64) ** 2)) \
            == pytest.approx(snr, abs=1e-3)


@pytest.fixture
def sources(tmp_path):
    """Flute-like tones with a 0.25 s pause in the middle, speech-like noise bursts."""
    rng = np.random.default_rng(2)
    gap = (16000, 20000)
    for i in range(2):
        x = tone(2.5, 400 + 100 * i)
        x[gap[0]:gap[1]] = 0.0
        write(tmp_path / "s1" / f"f{i}.wav", x)
        write(tmp_path / "s2" / "sub" / f"s{i}.wav", (0.3 * rng.normal(size=24000)).astype(np.float32))
    write(tmp_path / "s2" / "too_short.wav", tone(0.1))
    return tmp_path / "s1", tmp_path / "s2", gap


def test_mixtures_snr_segments_and_metadata(tmp_path, sources, stft):
    s1_dir, s2_dir, gap = sources
    rows = make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=12, sequence_len=10, snr_db=-5.0, seed=4)
    segment = 9 * 256
    for row in rows:
        with np.load(tmp_path / "mix" / f"{row['name']}.npz") as d:
            assert d["mixture"].shape == d["s1"].shape == d["s2"].shape == (segment,)
            np.testing.assert_allclose(d["mixture"], d["s1"] + d["s2"], atol=1e-6)
            energy1, energy2 = (np.sum(d[k].astype(np.float64) ** 2) for k in ("s1", "s2"))
            assert abs(10 * np.log10(energy2 / energy1) - -5.0) < 0.1
            assert float(d["snr_db"]) == -5.0 and int(d["fs"]) == FS
            assert str(d["s1_file"]) == row["s1_file"] and int(d["s1_offset"]) == row["s1_offset"]
        # The flute pause is never inside a segment; the 0.1 s file never yields one.
        offset = row["s1_offset"]
        assert offset + segment <= gap[0] or offset >= gap[1]
        assert row["s2_file"] != "too_short.wav" and row["s2_file"].startswith("sub")
    with open(tmp_path / "mix" / "metadata.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["name"] for r in table] == [f"mix_{i:05d}" for i in range(12)]
    again = make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=5, sequence_len=10, snr_db=-5.0, seed=4,
                          overwrite=True)
    assert again == rows[:5]                                             # reproducible
    assert len(list((tmp_path / "mix").glob("*.npz"))) == 5              # stale files removed


def test_mixtures_reject_a_directory_without_valid_segments(tmp_path, sources):
    s1_dir, _, _ = sources
    write(tmp_path / "pauses" / "a.wav", np.tile(np.r_[tone(0.05), np.zeros(800, np.float32)], 20))
    with pytest.raises(UserError, match="pauses"):
        make_mixtures(s1_dir, tmp_path / "pauses", tmp_path / "out", num=1, sequence_len=10)


def test_mixture_dataset_items_batches_and_round_trip(tmp_path, sources, stft):
    s1_dir, s2_dir, _ = sources
    make_mixtures(s1_dir, s2_dir, tmp_path / "mix", num=3, sequence_len=10, seed=5)
    data = MixtureDataset(tmp_path / "mix", stft, sequence_len=10)
    item = data[1]
    assert item["name"] == "mix_00001"
    assert item["mix_stft"].shape == (10, 513) and item["mix_stft"].dtype == torch.complex64
    assert item["s1_power"].shape == item["s2_power"].shape == (10, 513)
    assert item["mixture"].shape == (9 * 256,)
    torch.testing.assert_close(stft.stft(item["s1"]).abs().square(), item["s1_power"])
    assert (stft.istft(item["mix_stft"], 9 * 256) - item["mixture"]).abs().max() < 1e-5
    batch = collate([data[i] for i in range(3)])
    assert batch["mix_stft"].shape == (3, 10, 513) and batch["s2"].shape == (3, 9 * 256)
    assert batch["name"] == ["mix_00000", "mix_00001", "mix_00002"]
    with pytest.raises(UserError, match="expected 12"):
        MixtureDataset(tmp_path / "mix", stft, sequence_len=12)
    make_mixtures(s1_dir, s2_dir, tmp_path / "other", num=1, sequence_len=12, seed=5)
    shutil.copy(tmp_path / "other" / "mix_00000.npz", tmp_path / "mix" / "mix_99999.npz")
    with pytest.raises(UserError, match="mix_99999.npz"):
        MixtureDataset(tmp_path / "mix", stft)
    with pytest.raises(UserError, match="no mixture"):
        MixtureDataset(tmp_path / "s1", stft)


def test_mixture_cli_end_to_end(tmp_path, sources, monkeypatch, capsys):
    s1_dir, s2_dir, _ = sources
    args = ["--s1-dir", str(s1_dir), "--s2-dir", str(s2_dir), "--out", str(tmp_path / "m"), "--num", "2",
            "--sequence-len", "10", "--wav"]
    result = subprocess.run([sys.executable, "data/scass_mixture_audio_generation.py", *args], cwd=ROOT,
                            capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "wrote 2 mixtures" in result.stdout
    assert len(list((tmp_path / "m" / "wav").glob("*.wav"))) == 6
    args[1] = str(tmp_path / "missing")
    monkeypatch.setattr(sys, "argv", ["scass_mixture_audio_generation.py", *args, "--overwrite"])
    with pytest.raises(SystemExit) as exit_info:
        run_main(mixture_generation.main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: audio directory not found: {tmp_path / 'missing'}")


# --- surrogate corpora ------------------------------------------------------------------
def test_surrogate_corpus_reports_missing_tools(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="espeak-ng not found; install it with: apt-get install espeak-ng"):
        corpus.find_tools(True, True, None)
    with pytest.raises(UserError, match="apt-get install fluidsynth"):
        corpus.find_tools(False, True, None)
    assert not (tmp_path / "x").exists()


def test_surrogate_midi_file_is_a_flute_track():
    events, info = scores.flute_events(np.random.default_rng(0), 3.0)
    data = scores.midi_file(events)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk" and data.endswith(b"\xff\x2f\x00")
    assert bytes([0xC0, 73]) in data                                  # program change to GM flute
    assert info["num_notes"] == sum(1 for _, _, m in events if m[0] == 0x90)
    assert any(m[0] == 0xE0 and m != scores._pitch_bend(0.0) for _, _, m in events)   # vibrato bends


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("fluidsynth") is None
                    or not any(Path(p).is_file() for p in corpus.SOUNDFONTS),
                    reason="espeak-ng, fluidsynth or a GM SoundFont is not installed")
def test_surrogate_corpus_tiny_run(tmp_path):
    args = [f"--{s}-{split}=1" for s in ("speech", "flute") for split in corpus.SPLITS]
    result = subprocess.run([sys.executable, "data/scass_surrogate_corpus.py", "--out", str(tmp_path),
                             "--seed", "1", "--min-sec", "1.5", "--max-sec", "2", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.wav"))
    assert files == sorted(f"{s}/{split}/{s}_{split}_0000.wav" for s in ("speech", "flute")
                           for split in corpus.SPLITS)
    assert (tmp_path / "manifest.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]         # temporaries cleaned
    for name in files:
        info = sf.info(str(tmp_path / name))
        x = load_audio(tmp_path / name, FS)
        assert info.samplerate == FS and info.channels == 1
        assert 0.5 < len(x) / FS < 6 and np.abs(x).max() == pytest.approx(0.9, abs=1e-3)


# --- broader surrogate corpus: engines, SoundFonts, augmentation -------------------------
def test_default_plan_is_the_espeak_corpus_and_extra_streams_leave_it_alone():
    counts = {s: {"train": 6, "val": 2, "test": 2} for s in ("speech", "flute")}
    plain = corpus.plan_jobs(counts, 0, 3.0, 8.0)
    assert {j["engine"] for j in plain if j["source"] == "speech"} == {"espeak"}
    augmented = corpus.plan_jobs(counts, 0, 3.0, 8.0, soundfonts=("a.sf2", "b.sf2"),
                                 augment=AugmentOptions(speed=(0.85, 1.15), noise_snr=(30, 50), prob=1.0))
    for a, b in zip(plain, augmented):
        assert {k: v for k, v in b.items() if k not in ("augment", "soundfont")} == a
        assert ("augment" in b) == (b["split"] == "train")           # only train is augmented by default
    assert {j["soundfont"] for j in augmented if j["source"] == "flute"} == {"a.sf2", "b.sf2"}


def test_band_limit_flag_adds_only_a_cutoff_and_the_default_flags_change_nothing():
    counts = {s: {"train": 6, "val": 2, "test": 2} for s in ("speech", "flute")}
    plain = corpus.plan_jobs(counts, 0, 3.0, 8.0)
    flags = {f"aug_{k}": None for k in ("speed", "tempo", "pitch", "tilt", "eq", "reverb", "noise_snr", "gain_db",
                                        "bandlimit")}
    default = corpus.augment_options(argparse.Namespace(**flags, aug_all=False, aug_drr=(0.0, 12.0), aug_prob=0.5))
    assert not default.enabled and corpus.plan_jobs(counts, 0, 3.0, 8.0, augment=default) == plain
    with_all = corpus.augment_options(argparse.Namespace(**flags, aug_all=True, aug_drr=(0.0, 12.0), aug_prob=0.5))
    assert with_all.bandlimit is None                                  # --aug-all builds the corpus it always did
    limited = corpus.augment_options(argparse.Namespace(**{**flags, "aug_bandlimit": (3400.0, 8000.0)},
                                                        aug_all=False, aug_drr=(0.0, 12.0), aug_prob=1.0))
    banded = corpus.plan_jobs(counts, 0, 3.0, 8.0, augment=limited)
    for a, b in zip(plain, banded):
        assert {k: v for k, v in b.items() if k != "augment"} == a
        if b["split"] == "train":
            assert set(b["augment"]) == {"bandlimit_hz"} and 3400 <= b["augment"]["bandlimit_hz"] <= 8000
        else:
            assert "augment" not in b


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_band_limited_corpus_tiny_run_records_the_cutoff_and_has_nothing_above_it(tmp_path):
    counts = {"speech": {"train": 2, "val": 1, "test": 0}, "flute": {"train": 0, "val": 0, "test": 0}}
    manifest = corpus.make_corpus(tmp_path, counts, seed=2, min_sec=1.5, max_sec=2.0, jobs=1,
                                  augment=AugmentOptions(bandlimit=(3400, 4000), prob=1.0))
    assert tuple(manifest["augment"]["bandlimit"]) == (3400, 4000)
    for f in manifest["files"]:
        x = load_audio(tmp_path / f["path"], FS).astype(float)
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / FS)
        if f["split"] == "train":
            cutoff = f["augment"]["bandlimit_hz"]
            assert 3400 <= cutoff <= 4000
            assert power[freqs > cutoff + 50].sum() < 1e-5 * power.sum()    # 16-bit rounding noise only
        else:
            assert "augment" not in f and power[freqs > 4050].sum() > 1e-3 * power.sum()


def test_every_engine_is_planned_and_test_voices_are_unseen():
    counts = {"speech": {"train": 60, "val": 0, "test": 30}, "flute": {"train": 0, "val": 0, "test": 0}}
    jobs = corpus.plan_jobs(counts, 1, 3.0, 4.0, engines=("espeak", "flite", "festival"))
    train = {(j["engine"], j["voice"]) for j in jobs if j["split"] == "train"}
    test = {(j["engine"], j["voice"]) for j in jobs if j["split"] == "test"}
    assert {e for e, _ in train} == {"espeak", "flite", "festival"}
    assert not train & test and ("festival", "kal_diphone") not in train


def test_musescore_general_soundfont_is_refused_even_behind_a_symlink(tmp_path):
    target = tmp_path / "MuseScore_General.sf2"
    target.write_bytes(b"RIFF")
    link = tmp_path / "default-GM.sf2"
    link.symlink_to(target)
    for path in (target, link):
        with pytest.raises(UserError, match="reserved"):
            corpus.check_soundfont(str(path))


def test_unknown_engine_and_split_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="unknown speech engine 'svox'"):
        corpus.find_tools(True, False, None, engines=("svox",))
    counts = {s: {"train": 1, "val": 0, "test": 0} for s in ("speech", "flute")}
    with pytest.raises(UserError, match="unknown split"):
        corpus.make_corpus(tmp_path, counts, augment_splits=("training",))


@pytest.mark.skipif(not all(shutil.which(t) for t in ("flite", "text2wave", "fluidsynth"))
                    or sum(Path(p).is_file() for p in corpus.SOUNDFONTS) < 2,
                    reason="flite, festival, fluidsynth or two GM SoundFonts are not installed")
def test_broad_corpus_tiny_run_renders_every_engine_with_augmentation(tmp_path, monkeypatch):
    counts = {"speech": {"train": 4, "val": 0, "test": 0}, "flute": {"train": 2, "val": 0, "test": 0}}
    voices = ("flite:awb", "festival:ked_diphone")
    options = AugmentOptions(speed=(0.9, 1.1), rt60=(0.2, 0.4), gain_db=(-6, -6), prob=1.0)
    # one voice per engine (the HTS voice is the slow one): keeps the test to seconds
    monkeypatch.setattr(corpus, "ENGINE_VOICES", {"flite": (("awb",), ("kal16",)),
                                                  "festival": (("ked_diphone",), ("kal_diphone",))})
    manifest = corpus.make_corpus(tmp_path, counts, seed=3, min_sec=1.5, max_sec=2.0, jobs=1,
                                  engines=("flite", "festival"), all_soundfonts=True, augment=options)
    speech = [f for f in manifest["files"] if f["source"] == "speech"]
    assert {f"{f['engine']}:{f['voice']}" for f in speech} <= set(voices) and len(speech) == 4
    for f in manifest["files"]:
        x = load_audio(tmp_path / f["path"], FS)
        assert f["augment"]["gain_db"] == -6
        assert np.abs(x).max() == pytest.approx(0.9 * 10 ** (-6 / 20), abs=1e-3)
    assert tuple(manifest["augment"]["speed"]) == (0.9, 1.1)
    assert {f["soundfont"] for f in manifest["files"] if f["source"] == "flute"} <= set(manifest["soundfonts"])
