"""Known damage for the anomaly evaluation: a clean loop in, the same loop damaged out.

Every kind is what a loop library actually suffers from: clicks, clipping, added noise,
bit-crush, a pitch/tempo warp (resampled without correcting the pitch), a loop of the
wrong instrument filed under this one, and a cut that breaks the seam (the loop trimmed off
the beat grid, so it no longer loops). Damage is applied to the whole mono loop before it is
windowed, as ingest decodes and then windows. Each call is deterministic in its rng. The
damaged loop is quantised to 16 bits, as the corpus's clean loops are (a damaged file in a
library is a file too): otherwise a model could tell damage from the missing quantisation.
"""
from __future__ import annotations

import numpy as np

KINDS = ["clicks", "clipping", "noise", "bitcrush", "warp", "wrong_instrument", "seam_cut"]


def clicks(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """3-8 short broadband clicks (1-3 samples) at random places, 0.3-1.0 of the peak."""
    y = x.astype(np.float32).copy()
    peak = max(float(np.max(np.abs(y))), 1e-3)
    for _ in range(int(rng.integers(3, 9))):
        at = int(rng.integers(0, len(y)))
        w = int(rng.integers(1, 4))
        y[at:at + w] += np.float32(rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * peak)
    return np.clip(y, -1, 1)


def clipping(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Driven 6-16 dB past full scale and hard-clipped at +-1."""
    peak = max(float(np.max(np.abs(x))), 1e-3)
    g = 10 ** (rng.uniform(6, 16) / 20) / peak
    return np.clip(x * g, -1, 1).astype(np.float32)


def noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise at 10-25 dB below the loop's RMS."""
    rms = max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-4)
    snr = rng.uniform(10, 25)
    n = rng.standard_normal(len(x)) * rms * 10 ** (-snr / 20)
    return np.clip(x + n, -1, 1).astype(np.float32)


def bitcrush(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """4-6 bits and a sample-and-hold of 2-4 samples (a crushed, aliased copy)."""
    bits = int(rng.integers(4, 7))
    hold = int(rng.integers(2, 5))
    q = 2.0 ** (bits - 1)
    y = np.round(x * q) / q
    y = np.repeat(y[::hold], hold)[:len(x)]
    return np.clip(y, -1, 1).astype(np.float32)


def warp(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resampled by 0.84-0.93 or 1.07-1.19 (pitch and tempo move together, as a
    sample-rate mistake or a varispeed does); linear interpolation."""
    r = rng.uniform(0.84, 0.93) if rng.random() < 0.5 else rng.uniform(1.07, 1.19)
    n = max(2, int(round(len(x) / r)))
    t = np.arange(n) * r
    return np.interp(t, np.arange(len(x)), x).astype(np.float32)


def seam_cut(x: np.ndarray, rng: np.random.Generator, n_window: int, beat_samples: float) -> np.ndarray:
    """The loop trimmed to 45-90 % of its first window's length, at least a 16th note away
    from every beat, so the repeat jumps (the loop no longer loops)."""
    span = min(len(x), n_window)
    sixteenth = beat_samples / 4
    for _ in range(100):
        cut = int(span * rng.uniform(0.45, 0.9))
        off = cut % beat_samples
        if sixteenth * 0.5 < off < beat_samples - sixteenth * 0.5:
            break
    return x[:max(cut, 2)].astype(np.float32).copy()


def pcm16(x: np.ndarray) -> np.ndarray:
    """x as a 16-bit WAV holds it, read back as int / 32768."""
    return (np.clip(np.round(np.asarray(x, np.float64) * 32768), -32768, 32767) / 32768).astype(np.float32)


def apply(kind: str, x: np.ndarray, rng: np.random.Generator, *, n_window: int, bpm: float, sr: int,
          other: np.ndarray | None = None) -> np.ndarray:
    """Damage x (a whole mono loop) by kind, quantised to 16 bits. wrong_instrument returns
    other (a loop of another instrument), which the caller must give."""
    return pcm16(_apply(kind, x, rng, n_window=n_window, bpm=bpm, sr=sr, other=other))


def _apply(kind, x, rng, *, n_window, bpm, sr, other):
    if kind == "clicks":
        return clicks(x, rng)
    if kind == "clipping":
        return clipping(x, rng)
    if kind == "noise":
        return noise(x, rng)
    if kind == "bitcrush":
        return bitcrush(x, rng)
    if kind == "warp":
        return warp(x, rng)
    if kind == "seam_cut":
        return seam_cut(x, rng, n_window, 60.0 / bpm * sr)
    if kind == "wrong_instrument":
        if other is None:
            raise ValueError("wrong_instrument needs a loop of another instrument")
        return np.asarray(other, np.float32).copy()
    raise ValueError(f"unknown damage kind {kind!r}: use one of {', '.join(KINDS)}")
