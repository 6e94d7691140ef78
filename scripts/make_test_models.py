#!/usr/bin/env python3
"""Makes the tiny ONNX models and bundles that the Go tests of onnx/ run for real.

Deterministic: same bytes every run (the Go tests check sha256 values recorded in the
manifests, so a change here shows up in `git diff`).
Usage: .venv/bin/python scripts/make_test_models.py

Writes under onnx/testdata/:

bundle/    the small bundle most tests use: sample rate 100 Hz, window 0.4 s (N = 40),
           latent [C, T] = [2, 4].
  encoder  audio[B,40] -> z[B,2,4]: z[b,c,t] = mean(audio[b, 20c+5t : 20c+5t+5])
  mapper   z -> z: flat(zo) = flat(z) @ W + bias, W[i,j] = ((3i + 5j) mod 7 - 3) / 4,
           bias[j] = j/8 - 1/2 (exact in float32, so Go can recompute it bit for bit)
  decoder  z[B,2,4] -> audio[B,40]: each latent value repeated 5 times (a MatMul)
  pairfront (drum, bass) audio[B,40] -> features[B,2,5], the reranker's per-loop half:
           features[b,c,t] = log(1 + (sum_j audio[b, 8t+j] * P[j,c])^2), with
           P_drum[j,c] = ((j + 3c) mod 5 - 2) / 4 and P_bass[j,c] = ((2j + c) mod 7 - 3) / 4
  scorer   (drum[B,2,5], bass[B,2,5]) -> logit[B] = sum_{c,t} drum*bass*V[c,t] - 1/4,
           V[c,t] = ((c + 2t) mod 3 - 1) / 2; the manifest's "rerank" block is
           {"default": false, "n": 100}
pair_golden.json  bundle/'s pairfront features and scorer logits for fixed audio, computed
           by numpy from the formulas above: the Go parity test of the reranker's roles

bundle-newdecoder/  bundle/'s encoders (the same bytes) with another mapper and decoder
           and version 0.0.2: a library made by bundle/ must open without a re-encode.
  mapper   flat(zo) = flat(z) @ W2 + bias2, W2[i,j] = ((2i + 3j) mod 5 - 2) / 4, bias2[j] = j/16
  decoder  each latent value repeated 5 times (Expand instead of a MatMul)

bundle-v2/ a new encoder of a bigger latent, as loopmatch-v2 is to v1: 100 Hz, 0.4 s,
           latent [4, 5] (20 values instead of 8): a library made by bundle/ must be
           refused, and converted by loopmatch ingest --reencode.
  encoder  z[b,c,t] = mean(audio[b, 10c+2t : 10c+2t+2])
  mapper   z -> 2z + 1
  decoder  each latent value repeated 2 times

bundle-classifier/  bundle/'s encoders (the same bytes) and an instrument classifier, for
           ingest's tests of loops whose names do not say their instrument:
  classifier audio[B,40] -> probs[B,3] over (drum, bass, other), min_confidence 0.6:
           softmax([20m, -20m, 3 - 20|m|]) with m = mean(audio): a positive offset is a
           drum, a negative one a bass, none at all "other", a small one uncertain

bundle-anomaly/  bundle/'s encoders (the same bytes) and anomaly models for both
           instruments, for ingest's and the CLI's tests of anomaly scores:
  anomaly  audio[B,40] -> score[B] = 100 m^2 with m = mean(audio) (drum); the bass model
           also reads the declared tempo: (audio[B,40], bpm[B,1]) -> 50 m^2 + bpm / 1000,
           threshold 1.0: a loop with an offset of more than 0.1 (0.141 for bass) is flagged

fullsize/  the same kind of graphs at the production shapes of DESIGN.md (22050 Hz, 4 s:
           N = 88200; latent [16, 64]) for benchmarks and for the manifest arithmetic.
           No weights, so the files stay tiny.
  encoder  z[b,c,t] = mean(audio[b, 86(64c+t) : 86(64c+t)+86]) (the last 136 samples unused)
  mapper   z -> 2z + 1
  decoder  each latent value repeated 86 times, then 136 zeros

bad/       graphs that must be refused by Runtime.Open (shapes as in bundle/):
  fixed_batch.onnx  mapper whose batch dimension is fixed at 1
  double.onnx       mapper in float64
  two_inputs.onnx   mapper with a second input
  open_length.onnx  decoder whose graph leaves its audio length open and returns 41 samples,
                    not the manifest's 40 (Open runs one row to see it); open_length_ok.onnx
                    the same returning 40, which opens
"""
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "onnx", "testdata")
OPSET = [helper.make_opsetid("", 13)]


def save(model, folder, name):
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def io(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def make(nodes, name, inputs, outputs, inits):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    return helper.make_model(g, opset_imports=OPSET, producer_name="loopmatch-tests")


def const(name, values, dtype):
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def mean_encoder(n, c, t):
    """audio[B,n] -> z[B,c,t]: the mean of consecutive blocks of n // (c*t) samples."""
    block = n // (c * t)
    nodes, inits, src = [], [const("shape", [-1, c, t, block], np.int64)], "audio"
    if block * c * t != n:
        inits += [const("starts", [0], np.int64), const("ends", [block * c * t], np.int64),
                  const("axes", [1], np.int64)]
        nodes.append(helper.make_node("Slice", ["audio", "starts", "ends", "axes"], ["cut"]))
        src = "cut"
    nodes += [
        helper.make_node("Reshape", [src, "shape"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["z"], axes=[3], keepdims=0),
    ]
    return make(nodes, "enc", [io("audio", ["batch", n])], [io("z", ["batch", c, t])], inits)


def affine_mapper(c, t, w, bias, out="zo"):
    """z -> reshape(flat(z) @ w + bias)."""
    inits = [const("flat", [-1, c * t], np.int64), const("back", [-1, c, t], np.int64),
             const("w", w, np.float32), const("bias", bias, np.float32)]
    nodes = [
        helper.make_node("Reshape", ["z", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["a"]),
        helper.make_node("Reshape", ["a", "back"], [out]),
    ]
    return make(nodes, "map", [io("z", ["batch", c, t])], [io(out, ["batch", c, t])], inits)


def scale_mapper(c, t, batch="batch", elem=TensorProto.FLOAT, extra_input=False):
    """z -> 2z + 1, in the given element type; optionally with a second (unused) input."""
    dtype = np.float64 if elem == TensorProto.DOUBLE else np.float32
    inits = [const("two", 2, dtype), const("one", 1, dtype)]
    nodes = [helper.make_node("Mul", ["z", "two"], ["m"]), helper.make_node("Add", ["m", "one"], ["zo"])]
    inputs = [io("z", [batch, c, t], elem)]
    if extra_input:
        inputs.append(io("gain", [batch, 1], elem))
    return make(nodes, "map", inputs, [io("zo", [batch, c, t], elem)], inits)


def repeat_decoder_matmul(n, c, t, length=None):
    """z[B,c,t] -> audio[B,n]: each latent value repeated n // (c*t) times, via a MatMul.
    length: the output's second dimension as the graph declares it (default n)."""
    block = n // (c * t)
    w = np.zeros((c * t, n), dtype=np.float32)
    for i in range(c * t):
        w[i, i * block:(i + 1) * block] = 1
    nodes = [
        helper.make_node("Reshape", ["z", "flat"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["audio"]),
    ]
    inits = [const("flat", [-1, c * t], np.int64), numpy_helper.from_array(w, "w")]
    return make(nodes, "dec", [io("z", ["batch", c, t])], [io("audio", ["batch", length or n])], inits)


def repeat_decoder_expand(n, c, t):
    """Like repeat_decoder_matmul without a weight matrix (which would be c*t*n floats)."""
    block = n // (c * t)
    inits = [const("col", [-1, c * t, 1], np.int64), const("wide", [1, 1, block], np.int64),
             const("flat", [-1, c * t * block], np.int64),
             const("pads", [0, 0, 0, n - c * t * block], np.int64)]
    nodes = [
        helper.make_node("Reshape", ["z", "col"], ["zc"]),
        helper.make_node("Expand", ["zc", "wide"], ["e"]),
        helper.make_node("Reshape", ["e", "flat"], ["f"]),
        helper.make_node("Pad", ["f", "pads"], ["audio"]),
    ]
    return make(nodes, "dec", [io("z", ["batch", c, t])], [io("audio", ["batch", n])], inits)


def dc_classifier(n, gain=20.0, other=3.0):
    """audio[B,n] -> probs[B,3] = softmax([g*m, -g*m, other - g*|m|]), m = mean(audio)."""
    inits = [const("axes", [1], np.int64), const("g", gain, np.float32), const("neg", -gain, np.float32),
             const("other", other, np.float32)]
    nodes = [
        helper.make_node("ReduceMean", ["audio"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["m", "g"], ["d"]),
        helper.make_node("Mul", ["m", "neg"], ["b"]),
        helper.make_node("Abs", ["m"], ["am"]),
        helper.make_node("Mul", ["am", "neg"], ["amn"]),
        helper.make_node("Add", ["amn", "other"], ["o"]),
        helper.make_node("Concat", ["d", "b", "o"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    inits = inits[1:]
    return make(nodes, "cls", [io("audio", ["batch", n])], [io("probs", ["batch", 3])], inits)


def dc_anomaly(n, gain):
    """audio[B,n] -> score[B] = gain * mean(audio)^2."""
    inits = [const("g", gain, np.float32)]
    nodes = [
        helper.make_node("ReduceMean", ["audio"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["m", "m"], ["sq"]),
        helper.make_node("Mul", ["sq", "g"], ["score"]),
    ]
    return make(nodes, "anomaly", [io("audio", ["batch", n])], [io("score", ["batch"])], inits)


def tempo_anomaly(n, gain, per_bpm):
    """(audio[B,n], bpm[B,1]) -> score[B] = gain * mean(audio)^2 + per_bpm * bpm: a model that
    reads the loop's declared tempo (0 for none)."""
    inits = [const("g", gain, np.float32), const("k", per_bpm, np.float32)]
    nodes = [
        helper.make_node("ReduceMean", ["audio"], ["m"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["m", "m"], ["sq"]),
        helper.make_node("Mul", ["sq", "g"], ["dc"]),
        helper.make_node("ReduceMean", ["bpm"], ["b"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["b", "k"], ["t"]),
        helper.make_node("Add", ["dc", "t"], ["score"]),
    ]
    return make(nodes, "anomaly", [io("audio", ["batch", n]), io("bpm", ["batch", 1])], [io("score", ["batch"])], inits)


def pair_front(n, c, t, p):
    """audio[B,n] -> features[B,c,t] = log(1 + (frames @ p)^2), frames of n // t samples."""
    frame = n // t
    inits = [const("frames", [-1, t, frame], np.int64), const("p", p, np.float32), const("one", 1, np.float32)]
    nodes = [
        helper.make_node("Reshape", ["audio", "frames"], ["fr"]),
        helper.make_node("MatMul", ["fr", "p"], ["m"]),
        helper.make_node("Mul", ["m", "m"], ["sq"]),
        helper.make_node("Add", ["sq", "one"], ["a"]),
        helper.make_node("Log", ["a"], ["l"]),
        helper.make_node("Transpose", ["l"], ["features"], perm=[0, 2, 1]),
    ]
    return make(nodes, "pairfront", [io("audio", ["batch", n])], [io("features", ["batch", c, t])], inits)


def pair_front_ref(audio, t, p):
    frames = np.asarray(audio, np.float64).reshape(len(audio), t, -1)
    m = frames @ np.asarray(p, np.float64)
    return np.log1p(m * m).transpose(0, 2, 1)


def pair_scorer(c, t, v, bias):
    """(drum[B,c,t], bass[B,c,t]) -> logit[B] = sum(drum * bass * v) + bias."""
    inits = [const("v", v, np.float32), const("axes", [1, 2], np.int64), const("bias", bias, np.float32)]
    nodes = [
        helper.make_node("Mul", ["drum", "bass"], ["prod"]),
        helper.make_node("Mul", ["prod", "v"], ["w"]),
        helper.make_node("ReduceSum", ["w", "axes"], ["s"], keepdims=0),
        helper.make_node("Add", ["s", "bias"], ["logit"]),
    ]
    return make(nodes, "scorer", [io("drum", ["batch", c, t]), io("bass", ["batch", c, t])], [io("logit", ["batch"])], inits)


def spec(name, file, sha, role, instruments, inp, out, *more_inputs):
    return {"name": name, "file": file, "sha256": sha, "role": role, "instruments": instruments,
            "inputs": [{"name": x[0], "shape": x[1], "dtype": "float32"} for x in (inp, *more_inputs)],
            "outputs": [{"name": out[0], "shape": out[1], "dtype": "float32"}]}


def pair_golden(folder, n, t, pd, pb, v, bias):
    """Fixed drum and bass windows, their features and every (drum, bass) pair's logit,
    computed in float64 by numpy from the formulas (not by ONNX Runtime): what Go must get."""
    k = np.arange(n, dtype=np.float64)
    drums = [np.round(0.5 * np.sin(0.7 * k * (i + 1)) + 0.25 * np.cos(0.3 * k + i), 4) for i in range(3)]
    basses = [np.round(0.6 * np.sin(0.2 * k * (i + 2) + 1) - 0.1 * i, 4) for i in range(3)]
    fd, fb = pair_front_ref(np.array(drums), t, pd), pair_front_ref(np.array(basses), t, pb)
    logits = [[float(np.sum(fd[i] * fb[j] * np.asarray(v, np.float64)) + bias) for j in range(len(basses))]
              for i in range(len(drums))]
    with open(os.path.join(folder, "pair_golden.json"), "w") as f:
        json.dump({"tolerance_max_abs": 1e-5,
                   "drum_audio": [d.tolist() for d in drums], "bass_audio": [b.tolist() for b in basses],
                   "drum_features": np.round(fd, 9).tolist(), "bass_features": np.round(fb, 9).tolist(),
                   "logits": np.round(logits, 9).tolist()}, f)
        f.write("\n")


def write_manifest(folder, manifest):
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def small_bundle():
    out = os.path.join(TESTDATA, "bundle")
    n, c, t = 40, 2, 4
    w = [[((3 * i + 5 * j) % 7 - 3) / 4 for j in range(c * t)] for i in range(c * t)]
    bias = [j / 8 - 0.5 for j in range(c * t)]
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    benc = save(mean_encoder(n, c, t), out, "bass_encoder.onnx")
    mp = save(affine_mapper(c, t, w, bias), out, "drum2bass.onnx")
    dec = save(repeat_decoder_matmul(n, c, t), out, "bass_decoder.onnx")
    pt = 5
    pd = [[((j + 3 * ch) % 5 - 2) / 4 for ch in range(c)] for j in range(n // pt)]
    pb = [[((2 * j + ch) % 7 - 3) / 4 for ch in range(c)] for j in range(n // pt)]
    v = [[((ch + 2 * tt) % 3 - 1) / 2 for tt in range(pt)] for ch in range(c)]
    dfront = save(pair_front(n, c, pt, pd), out, "drum_pairfront.onnx")
    bfront = save(pair_front(n, c, pt, pb), out, "bass_pairfront.onnx")
    scorer = save(pair_scorer(c, pt, v, -0.25), out, "scorer.onnx")
    pair_golden(TESTDATA, n, pt, pd, pb, v, -0.25)
    feat = [-1, c, pt]
    write_manifest(out, {
        "name": "loopmatch-test", "version": "0.0.1", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [c, t], "created": "2026-01-01T00:00:00Z",
        "training": {"note": "hand-made graphs for the Go tests; see scripts/make_test_models.py"},
        "metrics": {},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            spec("drum2bass", "drum2bass.onnx", mp, "mapper", ["drum", "bass"], ("z", z), ("zo", z)),
            spec("bass_decoder", "bass_decoder.onnx", dec, "decoder", ["bass"], ("z", z), ("audio", audio)),
            spec("drum_pairfront", "drum_pairfront.onnx", dfront, "pairfront", ["drum"], ("audio", audio), ("features", feat)),
            spec("bass_pairfront", "bass_pairfront.onnx", bfront, "pairfront", ["bass"], ("audio", audio), ("features", feat)),
            spec("scorer", "scorer.onnx", scorer, "scorer", ["drum", "bass"], ("drum", feat), ("logit", [-1]), ("bass", feat)),
        ],
        "rerank": {"default": False, "n": 100},
    })
    bad = os.path.join(TESTDATA, "bad")
    save(scale_mapper(c, t, batch=1), bad, "fixed_batch.onnx")
    save(scale_mapper(c, t, elem=TensorProto.DOUBLE), bad, "double.onnx")
    save(scale_mapper(c, t, extra_input=True), bad, "two_inputs.onnx")
    save(repeat_decoder_matmul(n + 1, c, t, length="samples"), bad, "open_length.onnx")
    save(repeat_decoder_matmul(n, c, t, length="samples"), bad, "open_length_ok.onnx")


def newdecoder_bundle():
    out = os.path.join(TESTDATA, "bundle-newdecoder")
    n, c, t = 40, 2, 4
    w = [[((2 * i + 3 * j) % 5 - 2) / 4 for j in range(c * t)] for i in range(c * t)]
    bias = [j / 16 for j in range(c * t)]
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    benc = save(mean_encoder(n, c, t), out, "bass_encoder.onnx")
    mp = save(affine_mapper(c, t, w, bias), out, "drum2bass.onnx")
    dec = save(repeat_decoder_expand(n, c, t), out, "bass_decoder.onnx")
    write_manifest(out, {
        "name": "loopmatch-test", "version": "0.0.2", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [c, t], "created": "2026-01-02T00:00:00Z",
        "training": {"note": "bundle/ with another mapper and decoder; see scripts/make_test_models.py"},
        "metrics": {},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            spec("drum2bass", "drum2bass.onnx", mp, "mapper", ["drum", "bass"], ("z", z), ("zo", z)),
            spec("bass_decoder", "bass_decoder.onnx", dec, "decoder", ["bass"], ("z", z), ("audio", audio)),
        ],
    })


def v2_bundle():
    out = os.path.join(TESTDATA, "bundle-v2")
    n, c, t = 40, 4, 5
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    benc = save(mean_encoder(n, c, t), out, "bass_encoder.onnx")
    mp = save(scale_mapper(c, t), out, "drum2bass.onnx")
    dec = save(repeat_decoder_matmul(n, c, t), out, "bass_decoder.onnx")
    write_manifest(out, {
        "name": "loopmatch-test-v2", "version": "0.1.0", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [c, t], "created": "2026-01-03T00:00:00Z",
        "training": {"note": "a new encoder with a bigger latent; see scripts/make_test_models.py"},
        "metrics": {},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            spec("drum2bass", "drum2bass.onnx", mp, "mapper", ["drum", "bass"], ("z", z), ("zo", z)),
            spec("bass_decoder", "bass_decoder.onnx", dec, "decoder", ["bass"], ("z", z), ("audio", audio)),
        ],
    })


def classifier_bundle():
    out = os.path.join(TESTDATA, "bundle-classifier")
    n, c, t = 40, 2, 4
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    benc = save(mean_encoder(n, c, t), out, "bass_encoder.onnx")
    cls = save(dc_classifier(n), out, "classifier.onnx")
    cspec = spec("classifier", "classifier.onnx", cls, "classifier", [], ("audio", audio), ("probs", [-1, 3]))
    cspec["classes"], cspec["min_confidence"] = ["drum", "bass", "other"], 0.6
    write_manifest(out, {
        "name": "loopmatch-test", "version": "0.0.3", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [c, t], "created": "2026-01-04T00:00:00Z",
        "training": {"note": "bundle/'s encoders and a hand-made classifier; see scripts/make_test_models.py"},
        "metrics": {},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            cspec,
        ],
    })


def anomaly_bundle():
    out = os.path.join(TESTDATA, "bundle-anomaly")
    n, c, t = 40, 2, 4
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    benc = save(mean_encoder(n, c, t), out, "bass_encoder.onnx")
    specs = []
    for inst, gain in (("drum", 100.0), ("bass", 50.0)):
        if inst == "bass":
            sha = save(tempo_anomaly(n, gain, 1e-3), out, f"{inst}_anomaly.onnx")
            sp = spec(f"{inst}_anomaly", f"{inst}_anomaly.onnx", sha, "anomaly", [inst], ("audio", audio), ("score", [-1]),
                      ("bpm", [-1, 1]))
        else:
            sha = save(dc_anomaly(n, gain), out, f"{inst}_anomaly.onnx")
            sp = spec(f"{inst}_anomaly", f"{inst}_anomaly.onnx", sha, "anomaly", [inst], ("audio", audio), ("score", [-1]))
        sp["threshold"] = 1.0
        specs.append(sp)
    write_manifest(out, {
        "name": "loopmatch-test", "version": "0.0.4", "sample_rate": 100, "window_seconds": 0.4,
        "latent_shape": [c, t], "created": "2026-01-05T00:00:00Z",
        "training": {"note": "bundle/'s encoders and hand-made anomaly models; see scripts/make_test_models.py"},
        "metrics": {},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("bass_encoder", "bass_encoder.onnx", benc, "encoder", ["bass"], ("audio", audio), ("z", z)),
            *specs,
        ],
    })


def fullsize_bundle():
    out = os.path.join(TESTDATA, "fullsize")
    n, c, t = 88200, 16, 64
    audio, z = [-1, n], [-1, c, t]
    enc = save(mean_encoder(n, c, t), out, "drum_encoder.onnx")
    mp = save(scale_mapper(c, t), out, "drum2bass.onnx")
    dec = save(repeat_decoder_expand(n, c, t), out, "bass_decoder.onnx")
    write_manifest(out, {
        "name": "loopmatch-fullsize", "version": "0.0.1", "sample_rate": 22050, "window_seconds": 4.0,
        "latent_shape": [c, t], "created": "2026-01-01T00:00:00Z",
        "training": {"note": "weightless graphs at production shapes; see scripts/make_test_models.py"},
        "exporter_extra": {"unknown keys": "are tolerated"},
        "models": [
            spec("drum_encoder", "drum_encoder.onnx", enc, "encoder", ["drum"], ("audio", audio), ("z", z)),
            spec("drum2bass", "drum2bass.onnx", mp, "mapper", ["drum", "bass"], ("z", z), ("zo", z)),
            spec("bass_decoder", "bass_decoder.onnx", dec, "decoder", ["bass"], ("z", z), ("audio", audio)),
        ],
    })


def main():
    small_bundle()
    newdecoder_bundle()
    v2_bundle()
    classifier_bundle()
    anomaly_bundle()
    fullsize_bundle()


if __name__ == "__main__":
    main()
