"""Corpus v2: loop packs as scores, deterministic from (seed, index), no audio.

A pack draws, independently of one another: a style (18, with shared tempi), a groove family
(grooves.py), a bass idiom (basslines.py), a key and progression, a drum sound source (a
FluidR3_GM kit, a kit synthesised in code, or, for the transfer split only, a hydrogen kit)
and a bass sound source (a FluidR3_GM program, a subtractive or wavetable synth patch, or,
for the transfer split only, an FM patch). Production is drawn per loop at render time.

The transfer split: about 15% of packs, drawn first, use only held-out factors: the "euclid"
groove family, the hydrogen kits and the FM bass family. No training or validation pack uses
any of them, so the transfer split measures music whose generator and sounds were never seen.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict

import numpy as np

from . import basslines as B
from . import grooves as G
from .corpus import NOTE_NAMES, PROGRESSIONS_MAJOR, PROGRESSIONS_MINOR, split_packs

STEPS = G.STEPS
TRANSFER_FRACTION = 0.15
GM_KITS = [0, 8, 16, 24, 25, 32, 40]
GM_BASS = [32, 33, 34, 35, 36, 37, 38, 39, 81, 87]
HYDROGEN_KITS = [
    "Audiophob", "BJA_Pacific", "ColomboAcousticDrumkit", "ElectricEmpireKit", "ForzeeStereo",
    "HardElectro1", "Millo-Drums_v.1", "Millo_MultiLayered2", "The Black Pearl 1.0", "VariBreaks",
    "rumpf_kit_z01_h2",
]
DRUM_VARIANTS = ["main", "busy", "sparse", "fill"]
BASS_VARIANTS = ["main", "busy", "sparse", "alt"]
LOW_STYLES = {"trap", "drill", "dnb", "jungle", "dubstep", "amapiano", "garage"}
SWING_STYLES = {"hiphop", "lofi", "garage", "funk", "afrobeat", "jungle"}


@dataclass
class Note:
    step: float
    dur: float
    pitch: str | int  # drum role or MIDI pitch
    vel: int
    slide: bool = False


@dataclass
class Loop:
    name: str
    pack: str
    instrument: str
    variant: str
    bars: int
    notes: list[Note] = field(default_factory=list)
    idiom: str = ""


@dataclass
class Pack:
    name: str
    index: int
    group: str  # "main" or "transfer"
    genre: str  # the style
    family: str  # groove family
    bpm: int
    key: str
    tonic: int
    minor: bool
    progression: list[int]
    swing: float
    phase: int  # steps every loop of the pack is rotated by (loops that start off the downbeat)
    drum_source: str  # gm, synth, hydrogen
    drum_kit: str | int  # GM preset, hydrogen kit, or synth kit seed
    bass_source: str  # gm, subtractive, wavetable, fm
    bass_program: int  # GM program, or synth patch seed
    idiom: str
    loops: list[Loop] = field(default_factory=list)

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("loops")
        return d


def key_name(tonic: int, minor: bool) -> str:
    return NOTE_NAMES[tonic] + ("m" if minor else "")


def _rotate(notes: list[Note], phase: int, length: int) -> list[Note]:
    if not phase:
        return notes
    return sorted((Note((n.step - phase) % length, n.dur, n.pitch, n.vel, n.slide) for n in notes), key=lambda n: n.step)


def make_pack(seed: int, index: int) -> Pack:
    rng = np.random.default_rng([seed, 2, index])
    transfer = bool(rng.random() < TRANSFER_FRACTION)
    style = G.STYLE_NAMES[int(rng.integers(0, len(G.STYLE_NAMES)))]
    bpm = int(rng.choice(G.STYLES[style]))
    tonic = int(rng.integers(0, 12))
    minor = bool(rng.random() < 0.7)
    progs = PROGRESSIONS_MINOR if minor else PROGRESSIONS_MAJOR
    prog = list(progs[int(rng.integers(0, len(progs)))])
    swing = float(rng.choice([0.0, 0.0, 0.1, 0.2, 0.3])) if style in SWING_STYLES else float(rng.choice([0.0, 0.0, 0.0, 0.1]))
    phase = int(rng.choice([4, 8, 12])) if rng.random() < 0.1 else 0
    if transfer:
        family = G.FAMILIES_TRANSFER[int(rng.integers(0, len(G.FAMILIES_TRANSFER)))]
        drum_source, kit = "hydrogen", str(rng.choice(HYDROGEN_KITS))
        bass_source, program = "fm", int(rng.integers(0, 2**31 - 1))
    else:
        family = G.FAMILIES_TRAIN[int(rng.integers(0, len(G.FAMILIES_TRAIN)))]
        if rng.random() < 0.5:
            drum_source, kit = "gm", int(rng.choice(GM_KITS))
        else:
            drum_source, kit = "synth", int(rng.integers(0, 2**31 - 1))
        u = rng.random()
        if u < 0.45:
            bass_source, program = "gm", int(rng.choice(GM_BASS))
        else:
            bass_source, program = ("subtractive" if u < 0.75 else "wavetable"), int(rng.integers(0, 2**31 - 1))
    idioms = B.STYLE_IDIOMS[style]
    w = np.array([2.0 ** -i for i in range(len(idioms))])
    idiom = str(idioms[int(rng.choice(len(idioms), p=w / w.sum()))])
    alt = [i for i in idioms if i != idiom]
    alt_idiom = str(rng.choice(alt)) if alt else idiom
    name = f"pack{index:05d}_{style}"
    p = Pack(name, index, "transfer" if transfer else "main", style, family, bpm, key_name(tonic, minor), tonic, minor,
             prog, swing, phase, drum_source, kit, bass_source, program, idiom)

    spec = G.make_spec(family, style, rng)
    base = B.bass_base(tonic, style in LOW_STYLES or idiom == "sub")
    scale = B.MINOR if minor else B.MAJOR
    legato = float(rng.uniform(0.45, 0.95))
    n_drum = 3 + int(rng.random() < 0.5)
    n_bass = 2 + int(rng.random() < 0.5) + int(rng.random() < 0.4)

    def bars_for():
        return int(rng.choice([1, 2, 2, 4, 4]))

    for variant in DRUM_VARIANTS[:n_drum]:
        bars = bars_for() if variant != "fill" else int(rng.choice([2, 4]))
        g = spec.loop(variant, bars, rng)
        notes = [Note(h.step, 1, h.role, h.vel) for h in g.hits if 0 <= h.step < bars * STEPS]
        p.loops.append(Loop(f"{name}_drum_{variant}", name, "drum", variant, bars, _rotate(notes, phase, bars * STEPS)))

    variants = BASS_VARIANTS[:n_bass - 1] + ["alt"] if n_bass == 4 else BASS_VARIANTS[:n_bass]
    for variant in variants:
        bars = bars_for()
        idm = alt_idiom if variant == "alt" else idiom
        density = {"main": 0.5, "busy": 0.9, "sparse": 0.2, "alt": 0.5}[variant]
        notes = []
        for b in range(bars):
            root = base + prog[b % len(prog)]
            nxt = base + prog[(b + 1) % len(prog)]
            kick = spec.kicks[b % len(spec.kicks)]
            snare = spec.snares[b % len(spec.snares)]
            bn = B.bar_notes(idm, kick, snare, root, nxt, scale, rng, legato, density)
            if variant == "sparse":
                bn = bn[::2]
            for x in bn:
                if 0 <= x.step < STEPS:
                    notes.append(Note(b * STEPS + x.step, x.dur, int(x.pitch), x.vel, x.slide))
        notes.sort(key=lambda n: n.step)
        p.loops.append(Loop(f"{name}_bass_{variant}", name, "bass", variant, bars, _rotate(notes, phase, bars * STEPS), idm))
    return p


def make_corpus(seed: int, n_packs: int) -> list[Pack]:
    return [make_pack(seed, i) for i in range(n_packs)]


def split_v2(packs: list[Pack], seed: int) -> dict[str, str]:
    """Transfer packs -> "transfer"; the rest by pack: train / val / test (0.85 / 0.05 / 0.10)."""
    main = split_packs([p.name for p in packs if p.group == "main"], seed)
    return {p.name: ("transfer" if p.group == "transfer" else main[p.name]) for p in packs}
