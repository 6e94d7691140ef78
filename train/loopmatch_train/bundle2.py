"""Write models/loopmatch-v2: ONNX files, golden fixtures, manifest.json, MODEL_CARD.md.

v2 latents are [ce + 16, 64]: the compatibility towers' channels (scaled so they carry
almost all of the norm, so cosine search ranks by compatibility) ahead of the VAE channels
(the codec the decoders read). The encoders' identity is what a collection records; a new
decoder or mapper keeps the same encoder files and so needs no re-ingest."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import numpy as np
import torch

from .audio_io import N, SR, load_mono, window
from . import bundle as B1
from .bundle import golden, sha256
from .export import _export, session
from .models import C_LAT, T_LAT, DecoderGraph, DecoderGraphV2, EncoderGraphV2, MapperV2

NAME, VERSION = "loopmatch-v2", "2.0.0"
SHIPPED_LABEL = "loopmatch-v2 (compatibility towers)"


def _parity(module, path, x, in_name, out_name):
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    got = session(path).run([out_name], {in_name: x})[0]
    return float(np.max(np.abs(ref - got)))


def write_bundle_v2(bundle_dir, out_dir, vaes, decoders, towers, scale, mappers, results, training, corpus_dir, rows, spl,
                    gl_iters=16, gl_momentum=0.99, log=print):
    ce = towers["drum"].ce
    latent = [ce + C_LAT, T_LAT]
    stage = os.path.join(out_dir, "bundle2")
    if os.path.isdir(stage):
        shutil.rmtree(stage)
    os.makedirs(stage)
    test = [i for i, s in enumerate(spl) if s == "test"]
    check_audio = np.stack([window(load_mono(os.path.join(corpus_dir, rows[i]["path"]))) for i in test[:3]]).astype(np.float32)
    check_z = np.random.default_rng(0).standard_normal((2, *latent)).astype(np.float32)
    specs, parity = [], {}
    for name in ("drum", "bass"):
        f = f"{name}_encoder.onnx"
        g = EncoderGraphV2(vaes[name], towers[name], scale).eval()
        _export(g, torch.zeros(2, N), os.path.join(stage, f), "audio", "z")
        parity[f] = _parity(g, os.path.join(stage, f), check_audio, "audio", "z")
        specs.append(dict(name=f"{name}_encoder", file=f, role="encoder", instruments=[name],
                          inputs=[dict(name="audio", shape=[-1, N], dtype="float32")],
                          outputs=[dict(name="z", shape=[-1] + latent, dtype="float32")]))
    for name in ("drum", "bass"):
        f = f"{name}_decoder.onnx"
        g = DecoderGraphV2(DecoderGraph(vaes[name], gl_iters, gl_momentum, decoders[name]), ce).eval()
        _export(g, torch.zeros(1, *latent), os.path.join(stage, f), "z", "audio")
        parity[f] = _parity(g, os.path.join(stage, f), check_z, "z", "audio")
        specs.append(dict(name=f"{name}_decoder", file=f, role="decoder", instruments=[name],
                          inputs=[dict(name="z", shape=[-1] + latent, dtype="float32")],
                          outputs=[dict(name="audio", shape=[-1, N], dtype="float32")]))
    for direction, m in mappers.items():
        src, tgt = direction.split("2")
        f = f"{direction}.onnx"
        g = MapperV2(m, ce).eval()
        _export(g, torch.zeros(2, *latent), os.path.join(stage, f), "z", "z_out")
        parity[f] = _parity(g, os.path.join(stage, f), check_z, "z", "z_out")
        specs.append(dict(name=direction, file=f, role="mapper", instruments=[src, tgt],
                          inputs=[dict(name="z", shape=[-1] + latent, dtype="float32")],
                          outputs=[dict(name="z_out", shape=[-1] + latent, dtype="float32")]))
    log("onnx vs torch max abs diff", json.dumps(parity))
    golden(stage, corpus_dir, rows, test, specs, log)
    for s in specs:
        s["sha256"] = sha256(os.path.join(stage, s["file"]))
    manifest = {
        "name": NAME, "version": VERSION, "sample_rate": SR, "window_seconds": 4.0,
        "latent_shape": latent,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "training": training | {"onnx_parity_max_abs_diff": parity},
        # test split as v1 recorded it (direction -> setting -> model), the transfer split beside
        "shipped_model": SHIPPED_LABEL,
        "metrics": {d: results[d]["test"] for d in results},
        "metrics_transfer": {d: results[d]["transfer"] for d in results},
        "models": [{k: s[k] for k in ("name", "file", "sha256", "role", "instruments", "inputs", "outputs")} for s in specs],
    }
    B1.finish(stage, bundle_dir, manifest, model_card(manifest, results, training), log)


def fmt_table(by_setting):
    return B1.fmt_table(by_setting, (B1.TABLE_SETTINGS[0], B1.TABLE_SETTINGS[2], B1.TABLE_SETTINGS[1]))


def headline(results, label):
    """The v2 row, test vs transfer, per direction and setting: the generalisation gap."""
    out = ["| direction | setting | test R_mn | transfer R_mn | gap (transfer − test) | ridge transfer R_mn |",
           "|---|---|---|---|---|---|"]
    for direction in ("drum2bass", "bass2drum"):
        for setting in ("all", "bpm3", "same_bpm"):
            te = results[direction]["test"][setting][label].get("R_mn")
            tr = results[direction]["transfer"][setting][label].get("R_mn")
            ridge = next((v.get("R_mn") for k, v in results[direction]["transfer"][setting].items() if k.startswith("ridge")), None)
            if te is None or tr is None:
                continue
            out.append(f"| {direction} | {setting} | {te:.3f} | {tr:.3f} | {tr - te:+.3f} | {ridge:.3f} |")
    return "\n".join(out)


def model_card(manifest, results, training):
    st = training["corpus"]
    tw = training["towers"]
    vae = training["vae"]
    dec = training["decoders"]
    label = SHIPPED_LABEL
    ce = tw["ce"]
    return f"""# loopmatch-v2 — model card

Drum2Bass / Bass2Drum loop recommendation in the generative framework of Yi & Barthet
("A generative framework for composition-aware loop recommendation in music production:
Drum2Bass use case"), rebuilt so that what it learns carries over to music it has never heard.
Built by `make models` (train/, `loopmatch_train.run2`), seed {training["seed"]}, on CPU (two processes of one
thread each for the codecs, one thread for the rest).

## Headline: in distribution vs transfer

The **transfer split** is music no model saw in training or selection: packs drawn only from
held-out factors — the "euclid" groove family, the Hydrogen drum kits and the FM synth bass
family (no training or validation pack uses any of them). The test split is held-out packs
of the training factors. R_mn: mean normalised rank of the right loop (random = 0.5, lower
is better).

{headline(results, label)}

## Files

| file | role | input | output |
|---|---|---|---|
""" + "\n".join(f"| {m['file']} | {m['role']} ({' → '.join(m['instruments'])}) | {m['inputs'][0]['name']} {m['inputs'][0]['shape']} | {m['outputs'][0]['name']} {m['outputs'][0]['shape']} |" for m in manifest["models"]) + f"""

All float32, opset 17, dynamic batch. Sample rate 22050 Hz, window 4.0 s (N = 88200; shorter
loops are tiled from their start, longer ones cut to their first N samples, as Go's
`audio.Window`). Latent z = [{ce} compatibility channels × 64 ; 16 VAE channels × 64]. Mapper
outputs are named `z_out`. `golden/` holds parity fixtures computed with onnxruntime
{__import__('onnxruntime').__version__} on PCM decoded and windowed by Go's rule.

## Data: corpus v2

Generated deterministically from the seed (train/loopmatch_train/corpus2.py, grooves.py,
basslines.py, synth.py, production.py, render2.py): {st['packs']} packs, {st['loops']} loops
({st['drum_loops']} drum, {st['bass_loops']} bass). Every pack draws, independently of one another:

- a style, {len(st['styles'])} in all: {st['styles']}, with tempi shared across styles
  ({st['tempos']});
- a groove family: {st['groove_families']} — "template" (each style's frame plus pack-specific
  syncopation), "stochastic" (per-style step probabilities bent by a per-pack tilt and sampled),
  "human" (the one-bar patterns of the human-made demo songs in Debian's hydrogen-data, with their
  own micro-timing), "euclid" (layered Euclidean rhythms; transfer only); swing, ghost notes,
  fills, hat rolls, half-time feels, 1/2/4-bar loops, and 10% of packs rotated to start off the
  downbeat (all loops of the pack together);
- a bass idiom: {st['bass_idioms']} — kick-locked, off-beat, root/fifth, octaves, walking,
  arpeggio, syncopated riff, sustained sub with slides, rolling 16ths; a pack's "alt" loop uses a
  second idiom of its style; every idiom follows the pack's chord roots and locks to its kicks;
- a drum source: {st['drum_sources']} (FluidR3_GM kits; kits synthesised in code with random
  parameters; Hydrogen kits for the transfer split only) and a bass source: {st['bass_sources']}
  (FluidR3_GM bass programs; subtractive and wavetable synth patches with random parameters; FM
  patches for the transfer split only);
- and for every loop its own production chain (random shelf / peak EQ, saturation, compression,
  circular reverb, lo-fi filter, noise floor, gain), so production never tells which loops belong
  together.

Loops lengths in bars: {st['bars']}. Split by pack: {st['split_packs']} ({st['transfer_split']}).
Sound sets other than FluidR3_GM, the Hydrogen kits and data and what is synthesised here
(other soundfonts, LMMS and Sonic Pi samples) were not used for training or selection.

Licences: FluidR3_GM — MIT. hydrogen-drumkits — GPL-2/GPL-2+, CC0, CC-BY-SA-3.0-US, CC-BY-3.0 (see
/usr/share/doc/hydrogen-drumkits/copyright); used only in the transfer split. hydrogen-data demo
songs (patterns only, as scores) — GPL-2+. Synthesised sounds — the project's own.

## Architecture

- **Compatibility towers** (train/loopmatch_train/train_compat.py), one per instrument, into one
  shared space: log-mel [128 × 256] with each band's mean over time removed (static timbre, EQ and
  loudness are gone before the first layer) → conv5 → conv4/2 → conv4/2 (width 128, GELU) → 4
  residual dilated conv3 (dilation 1, 2, 4, 8: ~2 s of context) → conv1 → e [{ce} × 64], unit L2
  norm. No pooling over time: e says where onsets fall (62.5 ms per step). Trained with a symmetric
  InfoNCE (τ = {tw['tau']}) over batches of one pair per pack: {tw['same_tempo']} packs **of one
  tempo** plus {tw['random']} of any tempo (tempo cannot satisfy the loss), plus {tw['shift_negatives']}
  **circular-shift negatives** per pair and direction (the right loop rolled a quarter to three
  quarters of a beat off the grid); each pair rolled in time together (never one side alone);
  band masks drawn per side. {tw['epochs']} epochs × {tw['steps_per_epoch']} steps, AdamW, one-cycle LR
  {tw['lr']}; the checkpoint chosen on the validation packs (Drum2Bass R_mn, all + same tempo).
- **VAE codec** per instrument (as v1: conv encoder → posterior mean [16 × 64]; MSE + β·KL,
  β = {vae['drum']['beta']}), trained on {vae['drum'].get('train_loops', '?')} random training loops per instrument for
  {vae['drum']['epochs']} epochs; its **decoders** retrained on the frozen encoder with v1's onset-aware loss
  ({dec['bass']['epochs']} epochs); decoder graphs: magnitude → {training.get('gl_iters')} fast Griffin-Lim iterations (momentum
  {training.get('gl_momentum')}) on a 32 × 32-factorised DFT, inside the graph.
- **Encoder graph**: front end (STFT, mel, log) → [tower e × {tw['scale']:.3f} ; VAE μ]. The scale is 8 × the
  median VAE latent norm, so cosine between latents is the towers' cosine to within a few percent.
- **Mapper graph**: compatibility channels pass through (drums and basses share that space);
  the VAE channels are predicted by MLP-Latent (L2) — the paper's model — which is what the
  preview decodes.

## Evaluation

For every same-pack (seed, target) pair: the normalised rank of the target among itself and
all target-instrument loops of other packs of the same split (other same-pack loops left out),
ties half; R_mn / R_md over pairs (random = 0.5), Recall@K, ILD@L. Scores are cosine over the
latents as Go stores and searches them. Rows: random; metadata (nearest BPM, then same key —
the corpus labels drum loops with their pack's key, which real drum loops do not carry, so this
row is an upper bound of label search, not a model);
ridge regression from pooled log-mel to pooled log-mel (α on validation); **loopmatch-v1** (the
shipped v1 bundle's encoders and mappers run on these loops — v1 was trained with Hydrogen kits,
which the transfer split uses); MLP-Latent (L2) and MLP-Latent + InfoNCE (v1's method) trained
on v2's VAE latents; loopmatch-v2.

### Drum2Bass — test split (in distribution)

{fmt_table(results['drum2bass']['test'])}
### Drum2Bass — transfer split

{fmt_table(results['drum2bass']['transfer'])}
### Bass2Drum — test split (in distribution)

{fmt_table(results['bass2drum']['test'])}
### Bass2Drum — transfer split

{fmt_table(results['bass2drum']['transfer'])}
## Training cost

Durations (s): {json.dumps(training['durations_s'])}. Torch threads per process: {training['threads']} (the two
codecs train in parallel processes). The export, golden fixtures, decoder evaluation and demo
follow; `make models` prints the total (train/out/make_models.log).

## How to reproduce

```
make models        # scripts/bootstrap.sh --train, then train/make_models.sh
```

## Limitations

Synthetic corpus: grooves, idioms and sounds are generated, however varied. The transfer split
holds out a generator family and sound sets, not real recordings; an independent set outside the
project (other generators, other sound sets, stems of real songs) is the real check. Previews come
from the VAE codec and carry Griffin-Lim phase artefacts.
"""
