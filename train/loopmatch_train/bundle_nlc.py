"""Add the Neural Loop Combiner reranker to a bundle written by bundle2 (models/loopmatch-v2):
ONNX files for roles `pairfront` (one per instrument: audio -> features) and `scorer`
(drum features, bass features -> logit), parity-checked against PyTorch, golden fixtures
(golden/pair.json) for Go's parity test, the manifest's `rerank` block and model entries, and
a section of MODEL_CARD.md. Idempotent: entries and files of an earlier run are replaced; the
bundle's other files are left byte for byte as they are."""
from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn

from .audio_io import N, load_mono, window
from .bundle import sha256
from .export import _export, session
from .models import FrontEnd

ROLES = ("pairfront", "scorer")
CARD_BEGIN = "<!-- reranker: written by loopmatch_train.run_nlc; do not edit -->"
CARD_END = "<!-- /reranker -->"


class PairFrontGraph(nn.Module):
    """audio [B, N] -> features [B, C, T] (log-mel front end, then the pair model's per-loop half)."""

    def __init__(self, model, instrument):
        super().__init__()
        self.front = FrontEnd()
        self.model = model
        self.instrument = instrument

    def forward(self, audio):
        logmel, _ = self.front(audio)
        return self.model.features(self.instrument, logmel)


class ScorerGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, drum, bass):
        return self.model.pair(drum, bass)


def _export2(module, fd, fb, path):
    torch.onnx.export(module, (fd, fb), path, input_names=["drum", "bass"], output_names=["logit"],
                      dynamic_axes={"drum": {0: "batch"}, "bass": {0: "batch"}, "logit": {0: "batch"}},
                      opset_version=17, dynamo=False, do_constant_folding=True)


def add_reranker(bundle_dir, model, rerank: dict, card_section: str, corpus_dir, rows, test_idx, log=print):
    man_path = os.path.join(bundle_dir, "manifest.json")
    man = json.load(open(man_path))
    for s in [s for s in man["models"] if s["role"] in ROLES]:
        p = os.path.join(bundle_dir, s["file"])
        if os.path.exists(p):
            os.remove(p)
    man["models"] = [s for s in man["models"] if s["role"] not in ROLES]
    model.eval()
    specs, parity = [], {}
    check = np.stack([window(load_mono(os.path.join(corpus_dir, rows[i]["path"]))) for i in test_idx[:3]]).astype(np.float32)
    feat_shape = None
    for inst in ("drum", "bass"):
        f = f"{inst}_pairfront.onnx"
        g = PairFrontGraph(model, inst).eval()
        _export(g, torch.zeros(2, N), os.path.join(bundle_dir, f), "audio", "features")
        with torch.no_grad():
            ref = g(torch.from_numpy(check)).numpy()
        got = session(os.path.join(bundle_dir, f)).run(["features"], {"audio": check})[0]
        parity[f] = float(np.max(np.abs(ref - got)))
        feat_shape = list(ref.shape[1:])
        specs.append(dict(name=f"{inst}_pairfront", file=f, role="pairfront", instruments=[inst],
                          inputs=[dict(name="audio", shape=[-1, N], dtype="float32")],
                          outputs=[dict(name="features", shape=[-1] + feat_shape, dtype="float32")]))
    f = "pair_scorer.onnx"
    sg = ScorerGraph(model).eval()
    z = torch.zeros(2, *feat_shape)
    _export2(sg, z, z, os.path.join(bundle_dir, f))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, *feat_shape)).astype(np.float32)
    b = rng.standard_normal((3, *feat_shape)).astype(np.float32)
    with torch.no_grad():
        ref = sg(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    got = session(os.path.join(bundle_dir, f)).run(["logit"], {"drum": a, "bass": b})[0]
    parity[f] = float(np.max(np.abs(ref - got)))
    specs.append(dict(name="pair_scorer", file=f, role="scorer", instruments=["drum", "bass"],
                      inputs=[dict(name="drum", shape=[-1] + feat_shape, dtype="float32"),
                              dict(name="bass", shape=[-1] + feat_shape, dtype="float32")],
                      outputs=[dict(name="logit", shape=[-1], dtype="float32")]))
    log("reranker onnx vs torch max abs diff", json.dumps(parity))
    golden_pairs(bundle_dir, feat_shape)
    for s in specs:
        s["sha256"] = sha256(os.path.join(bundle_dir, s["file"]))
    man["models"] += [{k: s[k] for k in ("name", "file", "sha256", "role", "instruments", "inputs", "outputs")} for s in specs]
    rerank = dict(rerank)
    rerank["onnx_parity_max_abs_diff"] = parity
    man["rerank"] = rerank
    with open(man_path, "w") as fh:
        json.dump(man, fh, indent=2)
    card_path = os.path.join(bundle_dir, "MODEL_CARD.md")
    card = open(card_path).read()
    if CARD_BEGIN in card:
        card = card[:card.index(CARD_BEGIN)].rstrip("\n") + "\n" + card[card.index(CARD_END) + len(CARD_END):].lstrip("\n")
    card = card.rstrip("\n") + "\n\n" + CARD_BEGIN + "\n" + card_section.strip("\n") + "\n" + CARD_END + "\n"
    with open(card_path, "w") as fh:
        fh.write(card)
    log(f"reranker added to {bundle_dir}")


def golden_pairs(bundle_dir, feat_shape):
    """golden/pair.json: for every golden loop (golden/golden.json), its pairfront features
    (ONNX Runtime on Go's windowing of the WAV), and the scorer's logit for every (drum, bass)
    pair of golden loops."""
    gd = os.path.join(bundle_dir, "golden")
    doc = json.load(open(os.path.join(gd, "golden.json")))
    feats, entries = {}, []
    for k, fx in enumerate(doc["fixtures"]):
        inst = fx["instrument"]
        x = window(load_mono(os.path.join(gd, fx["wav"])))[None].astype(np.float32)
        f = session(os.path.join(bundle_dir, f"{inst}_pairfront.onnx")).run(["features"], {"audio": x})[0]
        ff = f"p{k}_{inst}_features.f32"
        f.astype("<f4").tofile(os.path.join(gd, ff))
        feats[k] = (inst, f)
        entries.append({"wav": fx["wav"], "instrument": inst, "features": {"file": ff, "shape": list(f.shape)}})
    sc = session(os.path.join(bundle_dir, "pair_scorer.onnx"))
    pairs = []
    for i, (ia, fa) in feats.items():
        for j, (ib, fb) in feats.items():
            if ia == "drum" and ib == "bass":
                logit = sc.run(["logit"], {"drum": fa, "bass": fb})[0]
                pairs.append({"drum": i, "bass": j, "logit": float(logit[0])})
    out = {"tolerance_max_abs": 1e-3, "features_tolerance_max_abs": 1e-3,
           "rule": "features: the instrument's pairfront on the golden WAV windowed as golden.json says; "
                   "logit: pair_scorer on (drum fixture's features, bass fixture's features)",
           "fixtures": entries, "pairs": pairs}
    with open(os.path.join(gd, "pair.json"), "w") as fh:
        json.dump(out, fh, indent=2)
