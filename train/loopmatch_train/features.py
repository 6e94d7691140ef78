"""Window every corpus loop as Go does, run the exported front end once, cache as .npy."""
from __future__ import annotations

import csv
import os

import numpy as np
import torch

from .audio_io import load_window
from .corpus import read_meta
from .models import FrontEnd


def compute(corpus_dir: str, out_dir: str, batch: int = 32) -> None:
    rows = read_meta(corpus_dir)
    os.makedirs(out_dir, exist_ok=True)
    fe = FrontEnd().eval()
    n = len(rows)
    mel = np.lib.format.open_memmap(os.path.join(out_dir, "logmel.npy"), "w+", np.float32, (n, 128, 256))
    mag = np.lib.format.open_memmap(os.path.join(out_dir, "logmag.npy"), "w+", np.float16, (n, 513, 256))
    with torch.no_grad():
        for i in range(0, n, batch):
            x = np.stack([load_window(os.path.join(corpus_dir, r["path"])) for r in rows[i:i + batch]])
            a, b = fe(torch.from_numpy(x))
            mel[i:i + len(x)] = a.numpy()
            mag[i:i + len(x)] = b.numpy().astype(np.float16)
    mel.flush()
    mag.flush()
    with open(os.path.join(out_dir, "rows.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def load_or_compute(corpus_dir: str, out_dir: str, reuse: bool):
    """(rows, log-mel, log-magnitude) of a rendered corpus; the features are computed unless
    `reuse` and a cache exists, and opened as memory maps."""
    if not (reuse and os.path.exists(os.path.join(out_dir, "logmel.npy"))):
        compute(corpus_dir, out_dir)
    rows = read_meta(corpus_dir)
    logmel = np.load(os.path.join(out_dir, "logmel.npy"), mmap_mode="r")
    logmag = np.load(os.path.join(out_dir, "logmag.npy"), mmap_mode="r")
    return rows, logmel, logmag
