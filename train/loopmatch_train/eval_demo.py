"""Expected `loopmatch eval` figures on the demo library, computed the Python way.

Loads every loop demo/metadata.csv lists (soundfile, windowed as Go does), encodes it with the
bundle's ONNX encoder, maps the seeds with the bundle's ONNX mapper, scores every candidate by
cosine (float64), hubness-corrected as `loopmatch eval` does by default when the manifest's
hubness block is on (hubness.corrected: the hub scores from every demo loop of the seed's
instrument), and runs metrics.py's evaluate() in each setting. The Go test
cmd/loopmatch/eval_test.go runs `loopmatch eval --corpus demo --split all` and compares every
number with this file's output (within 0.005), after checking that the bundle id and the demo
fingerprint recorded here are those of the checked-out bundle and demo.

Light: numpy, soundfile and onnxruntime only (.venv). Regenerate after `make models`:

    PYTHONPATH=train .venv/bin/python -m loopmatch_train.eval_demo
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os

import numpy as np
import onnxruntime as ort

from .audio_io import load_mono, window
from .hubness import corrected
from .metrics import cosine_scores, evaluate

SETTINGS = ("all", "same_bpm", "bpm3")
DIRECTIONS = (("drum", "bass"), ("bass", "drum"))
COMMAND = "PYTHONPATH=train .venv/bin/python -m loopmatch_train.eval_demo"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def bundle_id(manifest: dict) -> str:
    """Go's onnx.Bundle.ID(): name@version:first 12 hex of sha256 over the models' sha256s."""
    h = hashlib.sha256("\n".join(m["sha256"].lower() for m in manifest["models"]).encode())
    return f"{manifest['name']}@{manifest['version']}:{h.hexdigest()[:12]}"


def demo_fingerprint(demo_dir: str, rows: list[dict]) -> str:
    """sha256 over "metadata.csv\\t<sha256>\\n" then "<path>\\t<sha256>\\n" per listed loop, in file order."""
    h = hashlib.sha256()
    h.update(f"metadata.csv\t{sha256_file(os.path.join(demo_dir, 'metadata.csv'))}\n".encode())
    for r in rows:
        h.update(f"{r['path']}\t{sha256_file(os.path.join(demo_dir, r['path']))}\n".encode())
    return h.hexdigest()


def session(bundle_dir: str, spec: dict) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(os.path.join(bundle_dir, spec["file"]), so, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, spec: dict, x: np.ndarray, batch: int = 16) -> np.ndarray:
    name_in, name_out = spec["inputs"][0]["name"], spec["outputs"][0]["name"]
    outs = [sess.run([name_out], {name_in: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def expected(demo_dir: str, bundle_dir: str) -> dict:
    with open(os.path.join(bundle_dir, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(demo_dir, "metadata.csv")) as f:
        rows = list(csv.DictReader(f))
    sr, n = manifest["sample_rate"], int(round(manifest["sample_rate"] * manifest["window_seconds"]))
    specs = {}
    for m in manifest["models"]:
        key = (m["role"], *m["instruments"])
        specs[key] = m
    z, meta = {}, {}
    for inst in ("drum", "bass"):
        sel = [r for r in rows if r["instrument"] == inst]
        x = np.stack([window(load_mono(os.path.join(demo_dir, r["path"])), n) for r in sel]).astype(np.float32)
        spec = specs[("encoder", inst)]
        z[inst] = run(session(bundle_dir, spec), spec, x)
        meta[inst] = (np.array([r["pack"] for r in sel]), np.array([float(r["bpm"]) for r in sel]))
    out = {
        "generator": "train/loopmatch_train/eval_demo.py",
        "command": COMMAND,
        "bundle_id": bundle_id(manifest),
        "demo_fingerprint": demo_fingerprint(demo_dir, rows),
        "sample_rate": sr,
        "loops": {k: int(len(v)) for k, v in z.items()},
    }
    hub = manifest.get("hubness")
    hub = hub if hub and hub.get("default") else None
    if hub:
        out["hub"] = {"k": hub["k"], "beta": hub["beta"]}
    for src, tgt in DIRECTIONS:
        spec = specs.get(("mapper", src, tgt))
        if spec is None:
            continue
        mapped = run(session(bundle_dir, spec), spec, z[src])
        scores = cosine_scores(mapped, z[tgt])
        if hub:
            scores = corrected(scores, hub["k"], hub["beta"])
        (sp, sb), (tp, tb) = meta[src], meta[tgt]
        out[f"{src}2{tgt}"] = {s: evaluate(scores, sp, sb, tp, tb, s) for s in SETTINGS}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", default="demo")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--out", default="eval/testdata/demo_expected.json")
    args = ap.parse_args(argv)
    res = expected(args.demo, args.bundle)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    for d in (k for k in res if "2" in k and isinstance(res[k], dict)):
        for s, m in res[d].items():
            vals = " ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
            print(f"{d:10s} {s:9s} seeds {m['seeds']:3d} pairs {m['pairs']:4d} {vals}")
    print(f"wrote {args.out} (bundle {res['bundle_id']})")


if __name__ == "__main__":
    main()
