"""loopmatch-v1 as a baseline row: its shipped ONNX encoders and mappers (models/loopmatch-v1)
run by ONNX Runtime on corpus v2 loops, windowed exactly as Go windows them."""
from __future__ import annotations

import json
import os

import numpy as np

from .audio_io import load_window


def _session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def _run(sess, x, batch=32):
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def v1_latents(bundle_dir: str, corpus_dir: str, rows, idx, instrument: str) -> np.ndarray:
    man = json.load(open(os.path.join(bundle_dir, "manifest.json")))
    enc = next(m for m in man["models"] if m["role"] == "encoder" and m["instruments"] == [instrument])
    sess = _session(os.path.join(bundle_dir, enc["file"]))
    audio = np.stack([load_window(os.path.join(corpus_dir, rows[i]["path"])) for i in idx]).astype(np.float32)
    return _run(sess, audio)


def v1_mapped(bundle_dir: str, z: np.ndarray, src: str, tgt: str) -> np.ndarray:
    man = json.load(open(os.path.join(bundle_dir, "manifest.json")))
    m = next(m for m in man["models"] if m["role"] == "mapper" and m["instruments"] == [src, tgt])
    return _run(_session(os.path.join(bundle_dir, m["file"])), z.astype(np.float32))
