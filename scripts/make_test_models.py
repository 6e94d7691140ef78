#!/usr/bin/env python3
"""Makes the tiny ONNX models and bundle that the Go tests of onnx/ run for real.

Deterministic: same bytes every run. Usage: .venv/bin/python scripts/make_test_models.py
Writes onnx/testdata/bundle/{manifest.json,*.onnx}.

The bundle: sample rate 100 Hz, window 0.4 s (N = 40), latent [C, T] = [2, 4].
  encoder  audio[B,40] -> z[B,2,4]: z[b,c,t] = mean(audio[b, 20c+5t : 20c+5t+5])
  mapper   z -> 2*z + 1
  decoder  z[B,2,4] -> audio[B,40]: each latent value repeated 5 times
"""
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "onnx", "testdata", "bundle")
N, C, T = 40, 2, 4


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def io(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def encoder():
    shape = numpy_helper.from_array(np.array([-1, C, T, N // (C * T)], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["audio", "shape"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["z"], axes=[3], keepdims=0),
    ]
    g = helper.make_graph(nodes, "enc", [io("audio", ["batch", N])], [io("z", ["batch", C, T])], [shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="loopmatch-tests")


def mapper():
    two = numpy_helper.from_array(np.array(2, dtype=np.float32), "two")
    one = numpy_helper.from_array(np.array(1, dtype=np.float32), "one")
    nodes = [helper.make_node("Mul", ["z", "two"], ["m"]), helper.make_node("Add", ["m", "one"], ["zo"])]
    g = helper.make_graph(nodes, "map", [io("z", ["batch", C, T])], [io("zo", ["batch", C, T])], [two, one])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="loopmatch-tests")


def decoder():
    w = np.zeros((C * T, N), dtype=np.float32)
    for i in range(C * T):
        w[i, i * 5:(i + 1) * 5] = 1
    flat = numpy_helper.from_array(np.array([-1, C * T], dtype=np.int64), "flat")
    nodes = [
        helper.make_node("Reshape", ["z", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["audio"]),
    ]
    g = helper.make_graph(nodes, "dec", [io("z", ["batch", C, T])], [io("audio", ["batch", N])],
                          [flat, numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="loopmatch-tests")


def spec(name, file, sha, role, instruments, inp, out):
    return {"name": name, "file": file, "sha256": sha, "role": role, "instruments": instruments,
            "inputs": [{"name": inp[0], "shape": inp[1], "dtype": "float32"}],
            "outputs": [{"name": out[0], "shape": out[1], "dtype": "float32"}]}


def main():
    os.makedirs(OUT, exist_ok=True)
    audio, z = [-1, N], [-1, C, T]
    enc = save(encoder(), "drum_encoder.onnx")
    benc = save(encoder(), "bass_encoder.onnx")
    mp = save(mapper(), "drum2bass.onnx")
    dec = save(decoder(), "bass_decoder.onnx")
    manifest = {
        "name": "loopmatch-test", "version": "0.0.1", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [C, T], "created": "2026-01-01T00:00:00Z",
        "training": {"note": "hand-made graphs for the Go tests; see scripts/make_test_models.py"},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            spec("drum2bass", "drum2bass.onnx", mp, "mapper", ["drum", "bass"], ("z", z), ("zo", z)),
            spec("bass_decoder", "bass_decoder.onnx", dec, "decoder", ["bass"], ("z", z), ("audio", audio)),
        ],
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
