"""Put SampleMatch's two encoders into a bundle: context_encoder.onnx (role context_encoder:
a mix of loops, audio [B, N] at the bundle rate over its window -> a unit vector [B, D]) and
oneshot_encoder.onnx (role oneshot_encoder: a one-shot's first second, zero padded, audio
[B, S] -> [B, D] in the same space; ranking is their cosine), their manifest entries, golden
fixtures computed by ONNX Runtime on WAVs windowed by Go's rule (golden/samplematch.json) and
a MODEL_CARD section with the figures of train/out/samplematch/results.json. The other files of
the bundle stay byte for byte. Needs train/out/samplematch from `python -m
loopmatch_train.samplematch --out train/out` (make models runs both):

PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.samplematch_bundle --out train/out --bundle models/loopmatch-v2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import soundfile as sf

from .audio_io import N, SR, load_mono, window
from .oneshots import ONESHOT, fit

CARD_BEGIN = "<!-- samplematch:begin -->"
CARD_END = "<!-- samplematch:end -->"
# the one-shot kinds the bundle's one-shot collection uses, and the training roles they cover
KINDS = {"kick": ["kick"], "snare": ["snare"], "clap": ["clap"], "rim": ["rim"], "hat": ["hat_c"],
         "open_hat": ["hat_o"], "ride": ["ride"], "crash": ["crash"], "tom": ["tom_l", "tom_h"], "perc": ["perc"]}
# golden one-shots: (file, kit program, role, seconds kept); the last is shorter than a
# second, so the fixture checks the zero padding, the others cut to the first second
ONESHOT_FIXTURES = [("o0_kick.wav", 0, "kick", 1.5), ("o1_snare.wav", 0, "snare", 1.5), ("o2_hat.wav", 0, "hat_c", 0.3)]
# golden contexts: the bundle's golden loops, tiled to the window and summed at these gains
CONTEXT_FIXTURES = [[("g0_drum.wav", 1.0), ("g1_bass.wav", 1.0)], [("g1_bass.wav", 0.5)],
                    [("g0_drum.wav", 1.0), ("g1_bass.wav", 2.0), ("g2_drum.wav", 0.25)]]


def _write16(path, x):
    sf.write(path, np.clip(x, -1, 32767 / 32768), SR, subtype="PCM_16")


def golden_fixtures(bundle_dir, work, with_kind=False):
    """golden/samplematch.json: the embeddings ONNX Runtime gives for the fixtures."""
    from .export import session
    gd = os.path.join(bundle_dir, "golden")
    ctx = session(os.path.join(bundle_dir, "context_encoder.onnx"))
    one = session(os.path.join(bundle_dir, "oneshot_encoder.onnx"))
    kind = session(os.path.join(bundle_dir, "oneshot_kind.onnx")) if with_kind else None
    oneshots = []
    for wav, program, role, secs in ONESHOT_FIXTURES:
        kit = np.load(os.path.join(work, f"gm_kit_{program}.npz"))
        _write16(os.path.join(gd, wav), kit[role][: int(secs * SR)] * 0.9)
        x = fit(load_mono(os.path.join(gd, wav)), ONESHOT)[None]
        e = one.run(["embedding"], {"audio": x})[0][0]
        entry = {"wav": wav, "samples": int(len(load_mono(os.path.join(gd, wav)))), "embedding": [float(v) for v in e]}
        if kind is not None:
            entry["kind_probs"] = [float(v) for v in kind.run(["probs"], {"audio": x})[0][0]]
        oneshots.append(entry)
    contexts = []
    for parts in CONTEXT_FIXTURES:
        x = np.zeros(N, np.float32)
        for wav, g in parts:
            x += np.float32(g) * window(load_mono(os.path.join(gd, wav)))
        e = ctx.run(["embedding"], {"audio": x[None]})[0][0]
        contexts.append({"loops": [{"wav": w, "gain": g} for w, g in parts], "embedding": [float(v) for v in e]})
    doc = {"sample_rate": SR, "window_samples": N, "oneshot_samples": ONESHOT, "tolerance_abs": 1e-4,
           "rule": "decode 16-bit PCM as int/32768, mono; a context tiles each loop from its start to the window "
                   "(or takes its first window samples) and sums them at their gains in float32; a one-shot "
                   "takes its first oneshot_samples samples, zero padded",
           "oneshots": oneshots, "contexts": contexts}
    with open(os.path.join(gd, "samplematch.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return len(oneshots) + len(contexts)


def _cells(r):
    return " \\| ".join(f"{r[m]['R_mn']:.3f} / {r[m]['R_md']:.3f}" for m in ("full", "sparse"))


def card(res, info):
    rows = res["rows"]
    sm, base = rows["samplematch"], rows["spectral baseline"]
    exp = res.get("export", {})
    g = exp.get("metrics_of_the_exported_graphs", {})
    graphs = f"{g['test']['full']['R_mn']:.4f} / {g['test']['sparse']['R_mn']:.4f}" if g else "not measured"
    per_src = sm["test"]["full"]["per_kit_source"]
    tr = res["training"]["samplematch"]
    return f"""{CARD_BEGIN}
## SampleMatch: one-shots for a context (`context_encoder.onnx`, `oneshot_encoder.onnx`)

Two encoders into one {info['dim']}-d space, ranked by cosine: role `context_encoder` takes a
mix of loops (`audio` [B, {N}]: each loop tiled from its start over the 4 s window, summed at
its gain; the level does not matter, the graph removes it) and role `oneshot_encoder` a drum
one-shot (`audio` [B, {ONESHOT}]: its first second, zero padded, never tiled); both return
`embedding` [B, {info['dim']}], unit length. The log-mel front end is inside the graphs. Kinds the
one-shot collection uses and the training roles they cover: {', '.join(f'{k} ({"/".join(v)})' for k, v in KINDS.items())}.

Training data: corpus v2's packs (`train/loopmatch_train/oneshots.py`): a query is a pack and a drum
role its main drum loop plays; its context is the pack's other stems (the drum loop re-rendered
from its kit without that role, one stem per role, and the main bass loop); the answer is the
kit's own one-shot among that kind's one-shots of every kit in the split. Kits: the FluidR3_GM
drum presets (MIT) and coherent kits synthesised in code for train/val/test; the hydrogen kits
(hydrogen-drumkits: GPL-2/GPL-2+, CC0, CC-BY-SA-3.0-US, CC-BY-3.0) only in the transfer split.
NT-Xent over batches of one kind, VICReg variance and covariance terms, sparse mixing; {tr['steps']:,}
steps, batch {tr['batch']}, trained on the train split and selected on val (seed {tr['seed']}).
Rebuild: `PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.samplematch --out train/out`, then
`PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.samplematch_bundle --out train/out --bundle models/loopmatch-v2`.

R_mn / R_md of the right one-shot (random 0.5), full \\| sparse context:

| model | test ({sm['test']['full']['queries']} queries) | transfer ({sm['transfer']['full']['queries']} queries, hydrogen kits) |
|---|---|---|
| spectral baseline | {_cells(base['test'])} | {_cells(base['transfer'])} |
| SampleMatch | {_cells(sm['test'])} | {_cells(sm['transfer'])} |

By kit source (test, full): FluidR3_GM kits {per_src['gm']['R_mn']:.3f} ({per_src['gm']['queries']} queries),
synthesised kits {per_src['synth']['R_mn']:.3f} ({per_src['synth']['queries']}). On the held-out hydrogen kits the
model is near random: it recognises kits like those it was trained on, not what makes real kits
belong together. The exported graphs rank the test split at {graphs} (full / sparse R_mn);
ONNX Runtime against PyTorch: {exp.get('context_encoder', {}).get('onnx_vs_torch', float('nan')):.2g} (context),
{exp.get('oneshot_encoder', {}).get('onnx_vs_torch', float('nan')):.2g} (one-shot), largest absolute difference.
{CARD_END}
"""


KIND_MIN_CONFIDENCE = 0.5  # a fixed rule (not tuned): below it ingest stores the kind as unknown


def kind_classifier(work, bundle_dir):
    """oneshot_kind.onnx (loopmatch_train.oneshot_kind's export, logits) with a softmax on
    its output, as role oneshot_classifier: the kind of a one-shot whose name does not say
    it. None when it has not been trained."""
    import onnx
    from onnx import TensorProto, helper
    src = os.path.join(work, "oneshot_kind.onnx")
    if not os.path.exists(src):
        return None, None
    info = json.load(open(os.path.join(work, "oneshot_kind.json")))
    m = onnx.load(src)
    (out,) = m.graph.output
    m.graph.node.append(helper.make_node("Softmax", [out.name], ["probs"], axis=-1))
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(info["classes"])]))
    onnx.checker.check_model(m)
    dst = os.path.join(bundle_dir, "oneshot_kind.onnx")
    onnx.save(m, dst)
    from .bundle import sha256
    spec = {"name": "oneshot_kind", "file": "oneshot_kind.onnx", "sha256": sha256(dst), "role": "oneshot_classifier",
            "instruments": [], "classes": info["classes"], "min_confidence": KIND_MIN_CONFIDENCE,
            "inputs": [{"name": "audio", "shape": [-1, ONESHOT], "dtype": "float32"}],
            "outputs": [{"name": "probs", "shape": [-1, len(info["classes"])], "dtype": "float32"}]}
    return spec, {k: info[k] for k in ("classes", "val", "test", "test_unseen", "transfer", "export")} | {
        "training": {k: v for k, v in info["training"].items() if k != "history"}}


def kind_card(k):
    if not k:
        return ""
    acc = ", ".join(f"{s} {k[s]['accuracy']:.3f} ({k[s]['n']:,} one-shots)" for s in ("val", "test", "test_unseen", "transfer"))
    rec = ", ".join(f"{c} {v:.2f}" for c, v in k["test"]["per_kind_recall"].items())
    return f"""
Kind classifier (`oneshot_kind.onnx`, role `oneshot_classifier`): the kind of a one-shot whose
name does not say it, from the same first second (`audio` [B, {ONESHOT}] -> `probs` [B, 10], a
softmax added to `loopmatch_train.oneshot_kind`'s export of logits). Trained on the corpus kits
and processed real training kits (train split), selected on val. Accuracy: {acc}
(test_unseen: test kits training never played; transfer: the held-out hydrogen kits, reported
only). Test recall per kind: {rec}. Ingest stores the kind when the best class has probability
at least {KIND_MIN_CONFIDENCE} (`min_confidence`, a fixed rule, not tuned), else `unknown`.
Rebuild: `PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.oneshot_kind --out train/out`.
"""


def add_to_bundle(out_dir, bundle_dir, log=print):
    from .bundle import add_role, sha256
    work = os.path.join(out_dir, "samplematch")
    res = json.load(open(os.path.join(work, "results.json")))
    specs = []
    dim = None
    for role, n in (("context_encoder", N), ("oneshot_encoder", ONESHOT)):
        f = f"{role}.onnx"
        shutil.copyfile(os.path.join(work, f), os.path.join(bundle_dir, f))
        from .export import session
        s = session(os.path.join(bundle_dir, f))
        d = int(s.run(["embedding"], {"audio": np.zeros((1, n), np.float32)})[0].shape[1])
        dim = dim or d
        specs.append({"name": role, "file": f, "sha256": sha256(os.path.join(bundle_dir, f)), "role": role,
                      "instruments": [], "inputs": [{"name": "audio", "shape": [-1, n], "dtype": "float32"}],
                      "outputs": [{"name": "embedding", "shape": [-1, d], "dtype": "float32"}]})
    info = {"dim": dim, "oneshot_seconds": ONESHOT / SR, "kinds": KINDS,
            "metrics": {k: res["rows"][k] for k in ("samplematch", "spectral baseline")},
            "training": {k: v for k, v in res["training"].get("samplematch", {}).items() if k != "history"}, "export": res.get("export", {})}
    kspec, kinfo = kind_classifier(work, bundle_dir)
    if kinfo:
        info["kind_classifier"] = kinfo
    n = golden_fixtures(bundle_dir, work, kspec is not None)
    text = card(res, info).replace(CARD_END, kind_card(kinfo) + CARD_END)
    add_role(bundle_dir, "context_encoder", specs[:1], "samplematch", info, CARD_BEGIN, CARD_END, text)
    add_role(bundle_dir, "oneshot_encoder", specs[1:], "samplematch", info, CARD_BEGIN, CARD_END, text)
    add_role(bundle_dir, "oneshot_classifier", [kspec] if kspec else [], "samplematch", info, CARD_BEGIN, CARD_END, text)
    log(f"samplematch: added to {bundle_dir} ({n} golden fixtures)")


# demo one-shots: the FluidR3_GM kits the demo library's drum loops were rendered from,
# one file per kind (role -> the kind's file name)
DEMO_KITS = (0, 8, 16, 25, 32)
DEMO_ROLES = {"kick": "kick", "snare": "snare", "clap": "clap", "rim": "rim", "hat_c": "hat", "hat_o": "open_hat",
              "ride": "ride", "crash": "crash", "tom_l": "tom", "perc": "perc"}
DEMO_LICENCE = """# Demo one-shots: licence

One-shots of the FluidR3_GM soundfont's drum presets (Debian `fluid-soundfont-gm`, Frank Wen
and contributors, MIT licence), rendered by fluidsynth (one note each, velocity 100, the first
1.5 s, peak-normalised) by `train/loopmatch_train/oneshots.py` (`gm_kit`) and written here by
`python -m loopmatch_train.samplematch_bundle --demo demo` (run by `make models`). Folder
`OneShots-gm<preset>` holds the kit of GM drum preset <preset>, the kit the demo packs whose
`drum_kit` is `gm:<preset>` (metadata.csv) were rendered with; `loopmatch eval --context`
scores how well a pack's loops pick their own kit's one-shots.
"""


def write_demo_oneshots(demo_dir, work, log=print):
    """demo/OneShots-gm<preset>/<kind>.wav (16-bit, 22.05 kHz), from the cached kits."""
    from .oneshots import gm_kit
    n = 0
    for program in DEMO_KITS:
        kit = gm_kit(program, work)
        d = os.path.join(demo_dir, f"OneShots-gm{program}")
        os.makedirs(d, exist_ok=True)
        for role, kind in DEMO_ROLES.items():
            x = kit.get(role)
            if x is None or not np.any(x):
                continue
            end = len(x) - int(np.argmax(np.abs(x[::-1]) > 1e-4))  # drop the silent tail
            _write16(os.path.join(d, f"{kind}.wav"), 0.9 * x[:max(end, SR // 10)])
            n += 1
    with open(os.path.join(demo_dir, "ONESHOTS_LICENSE.md"), "w") as f:
        f.write(DEMO_LICENCE)
    log(f"samplematch: {n} demo one-shots in {demo_dir}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--demo", default="", help="also write the demo library's one-shots into this folder")
    args = ap.parse_args(argv)
    add_to_bundle(args.out, args.bundle)
    if args.demo:
        write_demo_oneshots(args.demo, os.path.join(args.out, "samplematch"))


if __name__ == "__main__":
    main()
