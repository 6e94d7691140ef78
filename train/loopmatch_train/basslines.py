"""Bass line idioms for corpus v2: how a bass follows a pack's harmony and locks to its groove.

Every idiom takes the pack's kick and snare steps per bar (grooves.GrooveSpec), the chord
roots per bar and the scale, and returns notes (step, length in steps, MIDI pitch, velocity,
slide). The idioms are shared by every groove family: they are the musical rules (the bass
answers the kick, leaves room for the snare, outlines the chord), not a generator's habits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEPS = 16
MINOR = [0, 2, 3, 5, 7, 8, 10]
MAJOR = [0, 2, 4, 5, 7, 9, 11]

IDIOMS = ["kick_lock", "offbeat", "root_fifth", "octave", "walking", "arpeggio", "riff", "sub", "rolling"]
# which idioms each style uses (first ones more often)
STYLE_IDIOMS = {
    "house": ["offbeat", "riff", "octave", "kick_lock"],
    "techno": ["rolling", "offbeat", "riff"],
    "hiphop": ["kick_lock", "riff", "root_fifth", "walking"],
    "lofi": ["walking", "kick_lock", "root_fifth", "arpeggio"],
    "trap": ["sub", "kick_lock"],
    "drill": ["sub", "kick_lock", "riff"],
    "dnb": ["sub", "kick_lock", "riff"],
    "jungle": ["sub", "kick_lock", "walking"],
    "dubstep": ["sub", "riff"],
    "breakbeat": ["kick_lock", "riff", "octave"],
    "garage": ["riff", "kick_lock", "sub"],
    "funk": ["riff", "octave", "kick_lock", "walking"],
    "disco": ["octave", "arpeggio", "offbeat"],
    "reggaeton": ["kick_lock", "root_fifth", "riff"],
    "afrobeat": ["riff", "walking", "root_fifth"],
    "amapiano": ["sub", "riff", "offbeat"],
    "pop": ["root_fifth", "kick_lock", "arpeggio", "octave"],
    "rock": ["root_fifth", "kick_lock", "octave", "walking"],
}


@dataclass
class BassNote:
    step: float
    dur: float
    pitch: int
    vel: int
    slide: bool = False


def _vel(rng, v):
    return int(np.clip(v + rng.integers(-8, 9), 20, 127))


def _lengths(steps, legato, rng, cap=None):
    out = []
    for i, s in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else STEPS + steps[0]
        gap = max(nxt - s, 0.25)
        ln = gap * legato
        if cap:
            ln = min(ln, cap)
        out.append(max(0.3, ln))
    return out


def _scale_note(root, scale, degree):
    """Scale degree (may exceed 7 or go below 0) above the chord root, in semitones."""
    o, d = divmod(degree, 7)
    return root + scale[d] + 12 * o


def bar_notes(idiom: str, kick: list[float], snare: list[float], root: int, next_root: int, scale: list[int],
              rng, legato: float, density: float) -> list[BassNote]:
    """One bar of bass. root: MIDI pitch of this bar's chord root; next_root: the next bar's."""
    fifth = root + 7 if root + 7 <= 55 else root - 5
    if idiom == "kick_lock":
        steps = sorted(set(kick))
        if density > 0.6:  # anticipations: a note a 16th before a later kick
            steps = sorted(set(steps) | {s - 1 for s in steps[1:] if s - 1 not in steps and s - 1 > 0 and rng.random() < 0.5})
        lens = _lengths(steps, legato, rng)
        return [BassNote(s, l, root if (i == 0 or rng.random() < 0.75) else fifth, _vel(rng, 100 if i == 0 else 88))
                for i, (s, l) in enumerate(zip(steps, lens))]
    if idiom == "offbeat":
        steps = [2, 6, 10, 14]
        if density > 0.6:
            steps += [int(x) for x in rng.choice([3, 7, 11, 15], size=2, replace=False)]
        steps = sorted(set(steps) - {int(round(k)) for k in kick if abs(k - round(k)) < 1e-6} | {2, 6, 10, 14})
        lens = _lengths(steps, min(legato, 0.6), rng, cap=2)
        octs = rng.random() < 0.3
        return [BassNote(s, l, root + (12 if octs and i % 2 else 0), _vel(rng, 96)) for i, (s, l) in enumerate(zip(steps, lens))]
    if idiom == "root_fifth":
        steps = sorted(set([0, 8] + [s for s in kick if s not in (0, 8)][: 1 + int(density > 0.5)]))
        lens = _lengths(steps, legato, rng)
        return [BassNote(s, l, root if abs(s) < 1e-6 or i % 2 == 0 else fifth, _vel(rng, 98)) for i, (s, l) in enumerate(zip(steps, lens))]
    if idiom == "octave":
        div = 2 if density < 0.7 else 1
        steps = list(range(0, STEPS, div))
        lens = _lengths(steps, 0.6, rng)
        return [BassNote(s, l, root + (12 if (s // div) % 2 else 0), _vel(rng, 100 if s % 4 == 0 else 84))
                for s, l in zip(steps, lens)]
    if idiom == "walking":
        # quarter notes: root, two chord/scale tones, a chromatic or scale approach to the next root
        tones = [root, _scale_note(root, scale, int(rng.choice([2, 4]))), _scale_note(root, scale, int(rng.choice([4, 5])))]
        approach = next_root + int(rng.choice([-1, 1, 2, -2]))
        pitches = tones + [approach]
        steps = [0, 4, 8, 12]
        if density > 0.7:
            steps = [0, 4, 6, 8, 12]
            pitches = [tones[0], tones[1], tones[1], tones[2], approach]
        lens = _lengths(steps, 0.85, rng)
        return [BassNote(s, l, int(p), _vel(rng, 94)) for s, l, p in zip(steps, lens, pitches)]
    if idiom == "arpeggio":
        third = 3 if scale == MINOR else 4
        chord = [root, root + third, root + 7, root + 12]
        div = 2
        order = [0, 1, 2, 3, 2, 1, 0, 2] if rng.random() < 0.5 else [0, 2, 1, 3, 0, 2, 3, 1]
        steps = list(range(0, STEPS, div))
        lens = _lengths(steps, 0.7, rng)
        return [BassNote(s, l, chord[order[i % len(order)]], _vel(rng, 92)) for i, (s, l) in enumerate(zip(steps, lens))]
    if idiom == "riff":
        # kick steps plus a few syncopations, with a melodic contour from the scale
        extra = [int(x) for x in rng.choice([2, 3, 5, 7, 9, 11, 13, 14, 15], size=int(1 + 2 * density), replace=False)]
        steps = sorted(set(kick) | set(extra))
        steps = [s for s in steps if all(abs(s - sn) > 1e-6 for sn in snare) or rng.random() < 0.2]
        if not steps:
            steps = [0.0]
        lens = _lengths(steps, legato, rng)
        degs = [0] + [int(rng.choice([0, 0, 2, 4, 5, 6, -1, 7])) for _ in steps[1:]]
        return [BassNote(s, l, _scale_note(root, scale, d), _vel(rng, 100 if i == 0 else 86))
                for i, (s, l, d) in enumerate(zip(steps, lens, degs))]
    if idiom == "sub":
        # long 808 / reese notes on the main kicks, sliding between pitches sometimes
        main = [s for s in kick if s in (0, 0.0)] + [s for s in kick if s >= 6][: 1 + int(density > 0.5)]
        steps = sorted(set(main)) or [0.0]
        lens = _lengths(steps, 0.95, rng)
        out = []
        for i, (s, l) in enumerate(zip(steps, lens)):
            p = root if i == 0 else int(rng.choice([root, root, fifth, root + 12, _scale_note(root, scale, 2)]))
            out.append(BassNote(s, l, p, _vel(rng, 104), slide=bool(i > 0 and rng.random() < 0.35)))
        return out
    if idiom == "rolling":
        sub = [[1, 2, 3], [2, 3], [1, 3], [2], [3]][int(rng.integers(0, 5))]
        steps = [b * 4 + s for b in range(4) for s in sub]
        lens = _lengths(steps, 0.55, rng, cap=1.2)
        return [BassNote(s, l, root + (12 if rng.random() < 0.15 else 0), _vel(rng, 90)) for s, l in zip(steps, lens)]
    raise ValueError(f"unknown bass idiom {idiom!r}")


def bass_base(tonic: int, low: bool) -> int:
    """MIDI pitch of the tonic in the bass register: E1-D#2 (28-39) for sub basses, else A1-G#2."""
    lo = 28 if low else 33
    return lo + ((tonic - lo) % 12)
