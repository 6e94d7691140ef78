"""Decode and window loops exactly as Go's audio.Window does (light: numpy + soundfile)."""
from __future__ import annotations

import numpy as np
import soundfile as sf

SR = 22050
WINDOW_SECONDS = 4.0
N = int(round(SR * WINDOW_SECONDS))


def window(mono: np.ndarray, n: int = N) -> np.ndarray:
    """Shorter than n: tile from the start until n; longer: the first n samples."""
    mono = np.asarray(mono, dtype=np.float32)
    if len(mono) == 0:
        raise ValueError("empty signal")
    if len(mono) >= n:
        return mono[:n].copy()
    reps = -(-n // len(mono))
    return np.tile(mono, reps)[:n].copy()


def load_mono(path: str) -> np.ndarray:
    """16-bit PCM (or any libsndfile format) -> mono float32, averaging channels.

    16-bit integers are scaled by 1/32768, as Go's decoder does."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SR:
        raise ValueError(f"{path}: {sr} Hz, the corpus is rendered at {SR}")
    return x.mean(axis=1).astype(np.float32)


def load_window(path: str) -> np.ndarray:
    return window(load_mono(path))
