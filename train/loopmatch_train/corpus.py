"""Loop-pack corpus as scores: deterministic from a seed, no audio, no heavy imports.

A pack has a genre, an integer tempo typical of the genre, a key, a chord progression,
a groove (a kick pattern, swing, signature percussion) and one drum kit and one bass
patch. Its drum loops (main, busy, sparse, fill) and bass loops (main, busy, sparse)
are variations of that groove; the bass follows the progression and locks to the kick
the way the genre does. Times are in 16th-note steps; render.py turns them into sound.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, asdict

import numpy as np

STEPS = 16  # 16th notes per 4/4 bar

# Integer tempi typical of each genre. Few per genre and shared across genres (128, 130,
# 135, 140), so many packs share a tempo as in real libraries.
GENRES: dict[str, list[int]] = {
    "house": [122, 124, 126, 128],
    "techno": [128, 130, 135, 140],
    "hiphop": [85, 90, 95],
    "dnb": [170, 174],
    "trap": [140, 150],
    "breakbeat": [128, 130, 135],
    "garage": [130, 134],
    "funk": [100, 110],
}
GENRE_NAMES = sorted(GENRES)

NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

# Scale degrees (semitones from the tonic) of chord roots, per progression.
PROGRESSIONS_MINOR = [[0, 8, 3, 10], [0, 5, 0, 7], [0, 10, 8, 10], [0, 0, 5, 3], [0, 3, 8, 7], [0, 7, 8, 5]]
PROGRESSIONS_MAJOR = [[0, 5, 7, 5], [0, 9, 5, 7], [0, 7, 9, 5], [0, 4, 5, 7]]

# GM drum kits of FluidR3_GM (bank 128 presets) and GM bass-ish programs.
GM_KITS = [0, 8, 16, 24, 25, 32, 40]
BASS_PROGRAMS = {
    "acoustic": [32, 33, 34, 35],
    "slap": [36, 37, 33],
    "synth": [38, 39, 87, 81],
}
GENRE_BASS = {
    "house": ["synth", "synth", "acoustic"],
    "techno": ["synth"],
    "hiphop": ["acoustic", "synth"],
    "dnb": ["synth", "synth", "acoustic"],
    "trap": ["synth"],
    "breakbeat": ["synth", "acoustic", "slap"],
    "garage": ["synth", "acoustic"],
    "funk": ["slap", "acoustic"],
}
# Hydrogen kits usable as full drum kits (kick, snare, hats present).
HYDROGEN_KITS = [
    "Audiophob", "BJA_Pacific", "ColomboAcousticDrumkit", "ElectricEmpireKit", "ForzeeStereo",
    "HardElectro1", "Millo-Drums_v.1", "Millo_MultiLayered2", "The Black Pearl 1.0", "VariBreaks",
    "rumpf_kit_z01_h2",
]
DRUM_VARIANTS = ["main", "busy", "sparse", "fill"]
BASS_VARIANTS = ["main", "busy", "sparse"]


@dataclass
class Note:
    step: float  # onset in 16th steps from the loop start
    dur: float  # length in steps (drums: ignored)
    pitch: str | int  # drum role name or MIDI pitch
    vel: int


@dataclass
class Loop:
    name: str
    pack: str
    instrument: str  # "drum" or "bass"
    variant: str
    bars: int
    notes: list[Note] = field(default_factory=list)


@dataclass
class Pack:
    name: str
    index: int
    genre: str
    bpm: int
    key: str
    tonic: int  # pitch class
    minor: bool
    progression: list[int]
    swing: float  # fraction of a step the off 16ths are late
    drum_source: str  # "gm" or "hydrogen"
    drum_kit: str | int  # GM preset or hydrogen kit folder
    bass_program: int
    loops: list[Loop] = field(default_factory=list)

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("loops")
        return d


def _kick_pattern(genre: str, rng: np.random.Generator) -> list[int]:
    """One bar of kick steps: the genre's frame plus pack-specific syncopation."""
    def pick(cands, lo, hi):
        k = int(rng.integers(lo, hi + 1))
        return sorted(int(x) for x in rng.choice(cands, size=min(k, len(cands)), replace=False))
    if genre in ("house", "techno"):
        extra = pick([3, 7, 11, 14, 15], 0, 1) if rng.random() < 0.5 else []
        return sorted({0, 4, 8, 12, *extra})
    if genre == "hiphop":
        return sorted({0, *pick([3, 6, 7, 8, 10, 11, 13, 14, 15], 2, 4)})
    if genre == "dnb":
        return sorted({0, 10, *pick([2, 6, 7, 13, 14], 0, 2)})
    if genre == "trap":
        return sorted({0, *pick([3, 6, 7, 10, 11, 14, 15], 2, 4)})
    if genre == "breakbeat":
        return sorted({0, 10, *pick([2, 3, 7, 8, 11, 14], 1, 3)})
    if genre == "garage":
        return sorted({0, *pick([7, 9, 10, 11, 14], 1, 2)})
    if genre == "funk":
        return sorted({0, *pick([3, 6, 7, 8, 10, 11, 14], 2, 4)})
    raise ValueError(genre)


def _snare_steps(genre: str) -> list[int]:
    return [8] if genre == "trap" else [4, 12]


def _bass_rhythm(genre: str, kick: list[int], rng: np.random.Generator) -> list[tuple[int, float]]:
    """(step, length) of bass hits in one bar, locked to the kick as the genre does."""
    if genre == "house":
        # offbeat bass between the four-on-the-floor kicks, plus pack-specific pickups
        hits = [2, 6, 10, 14]
        extra = [int(x) for x in rng.choice([3, 7, 11, 15], size=int(rng.integers(0, 3)), replace=False)]
        steps = sorted(set(hits + extra))
    elif genre == "techno":
        # rolling 16ths that avoid the kick; the pack chooses which 16ths of each beat
        sub = [[1, 2, 3], [2, 3], [1, 3], [2], [3]][int(rng.integers(0, 5))]
        steps = [b * 4 + s for b in range(4) for s in sub]
    elif genre in ("hiphop", "trap", "dnb", "breakbeat", "funk"):
        steps = list(kick)
        if genre == "funk":
            steps = sorted(set(steps + [int(x) for x in rng.choice([2, 5, 9, 13, 15], size=2, replace=False)]))
    elif genre == "garage":
        steps = sorted(set(list(kick) + [int(x) for x in rng.choice([3, 6, 13, 14], size=2, replace=False)]))
    else:
        raise ValueError(genre)
    out = []
    for i, s in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else STEPS + steps[0]
        gap = nxt - s
        if genre in ("trap", "dnb"):
            length = gap * 0.95  # long sustained 808 / reese
        elif genre in ("house", "techno"):
            length = min(gap, 2) * 0.6
        else:
            length = gap * float(rng.choice([0.5, 0.8]))
        out.append((s, max(0.4, length)))
    return out


def key_name(tonic: int, minor: bool) -> str:
    return NOTE_NAMES[tonic] + ("m" if minor else "")


def make_pack(seed: int, index: int) -> Pack:
    rng = np.random.default_rng([seed, index])
    genre = GENRE_NAMES[int(rng.integers(0, len(GENRE_NAMES)))]
    bpm = int(rng.choice(GENRES[genre]))
    tonic = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.75)
    progs = PROGRESSIONS_MINOR if minor else PROGRESSIONS_MAJOR
    prog = list(progs[int(rng.integers(0, len(progs)))])
    swing = float(rng.choice([0.0, 0.0, 0.1, 0.2, 0.3])) if genre in ("hiphop", "garage", "funk") else float(rng.choice([0.0, 0.0, 0.0, 0.1]))
    if rng.random() < 0.5:
        drum_source, kit = "gm", int(rng.choice(GM_KITS))
    else:
        drum_source, kit = "hydrogen", str(rng.choice(HYDROGEN_KITS))
    family = str(rng.choice(GENRE_BASS[genre]))
    program = int(rng.choice(BASS_PROGRAMS[family]))
    name = f"pack{index:04d}_{genre}"
    p = Pack(name, index, genre, bpm, key_name(tonic, minor), tonic, minor, prog, swing,
             drum_source, kit, program)

    # The pack's groove: a kick bar A and a variant bar B, hats, signature percussion.
    kick_a = _kick_pattern(genre, rng)
    kick_b = sorted(set(kick_a) ^ {int(rng.choice([6, 7, 11, 14, 15]))}) if rng.random() < 0.5 else kick_a
    kick_b = [s for s in kick_b if s != 0] or kick_a
    kick_b = sorted(set(kick_b) | {0})
    hat_div = int(rng.choice([2, 2, 1])) if genre not in ("house",) else 2
    hat_off = 2 if genre == "house" else 0
    perc = sorted(int(x) for x in rng.choice(range(STEPS), size=int(rng.integers(1, 4)), replace=False))
    bass_a = _bass_rhythm(genre, kick_a, rng)
    bass_b = _bass_rhythm(genre, kick_b, rng) if kick_b != kick_a else bass_a
    octave = 28 if family == "synth" else 33  # E1 / A1 region
    base = octave + ((tonic - octave % 12) % 12)
    if base > 45:
        base -= 12
    n_drum = 3 + int(rng.random() < 0.5)
    n_bass = 2 + int(rng.random() < 0.5)

    def bars_for():
        return int(rng.choice([1, 2, 2, 4, 4]))

    def vel(v):
        return int(np.clip(v + rng.integers(-8, 9), 20, 127))

    for variant in DRUM_VARIANTS[:n_drum]:
        bars = bars_for() if variant != "fill" else int(rng.choice([2, 4]))
        lp = Loop(f"{name}_drum_{variant}", name, "drum", variant, bars)
        for b in range(bars):
            kick = kick_a if b % 2 == 0 else kick_b
            o = b * STEPS
            last = b == bars - 1
            for s in kick:
                if variant == "fill" and last and s >= 12:
                    continue
                lp.notes.append(Note(o + s, 1, "kick", vel(110)))
            if variant != "sparse" or genre in ("hiphop", "trap"):
                for s in _snare_steps(genre):
                    if variant == "fill" and last and s >= 12:
                        continue
                    lp.notes.append(Note(o + s, 1, "clap" if genre in ("house", "trap", "garage") else "snare", vel(105)))
            hat_steps = range(hat_off, STEPS, 4) if genre == "house" else range(0, STEPS, hat_div)
            if variant == "busy":
                hat_steps = range(0, STEPS, 1)
            elif variant == "sparse":
                hat_steps = range(hat_off, STEPS, 4 if genre != "house" else 4)
            for s in hat_steps:
                if variant == "fill" and last and s >= 12:
                    continue
                accent = 95 if s % 4 == hat_off % 4 else 70
                lp.notes.append(Note(o + s, 1, "hat_o" if (genre == "house" and s % 4 == 2) else "hat_c", vel(accent)))
            if variant in ("main", "busy", "fill"):
                for s in perc:
                    if variant == "fill" and last and s >= 12:
                        continue
                    lp.notes.append(Note(o + s, 1, "perc" if genre in ("house", "techno", "funk") else "rim", vel(80)))
            if variant == "busy":
                for s in (7, 9, 15):
                    lp.notes.append(Note(o + s, 1, "snare", vel(45)))
                if genre == "trap":
                    for k in range(4):
                        lp.notes.append(Note(o + 12 + k * 0.5, 0.5, "hat_c", vel(60)))
            if variant == "fill" and last:
                for k, s in enumerate(range(12, 16)):
                    lp.notes.append(Note(o + s, 1, ["tom_h", "tom_h", "tom_l", "snare"][k], vel(100)))
                    lp.notes.append(Note(o + s + 0.5, 0.5, "snare", vel(70)))
            if b == 0 and variant != "sparse" and rng.random() < 0.3:
                lp.notes.append(Note(o, 1, "crash", vel(90)))
        p.loops.append(lp)

    for variant in BASS_VARIANTS[:n_bass]:
        bars = bars_for()
        lp = Loop(f"{name}_bass_{variant}", name, "bass", variant, bars)
        for b in range(bars):
            rhythm = bass_a if b % 2 == 0 else bass_b
            root = base + prog[b % len(prog)]
            o = b * STEPS
            for i, (s, length) in enumerate(rhythm):
                if variant == "sparse" and i % 2 == 1:
                    continue
                pitch = root
                if variant == "busy" and i % 3 == 2:
                    pitch = root + (12 if genre not in ("trap", "dnb") else 7)
                ln = length if variant != "sparse" else min(length * 1.6, 3.5)
                lp.notes.append(Note(o + s, ln, pitch, vel(100 if i == 0 else 90)))
            if variant == "busy" and genre not in ("trap", "dnb"):
                occupied = {s for s, _ in rhythm}
                for s in (3, 11, 15):
                    if s not in occupied:
                        lp.notes.append(Note(o + s, 0.5, root + 7, vel(70)))
        p.loops.append(lp)
    return p


def make_corpus(seed: int, n_packs: int) -> list[Pack]:
    return [make_pack(seed, i) for i in range(n_packs)]


def split_packs(pack_names: list[str], seed: int, fractions=(0.85, 0.05, 0.10)) -> dict[str, str]:
    """Pack name -> "train" / "val" / "test", by a seeded shuffle of the sorted names."""
    names = sorted(pack_names)
    order = np.random.default_rng(seed + 7919).permutation(len(names))
    n = len(names)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    out = {}
    for rank, i in enumerate(order):
        out[names[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def step_seconds(bpm: int) -> float:
    return 60.0 / bpm / 4.0


def note_time(step: float, bpm: int, swing: float) -> float:
    """Seconds from the loop start; off 16ths (odd integer steps) are late by swing."""
    s = step
    if abs(step - round(step)) < 1e-9 and int(round(step)) % 2 == 1:
        s = step + swing
    return s * step_seconds(bpm)


def loop_seconds(bpm: int, bars: int) -> float:
    return bars * STEPS * step_seconds(bpm)


def read_meta(corpus_dir: str) -> list[dict]:
    """A rendered corpus' metadata.csv, one dict per loop, bpm / bars / samples as ints."""
    with open(os.path.join(corpus_dir, "metadata.csv")) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["bpm"] = int(r["bpm"])
        r["bars"] = int(r["bars"])
        r["samples"] = int(r["samples"])
    return rows


def columns(rows: list[dict], splits=("train", "val", "test")):
    """Per-row arrays (instrument, split, pack, bpm, key) and the row indices of every
    (instrument, split) among `splits`."""
    col = {k: np.array([r[k] for r in rows]) for k in ("instrument", "split", "pack", "bpm", "key")}
    idx = {(i, s): np.where((col["instrument"] == i) & (col["split"] == s))[0]
           for i in ("drum", "bass") for s in splits}
    return col, idx
