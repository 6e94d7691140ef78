"""Batches and augmentations for the compatibility towers (numpy only, so CI tests them
without PyTorch): tempo-batched sampling, circular-shift negatives, paired time rolls."""
from __future__ import annotations

import numpy as np

T_LAT = 64
LAT_FPS = T_LAT / 4.0  # latent frames per second (64 over the 4 s window)


def pairs_by_pack(rows, idx_drum, idx_bass):
    """pack -> (drum rows, bass rows) for packs that have both."""
    d, b = {}, {}
    for i in idx_drum:
        d.setdefault(rows[i]["pack"], []).append(int(i))
    for i in idx_bass:
        b.setdefault(rows[i]["pack"], []).append(int(i))
    return {p: (d[p], b[p]) for p in sorted(d) if p in b}


class TempoBatches:
    """Batches of one (drum, bass) pair per pack: `same` packs of one tempo (picked in
    proportion to its number of packs) plus `rand` packs of any tempo."""

    def __init__(self, packs: dict, bpm_of: dict, same: int, rand: int, rng: np.random.Generator):
        self.packs = packs
        self.names = sorted(packs)
        self.by_bpm = {}
        for p in self.names:
            self.by_bpm.setdefault(bpm_of[p], []).append(p)
        self.tempi = sorted(self.by_bpm)
        w = np.array([len(self.by_bpm[t]) for t in self.tempi], float)
        self.p = w / w.sum()
        self.same, self.rand, self.rng = same, rand, rng

    def batch(self):
        rng = self.rng
        t = self.tempi[int(rng.choice(len(self.tempi), p=self.p))]
        group = self.by_bpm[t]
        chosen = list(rng.choice(group, size=min(self.same, len(group)), replace=False))
        taken = set(chosen)
        while len(chosen) < self.same + self.rand:
            q = self.names[int(rng.integers(0, len(self.names)))]
            if q not in taken:
                taken.add(q)
                chosen.append(q)
        out = []
        for p in chosen:
            d, b = self.packs[p]
            out.append((d[int(rng.integers(0, len(d)))], b[int(rng.integers(0, len(b)))], p))
        return out


def shift_frames(bpm: float, rng: np.random.Generator) -> int:
    """A circular shift off the beat: a quarter to three quarters of a beat, in latent frames."""
    beat = LAT_FPS * 60.0 / bpm
    return max(1, int(round(rng.uniform(0.25, 0.75) * beat)))


def paired_roll(x_src, x_tgt, frames: int):
    """Roll both loops of every pair by the same number of frames along the last axis (numpy
    arrays or torch tensors): the pair's grid stays aligned, so it is still a pair."""
    if hasattr(x_src, "roll"):
        return x_src.roll(frames, -1), x_tgt.roll(frames, -1)
    return np.roll(x_src, frames, -1), np.roll(x_tgt, frames, -1)


# Neural Loop Combiner's negatives built from the right loop itself, on log-mel frames
# (the pair model's input: 256 frames of 341 samples at 22,050 Hz over the 4 s window)
FRAMES = 256
FPS = 22050 / 341


def beat_frames(bpm: float) -> float:
    return FPS * 60.0 / float(bpm)


def shift_negative(x: np.ndarray, bpm: float, rng: np.random.Generator) -> np.ndarray:
    """The loop moved off the grid: (k + u) beats, u in [0.25, 0.75], circular in the window."""
    beat = beat_frames(bpm)
    k = int(rng.integers(0, 4))
    s = int(round((k + rng.uniform(0.25, 0.75)) * beat)) % x.shape[-1]
    return np.roll(x, max(1, s), -1)


def reverse_negative(x: np.ndarray) -> np.ndarray:
    return x[..., ::-1].copy()


def rearrange_negative(x: np.ndarray, bpm: float, rng: np.random.Generator) -> np.ndarray:
    """The window cut at beat boundaries and the beats put in another order."""
    n = x.shape[-1]
    beat = beat_frames(bpm)
    cuts = [int(round(i * beat)) for i in range(int(n / beat) + 1)] + [n]
    cuts = sorted(set(c for c in cuts if 0 <= c <= n))
    segs = [x[..., a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    if len(segs) < 2:
        return shift_negative(x, bpm, rng)
    for _ in range(8):
        order = rng.permutation(len(segs))
        if np.any(order != np.arange(len(segs))):
            break
    return np.concatenate([segs[i] for i in order], -1)[..., :n]
