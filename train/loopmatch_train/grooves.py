"""Drum groove generators for corpus v2: several families, each a different way of deciding
where hits fall, so that a pack's compatibility cannot be learnt as a lookup of one template.

A groove is one or two bars of drum hits (role, step, velocity) in 16th-note steps; steps
may be fractional (human timing). Every family returns the same `Groove`, whose kick and
snare steps the bass idioms (basslines.py) lock to.

Families:
- "template": the genre's frame (four on the floor, backbeats, breakbeat kicks) plus
  pack-specific syncopation, as corpus v1 had, extended to every style of STYLES.
- "stochastic": per-style step probabilities for kick, snare and hats, sampled per pack.
- "human": one-bar patterns from Debian's hydrogen-data demo songs (human-made, with their
  own micro-timing), mapped to our roles.
- "euclid": Euclidean rhythms with rotations, layered (kick, snare, hats, percussion);
  held out of training (the transfer split's generator family).
"""
from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

STEPS = 16

# Style -> typical integer tempi. Shared tempi across styles (90, 100, 110, 120, 125, 128,
# 130, 140, 150, 170, 174) make same-tempo candidates plentiful, as in real libraries.
STYLES: dict[str, list[int]] = {
    "house": [120, 122, 124, 125, 126, 128],
    "techno": [125, 128, 130, 132, 135, 140],
    "hiphop": [80, 85, 88, 90, 92, 95],
    "lofi": [70, 75, 80, 85, 90],
    "trap": [130, 140, 145, 150],
    "drill": [140, 142, 144],
    "dnb": [170, 172, 174],
    "jungle": [160, 165, 170],
    "dubstep": [140, 150],
    "breakbeat": [125, 130, 135],
    "garage": [128, 130, 132, 134],
    "funk": [95, 100, 105, 110],
    "disco": [110, 115, 118, 120, 122],
    "reggaeton": [88, 90, 92, 95, 100],
    "afrobeat": [100, 105, 110, 115],
    "amapiano": [110, 112, 113, 115],
    "pop": [100, 110, 115, 120, 124],
    "rock": [90, 100, 110, 120, 130, 140],
}
STYLE_NAMES = sorted(STYLES)
# "half": the backbeat on step 8 (half-time feel); "four": four on the floor.
FEEL = {"trap": "half", "drill": "half", "dubstep": "half", "house": "four", "techno": "four",
        "disco": "four", "amapiano": "four", "garage": "two_step"}

ROLES = ["kick", "snare", "clap", "rim", "hat_c", "hat_o", "ride", "crash", "tom_l", "tom_h", "perc"]
FAMILIES_TRAIN = ["template", "stochastic", "human"]
FAMILIES_TRANSFER = ["euclid"]


@dataclass
class Hit:
    role: str
    step: float
    vel: int


@dataclass
class Groove:
    """bars of hits (steps from the groove's start, < bars * STEPS) and what the bass locks to."""
    family: str
    bars: int
    hits: list[Hit] = field(default_factory=list)

    def steps(self, role: str, bar: int | None = None) -> list[float]:
        out = sorted({h.step for h in self.hits if h.role == role})
        if bar is None:
            return out
        return [s - bar * STEPS for s in out if bar * STEPS <= s < (bar + 1) * STEPS]

    def kick_bar(self, bar: int) -> list[float]:
        k = self.steps("kick", bar % self.bars)
        return k or [0.0]

    def snare_bar(self, bar: int) -> list[float]:
        return sorted(set(self.steps("snare", bar % self.bars)) | set(self.steps("clap", bar % self.bars)))


def _vel(rng, v):
    return int(np.clip(v + rng.integers(-10, 11), 20, 127))


def _pick(rng, cands, lo, hi):
    k = int(rng.integers(lo, hi + 1))
    return sorted(int(x) for x in rng.choice(cands, size=min(k, len(cands)), replace=False))


def backbeat(style: str, rng) -> list[int]:
    feel = FEEL.get(style)
    if feel == "half":
        return [8]
    if style == "reggaeton":
        return [3, 6, 11, 14]  # dembow: the snare's 3-3-2 answer to the four kicks
    if style == "garage":
        return [4, 12]
    if style in ("dnb", "jungle"):
        return [4, 12]
    if style == "amapiano":
        return [4, 12] if rng.random() < 0.5 else [12]
    return [4, 12]


def template_kick(style: str, rng) -> list[int]:
    """One bar of kick steps: the style's frame plus pack-specific syncopation."""
    if FEEL.get(style) == "four":
        extra = _pick(rng, [3, 7, 11, 14, 15], 0, 1) if rng.random() < 0.4 else []
        if style == "amapiano":
            extra = _pick(rng, [3, 6, 10, 14], 0, 2)
        return sorted({0, 4, 8, 12, *extra})
    table = {
        "hiphop": [3, 6, 7, 8, 10, 11, 13, 14, 15], "lofi": [3, 6, 7, 10, 11, 14],
        "trap": [3, 6, 7, 10, 11, 14, 15], "drill": [3, 6, 9, 10, 14], "dubstep": [3, 6, 10, 11, 14],
        "funk": [3, 6, 7, 8, 10, 11, 14], "afrobeat": [3, 6, 7, 10, 11, 14], "pop": [6, 7, 8, 10, 11, 14],
        "rock": [6, 7, 8, 10, 11, 14],
    }
    if style in ("dnb", "jungle", "breakbeat"):
        return sorted({0, 10, *_pick(rng, [2, 3, 6, 7, 8, 13, 14], 0, 2)})
    if style == "garage":
        return sorted({0, *_pick(rng, [7, 9, 10, 11, 14], 1, 2)})
    if style == "reggaeton":
        return [0, 4, 8, 12]
    return sorted({0, *_pick(rng, table[style], 2, 4)})


def _hat_steps(style, rng, density):
    if FEEL.get(style) == "four" and style != "disco" and rng.random() < 0.6:
        return list(range(2, STEPS, 4))  # offbeat open hats
    div = {"sparse": 4, "main": int(rng.choice([2, 2, 1])), "busy": 1}[density]
    if style in ("trap", "drill") and density != "sparse":
        div = 1 if rng.random() < 0.5 else 2
    return list(range(0, STEPS, div))


def _bar_hits(style, kick, snare, hats, perc, rng, variant, bar, last, fill_start=12):
    out = []
    o = bar * STEPS
    cut = variant == "fill" and last
    for s in kick:
        if not (cut and s >= fill_start):
            out.append(Hit("kick", o + s, _vel(rng, 112)))
    snare_role = "clap" if style in ("house", "trap", "garage", "reggaeton", "amapiano", "disco") and rng.random() < 0.7 else "snare"
    if variant != "sparse" or FEEL.get(style) == "half":
        for s in snare:
            if not (cut and s >= fill_start):
                out.append(Hit(snare_role, o + s, _vel(rng, 104)))
    for s in hats:
        if not (cut and s >= fill_start):
            open_hat = FEEL.get(style) == "four" and s % 4 == 2 and rng.random() < 0.5
            out.append(Hit("hat_o" if open_hat else "hat_c", o + s, _vel(rng, 92 if s % 4 == 0 else 68)))
    if variant in ("main", "busy", "fill"):
        for s in perc:
            if not (cut and s >= fill_start):
                out.append(Hit("perc" if style not in ("hiphop", "lofi", "drill") else "rim", o + s, _vel(rng, 78)))
    if variant == "busy":
        for s in _pick(rng, [3, 7, 9, 11, 15], 2, 3):
            out.append(Hit("snare", o + s, _vel(rng, 45)))  # ghost notes
        if style in ("trap", "drill"):
            r = int(rng.choice([4, 12]))
            for k in range(4):
                out.append(Hit("hat_c", o + r + k * 0.5, _vel(rng, 58)))  # hat roll
    if cut:
        for k, s in enumerate(range(fill_start, STEPS)):
            out.append(Hit(["tom_h", "tom_h", "tom_l", "snare"][k % 4], o + s, _vel(rng, 100)))
            if rng.random() < 0.5:
                out.append(Hit("snare", o + s + 0.5, _vel(rng, 70)))
    if bar == 0 and variant != "sparse" and rng.random() < 0.25:
        out.append(Hit("crash", o, _vel(rng, 90)))
    return out


def _from_bars(family, style, kicks, snares, hats, perc, rng, variant, bars):
    g = Groove(family, bars)
    for b in range(bars):
        g.hits += _bar_hits(style, kicks[b % len(kicks)], snares[b % len(snares)], hats, perc, rng,
                            variant, b, b == bars - 1)
    return g


@dataclass
class GrooveSpec:
    """What a pack's drum loops share: per-bar kick and snare steps, hats, percussion. The
    variants (main, busy, sparse, fill) are drawn from it."""
    family: str
    style: str
    kicks: list[list[float]]
    snares: list[list[float]]
    hats: list[float]
    perc: list[float]
    human: list[Hit] | None = None  # the "human" family: the pattern itself

    def loop(self, variant: str, bars: int, rng) -> Groove:
        if self.human is not None:
            return _human_loop(self, variant, bars, rng)
        hats = self.hats
        if variant == "busy":
            hats = sorted(set(hats) | set(range(0, STEPS, 2 if len(hats) < 8 else 1)))
        elif variant == "sparse":
            hats = [s for s in hats if s % 4 == hats[0] % 4] if hats else []
        return _from_bars(self.family, self.style, self.kicks, self.snares, hats, self.perc, rng, variant, bars)


def _spec_template(style, rng) -> GrooveSpec:
    ka = template_kick(style, rng)
    kb = ka
    if rng.random() < 0.5 and FEEL.get(style) != "four" and style != "reggaeton":
        kb = sorted((set(ka) ^ {int(rng.choice([6, 7, 11, 14, 15]))}) | {0})
    sn = backbeat(style, rng)
    perc = _pick(rng, list(range(STEPS)), 1, 3)
    return GrooveSpec("template", style, [ka, kb], [sn], _hat_steps(style, rng, "main"), perc)


# per-step probabilities: (kick, snare, hat) for each style's prior; steps 0..15
def _prior(style):
    k = np.full(STEPS, 0.06)
    s = np.full(STEPS, 0.03)
    h = np.full(STEPS, 0.3)
    h[::2] = 0.8
    feel = FEEL.get(style)
    if feel == "four":
        k[[0, 4, 8, 12]] = 0.97
        k[[3, 7, 11, 14, 15]] = 0.12
        s[[4, 12]] = 0.8
        h[[2, 6, 10, 14]] = 0.95
    elif feel == "half":
        k[0] = 0.97
        k[[3, 6, 7, 10, 11, 14]] = 0.35
        s[8] = 0.97
        h[:] = 0.75
    elif style in ("dnb", "jungle", "breakbeat"):
        k[0] = 0.97
        k[10] = 0.8
        k[[2, 3, 7, 13]] = 0.25
        s[[4, 12]] = 0.95
        s[[7, 9, 15]] = 0.12
    elif style == "reggaeton":
        k[[0, 4, 8, 12]] = 0.95
        s[[3, 6, 11, 14]] = 0.9
    else:
        k[0] = 0.97
        k[[8, 10]] = 0.45
        k[[3, 6, 7, 11, 14]] = 0.25
        s[[4, 12]] = 0.95
        s[[7, 15]] = 0.1
    return k, s, h


def _spec_stochastic(style, rng) -> GrooveSpec:
    pk, ps, ph = _prior(style)
    # the pack bends the prior: a random per-step tilt, then samples bar A and B
    tilt = rng.normal(0, 0.6, STEPS)

    def draw(p):
        q = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + tilt)))
        return sorted(int(i) for i in np.where(rng.random(STEPS) < q)[0])
    kicks = [sorted(set(draw(pk)) | {0}) for _ in range(2)]
    snares = [draw(ps) or [4, 12]]
    hats = draw(ph) or [0, 4, 8, 12]
    perc = _pick(rng, list(range(STEPS)), 0, 2)
    return GrooveSpec("stochastic", style, kicks, snares, hats, perc)


def euclid(k: int, n: int, rot: int = 0) -> list[int]:
    """k onsets spread as evenly as possible over n steps (Bjorklund's result), rotated."""
    if k <= 0:
        return []
    pat = [((i * k) // n) != (((i - 1) * k) // n) for i in range(n)]
    pat = pat[-rot % n:] + pat[: -rot % n] if rot else pat
    return [i for i, on in enumerate(pat) if on]


def _spec_euclid(style, rng) -> GrooveSpec:
    kk = int(rng.choice([3, 4, 5, 5, 6, 7]))
    kick = euclid(kk, STEPS, int(rng.integers(0, 4)))
    if 0 not in kick:
        kick = sorted(set(kick) | {0})
    if FEEL.get(style) == "half":
        sn = [8]
    else:
        sn = sorted(set(euclid(int(rng.choice([2, 2, 3])), STEPS, 4)) - set(kick)) or [4, 12]
    hats = euclid(int(rng.choice([5, 7, 8, 9, 11, 12])), STEPS, int(rng.integers(0, 3)))
    perc = euclid(int(rng.choice([2, 3, 5])), STEPS, int(rng.integers(1, 8)))
    kb = kick if rng.random() < 0.6 else sorted(set(euclid(kk + 1, STEPS, int(rng.integers(0, 4)))) | {0})
    return GrooveSpec("euclid", style, [kick, kb], [sn], hats, perc)


# --- hydrogen-data demo songs: human-made one-bar patterns -----------------------------

H2_SONGS = os.environ.get("LOOPMATCH_H2SONGS", "/usr/share/hydrogen/data/demo_songs")
H2_NAME_ROLES = [("kick", "kick"), ("snare", "snare"), ("stick", "rim"), ("rim", "rim"), ("clap", "clap"),
                 ("hat closed", "hat_c"), ("closed hat", "hat_c"), ("pedal", "hat_c"), ("hat open", "hat_o"),
                 ("open hat", "hat_o"), ("ride", "ride"), ("crash", "crash"), ("splash", "crash"), ("cymbal", "crash"),
                 ("floor tom", "tom_l"), ("tom low", "tom_l"), ("tom 2", "tom_l"), ("tom", "tom_h"),
                 ("cowbell", "perc"), ("conga", "perc"), ("clave", "perc"), ("shaker", "perc")]


def _h2_role(name: str) -> str | None:
    n = name.lower()
    for key, role in H2_NAME_ROLES:
        if key in n:
            return role
    return None


@lru_cache(maxsize=None)
def human_patterns(songs_dir: str = H2_SONGS) -> tuple:
    """(name, [Hit]) of every 4/4 one-bar pattern with a kick and a snare/clap/rim and at least
    8 hits, from the hydrogen-data demo songs. Ticks are 48 per beat: step = tick / 12, so
    human micro-timing survives as fractional steps."""
    out = []
    for path in sorted(glob.glob(os.path.join(songs_dir, "*.h2song"))):
        root = ET.parse(path).getroot()
        insts = {i.findtext("id"): i.findtext("name") or "" for i in root.find("instrumentList").findall("instrument")}
        for p in root.find("patternList").findall("pattern"):
            if p.findtext("size") != "192":
                continue
            hits = []
            for n in p.find("noteList").findall("note"):
                role = _h2_role(insts.get(n.findtext("instrument"), ""))
                if role is None:
                    continue
                step = int(n.findtext("position")) / 12.0
                vel = float(n.findtext("velocity") or 0.8)
                if 0 <= step < STEPS:
                    hits.append(Hit(role, round(step, 4), int(np.clip(vel * 127, 20, 127))))
            roles = {h.role for h in hits}
            if "kick" in roles and roles & {"snare", "clap", "rim"} and len(hits) >= 8:
                out.append((f"{os.path.basename(path)[:-7]}:{p.findtext('name')}", hits))
    return tuple(out)


def _spec_human(style, rng) -> GrooveSpec | None:
    pats = human_patterns()
    if not pats:
        return None
    ia = int(rng.integers(0, len(pats)))
    rng.integers(0, len(pats))  # kept: the shipped corpus drew it (bar B comes from the same song below)
    # bar B is usually the same pattern; sometimes a neighbour of the same song (A/B phrase)
    a = pats[ia]
    b = a
    if rng.random() < 0.4:
        same = [p for p in pats if p[0].split(":")[0] == a[0].split(":")[0] and p is not a]
        if same:
            b = same[int(rng.integers(0, len(same)))]
    hits = [Hit(h.role, h.step, h.vel) for h in a[1]] + [Hit(h.role, h.step + STEPS, h.vel) for h in b[1]]
    g = Groove("human", 2, hits)
    return GrooveSpec("human", style, [g.steps("kick", 0), g.steps("kick", 1)],
                      [sorted(set(g.steps("snare", 0)) | set(g.steps("clap", 0)) | set(g.steps("rim", 0)))],
                      g.steps("hat_c", 0), g.steps("perc", 0), human=hits)


def _human_loop(spec: GrooveSpec, variant: str, bars: int, rng) -> Groove:
    g = Groove("human", bars)
    two = spec.human
    for b in range(bars):
        src = [h for h in two if (b % 2) * STEPS <= h.step < (b % 2 + 1) * STEPS]
        last = b == bars - 1
        for h in src:
            step = h.step - (b % 2) * STEPS + b * STEPS
            local = step - b * STEPS
            if variant == "sparse" and h.role in ("hat_c", "hat_o", "ride", "perc") and abs(local - round(local / 4) * 4) > 1e-6:
                continue
            if variant == "fill" and last and local >= 12:
                continue
            v = h.vel if variant != "sparse" else max(20, h.vel - 10)
            g.hits.append(Hit(h.role, step, _vel(rng, v)))
        if variant == "busy":
            for s in _pick(rng, [3, 7, 9, 11, 15], 2, 3):
                g.hits.append(Hit("snare", b * STEPS + s, _vel(rng, 42)))
        if variant == "fill" and last:
            for k, s in enumerate(range(12, STEPS)):
                g.hits.append(Hit(["tom_h", "tom_h", "tom_l", "snare"][k], b * STEPS + s, _vel(rng, 100)))
    return g


def make_spec(family: str, style: str, rng) -> GrooveSpec:
    if family == "template":
        return _spec_template(style, rng)
    if family == "stochastic":
        return _spec_stochastic(style, rng)
    if family == "euclid":
        return _spec_euclid(style, rng)
    if family == "human":
        spec = _spec_human(style, rng)
        return spec if spec is not None else _spec_template(style, rng)
    raise ValueError(f"unknown groove family {family!r}")
