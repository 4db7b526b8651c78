"""What the surrogate corpus says and plays: random English sentences from a tiny grammar, and random
flute phrases written as a General-MIDI file (program 73) with delayed pitch-bend vibrato.

Pure functions of a seeded generator; ``data/scass_surrogate_corpus.py`` renders them with speech
synthesisers and FluidSynth.
"""

from __future__ import annotations

import math
import struct

import numpy as np

# --- a tiny English grammar -------------------------------------------------------------
NAMES = ("Anna", "Peter", "Maria", "James", "Laura", "Thomas", "Sophie", "Daniel", "Clara", "Oliver",
         "Helen", "Victor")
ADJECTIVES = ("small", "old", "bright", "quiet", "heavy", "green", "careful", "sudden", "narrow",
              "golden", "tired", "empty", "distant", "warm", "broken", "gentle", "curious", "silver",
              "patient", "early")
NOUNS = ("garden", "window", "teacher", "river", "letter", "market", "engine", "doctor", "bridge",
         "village", "painter", "station", "kitchen", "forest", "captain", "student", "harbour",
         "mountain", "library", "farmer", "basket", "mirror", "lantern", "council", "journey")
PLACES = ("the harbour", "the old mill", "the city hall", "the train station", "the museum",
          "the north road", "the village square", "the school yard", "the river bank")
TRANSITIVE = ("found", "painted", "carried", "opened", "watched", "repaired", "counted",
              "described", "followed", "borrowed", "cleaned", "noticed", "measured", "visited")
INTRANSITIVE = ("waited", "laughed", "arrived", "listened", "slept", "worked", "travelled",
                "returned", "whispered", "hesitated")
ADVERBS = ("quietly", "slowly", "early", "again", "yesterday", "carefully", "at last",
           "before dawn", "without a word", "after lunch")
PREPOSITIONS = ("near", "behind", "inside", "across", "beside", "beyond", "under")
NUMBERS = ("two", "three", "four", "seven", "ten", "twelve", "twenty", "a hundred")
CONNECTIVES = ("because", "although", "while", "when", "until", "so")


def _noun_phrase(rng: np.random.Generator) -> str:
    determiner = rng.choice(["the", "a", "that", "every", "my", "our"])
    if rng.random() < 0.6:
        return f"{determiner} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return f"{determiner} {rng.choice(NOUNS)}"


def _clause(rng: np.random.Generator) -> str:
    subject = rng.choice(NAMES) if rng.random() < 0.4 else _noun_phrase(rng)
    kind = rng.integers(4)
    if kind == 0:
        return f"{subject} {rng.choice(TRANSITIVE)} {_noun_phrase(rng)}"
    if kind == 1:
        return f"{subject} {rng.choice(INTRANSITIVE)} {rng.choice(ADVERBS)}"
    if kind == 2:
        return f"{subject} {rng.choice(TRANSITIVE)} {rng.choice(NUMBERS)} {rng.choice(NOUNS)}s " \
               f"{rng.choice(PREPOSITIONS)} {rng.choice(PLACES)}"
    return f"{subject} {rng.choice(INTRANSITIVE)} {rng.choice(PREPOSITIONS)} {_noun_phrase(rng)}"


def random_sentence(rng: np.random.Generator) -> str:
    """One random English sentence (statement, compound statement or question)."""
    kind = rng.random()
    if kind < 0.5:
        text = _clause(rng) + "."
    elif kind < 0.8:
        text = f"{_clause(rng)} {rng.choice(CONNECTIVES)} {_clause(rng)}."
    else:
        text = f"did {_noun_phrase(rng)} really {rng.choice(['see', 'hear', 'find', 'open'])} " \
               f"{_noun_phrase(rng)} {rng.choice(PREPOSITIONS)} {rng.choice(PLACES)}?"
    return text[0].upper() + text[1:]


def speech_sentences(rng: np.random.Generator, seconds: float, rate_wpm: float, exclude: set) -> list[str]:
    """At least one sentence, none in ``exclude``, lasting about ``seconds`` when spoken at
    ``rate_wpm`` (sentences are added while that brings the estimate closer to ``seconds``)."""
    def error(sentences):
        spoken = sum(len(s.split()) for s in sentences) * 60.0 / rate_wpm + 0.4 * (len(sentences) - 1)
        return abs(spoken - seconds)

    sentences: list[str] = []
    while True:
        sentence = random_sentence(rng)
        if sentence in exclude:
            continue
        if sentences and error([*sentences, sentence]) >= error(sentences):
            return sentences
        sentences.append(sentence)


# --- General-MIDI flute phrases ---------------------------------------------------------
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
NOTE_BEATS = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
NOTE_BEATS_P = np.array([0.3, 0.35, 0.1, 0.2, 0.05])
FLUTE_PROGRAM = 73                       # General MIDI "Flute", 0-indexed
TICKS_PER_BEAT, TEMPO_US = 480, 500_000  # the file's own clock: 960 ticks per second
BEND_CENTS = 200.0                       # default pitch-bend range: +-2 semitones


def flute_events(rng: np.random.Generator, seconds: float) -> tuple[list[tuple[float, int, bytes]], dict]:
    """Random phrases (MIDI channel 0) lasting about ``seconds``.

    Returns:
        events (time_sec, order, message) — order puts note-offs before controls before
        note-ons at equal times — and a dict describing the melody.
    """
    bpm = float(rng.uniform(60, 140))
    beat = 60.0 / bpm
    scale = MAJOR if rng.random() < 0.6 else MINOR
    root = int(rng.integers(60, 73))                    # C4..C5: stays inside the flute range
    vib_rate, vib_cents = float(rng.uniform(4.5, 6.5)), float(rng.uniform(10, 35))
    events = [(0.0, 1, bytes([0xC0, FLUTE_PROGRAM])), (0.0, 1, bytes([0xB0, 7, 110]))]
    t, degree, num_notes = 0.05, int(rng.integers(0, 7)), 0
    while t < seconds:
        loudness = rng.uniform(45, 115)
        swell = rng.uniform(-25, 25)                    # crescendo (>0) or diminuendo over the phrase
        phrase_len = int(rng.integers(3, 11))
        for k in range(phrase_len):
            if t >= seconds:
                break
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 0, 3, -3]), -3, 12))
            note = root + scale[degree % 7] + 12 * (degree // 7)
            length = float(rng.choice(NOTE_BEATS, p=NOTE_BEATS_P)) * beat
            velocity = int(np.clip(loudness + swell * k / max(phrase_len - 1, 1) + rng.normal(0, 6), 20, 127))
            events += [(t, 2, bytes([0x90, note, velocity])), (t + length, 0, bytes([0x80, note, 0])),
                       (t, 1, _pitch_bend(0.0))]
            events += _vibrato(t, length, vib_rate, vib_cents)
            t += length
            num_notes += 1
        t += float(rng.uniform(0.25, 0.9))              # rests only between phrases
    events.append((t + 0.5, 3, b"\xff\x2f\x00"))        # end of track after the release
    info = {"tempo_bpm": round(bpm, 1), "root_midi": root, "mode": "major" if scale == MAJOR else "minor",
            "num_notes": num_notes, "vibrato_hz": round(vib_rate, 2), "vibrato_cents": round(vib_cents, 1)}
    return events, info


def _pitch_bend(cents: float) -> bytes:
    value = int(np.clip(round(8192 + cents / BEND_CENTS * 8192), 0, 16383))
    return bytes([0xE0, value & 0x7F, value >> 7])


def _vibrato(start: float, length: float, rate_hz: float, cents: float) -> list[tuple[float, int, bytes]]:
    """Delayed vibrato: pitch bend every 10 ms, depth ramping in after 0.15 s (notes > 0.35 s)."""
    if length <= 0.35:
        return []
    times = np.arange(start + 0.15, start + length - 0.02, 0.01)
    ramp = np.minimum((times - start - 0.15) / 0.3, 1.0)
    bends = cents * ramp * np.sin(2 * math.pi * rate_hz * (times - start - 0.15))
    return [(float(tm), 1, _pitch_bend(float(b))) for tm, b in zip(times, bends)]


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_file(events: list[tuple[float, int, bytes]]) -> bytes:
    """A format-0 Standard MIDI File from (time_sec, order, message) events."""
    ticks_per_sec = TICKS_PER_BEAT * 1e6 / TEMPO_US
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + TEMPO_US.to_bytes(3, "big"))
    last = 0
    for seconds, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        tick = round(seconds * ticks_per_sec)
        track += _vlq(tick - last) + message
        last = tick
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
            + b"MTrk" + struct.pack(">I", len(track)) + bytes(track))

