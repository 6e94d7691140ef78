"""Linear baseline without deep learning: ridge regression from the seed's log-mel
spectrogram (pooled to 32 bands x 64 frames) to the target's, ranked by cosine."""
from __future__ import annotations

import numpy as np


def pooled(logmel: np.ndarray, bands: int = 32, frames: int = 64) -> np.ndarray:
    n, b, t = logmel.shape
    x = logmel.reshape(n, bands, b // bands, frames, t // frames).mean(axis=(2, 4))
    return x.reshape(n, -1).astype(np.float64)


class Ridge:
    def __init__(self, alpha: float):
        self.alpha = alpha

    def fit(self, x, y):
        self.xm, self.ym = x.mean(0), y.mean(0)
        self.xs = x.std(0) + 1e-6
        xc = (x - self.xm) / self.xs
        yc = y - self.ym
        self.w = np.linalg.solve(xc.T @ xc + self.alpha * np.eye(xc.shape[1]), xc.T @ yc)
        return self

    def predict(self, x):
        return ((x - self.xm) / self.xs) @ self.w + self.ym
