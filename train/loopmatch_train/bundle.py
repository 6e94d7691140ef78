"""Write models/loopmatch-v1: ONNX files, golden fixtures, manifest.json, MODEL_CARD.md."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil

import numpy as np

from .audio_io import load_mono, window, N, SR
from .bundle_files import add_role  # noqa: F401 (the stages import it from here)
from .export import export_decoder, export_encoder, export_mapper, session
from .models import C_LAT, T_LAT, N_FFT, HOP, N_MELS

LATENT = [C_LAT, T_LAT]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def write_bundle(bundle_dir, out_dir, vaes, decoders, mappers, results, training, corpus_dir, rows, spl, gl_iters=16, gl_momentum=0.99, log=print):
    stage = os.path.join(out_dir, "bundle")
    if os.path.isdir(stage):
        shutil.rmtree(stage)
    os.makedirs(stage)
    test = [i for i, s in enumerate(spl) if s == "test"]
    check_audio = np.stack([window(load_mono(os.path.join(corpus_dir, rows[i]["path"]))) for i in test[:3]])
    check_z = np.random.default_rng(0).standard_normal((2, C_LAT, T_LAT)).astype(np.float32)
    specs, parity = [], {}
    for name in ("drum", "bass"):
        f = f"{name}_encoder.onnx"
        parity[f] = export_encoder(vaes[name], os.path.join(stage, f), check_audio)
        specs.append(dict(name=f"{name}_encoder", file=f, role="encoder", instruments=[name],
                          inputs=[dict(name="audio", shape=[-1, N], dtype="float32")],
                          outputs=[dict(name="z", shape=[-1] + LATENT, dtype="float32")]))
    for name in ("drum", "bass"):
        f = f"{name}_decoder.onnx"
        parity[f] = export_decoder(vaes[name], os.path.join(stage, f), check_z, gl_iters, gl_momentum, decoders[name])
        specs.append(dict(name=f"{name}_decoder", file=f, role="decoder", instruments=[name],
                          inputs=[dict(name="z", shape=[-1] + LATENT, dtype="float32")],
                          outputs=[dict(name="audio", shape=[-1, N], dtype="float32")]))
    for direction, m in mappers.items():
        src, tgt = direction.split("2")
        f = f"{direction}.onnx"
        parity[f] = export_mapper(m, os.path.join(stage, f), check_z)
        specs.append(dict(name=direction, file=f, role="mapper", instruments=[src, tgt],
                          inputs=[dict(name="z", shape=[-1] + LATENT, dtype="float32")],
                          outputs=[dict(name="z_out", shape=[-1] + LATENT, dtype="float32")]))
    log("onnx vs torch max abs diff", json.dumps(parity))
    golden(stage, corpus_dir, rows, test, specs, log)
    for s in specs:
        s["sha256"] = sha256(os.path.join(stage, s["file"]))
    manifest = {
        "name": "loopmatch-v1", "version": "1.0.0", "sample_rate": SR, "window_seconds": 4.0,
        "latent_shape": LATENT,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "training": training | {"onnx_parity_max_abs_diff": parity},
        "metrics": results,
        "models": [{k: s[k] for k in ("name", "file", "sha256", "role", "instruments", "inputs", "outputs")} for s in specs],
    }
    finish(stage, bundle_dir, manifest, model_card(manifest, results, training), log)


def finish(stage, bundle_dir, manifest, card: str, log):
    """Write manifest.json and MODEL_CARD.md into the staged bundle, then replace bundle_dir."""
    with open(os.path.join(stage, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(stage, "MODEL_CARD.md"), "w") as f:
        f.write(card)
    if os.path.isdir(bundle_dir):
        shutil.rmtree(bundle_dir)
    shutil.copytree(stage, bundle_dir)
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(bundle_dir) for fn in fns)
    log(f"bundle {bundle_dir}: {size / 1e6:.1f} MB")


def golden(stage, corpus_dir, rows, test, specs, log):
    """A few test loops (short ones exercise tiling, a long one cutting) with expected z and
    mapped z, computed by onnxruntime on PCM decoded and windowed by Go's rule."""
    gd = os.path.join(stage, "golden")
    os.makedirs(gd)
    picks, want = [], [("drum", "short"), ("bass", "short"), ("drum", "long"), ("bass", "long"), ("bass", "short")]
    used = set()
    for inst, kind in want:
        for i in test:
            r = rows[i]
            n = int(r["samples"])
            ok = (n < N) if kind == "short" else (n > N)
            if r["instrument"] == inst and ok and i not in used:
                picks.append(i)
                used.add(i)
                break
    sess = {s["name"]: (session(os.path.join(stage, s["file"])), s) for s in specs if s["role"] in ("encoder", "mapper")}
    entries = []
    for k, i in enumerate(picks):
        r = rows[i]
        wav = f"g{k}_{r['instrument']}.wav"
        shutil.copyfile(os.path.join(corpus_dir, r["path"]), os.path.join(gd, wav))
        x = window(load_mono(os.path.join(gd, wav)))[None]
        z = sess[f"{r['instrument']}_encoder"][0].run(["z"], {"audio": x})[0]
        zf = f"g{k}_{r['instrument']}_z.f32"
        z.astype("<f4").tofile(os.path.join(gd, zf))
        mapped = {}
        for name, (s, spec) in sess.items():
            if spec["role"] == "mapper" and spec["instruments"][0] == r["instrument"]:
                mz = s.run(["z_out"], {"z": z})[0]
                mf = f"g{k}_{name}.f32"
                mz.astype("<f4").tofile(os.path.join(gd, mf))
                mapped[name] = {"file": mf, "shape": list(mz.shape)}
        entries.append({"wav": wav, "instrument": r["instrument"], "samples": int(r["samples"]),
                        "windowing": "tile" if int(r["samples"]) < N else "cut",
                        "z": {"file": zf, "shape": list(z.shape)}, "mapped": mapped})
    doc = {"sample_rate": SR, "window_samples": N, "dtype": "float32", "byte_order": "little",
           "tolerance_max_abs": 1e-4,
           "rule": "decode 16-bit PCM as int/32768, mono, tile from the start to N or take the first N samples",
           "fixtures": entries}
    with open(os.path.join(gd, "golden.json"), "w") as f:
        json.dump(doc, f, indent=2)
    log(f"golden fixtures: {len(entries)}")


TABLE_SETTINGS = (("all", "All candidates"), ("same_bpm", "Same tempo (exact BPM; seeds with < 5 candidates skipped)"),
                  ("bpm3", "BPM within ±3%"))


def fmt_table(res, settings=TABLE_SETTINGS):
    """Markdown tables of res[setting][model] -> figures, one per setting."""
    out = []
    for setting, title in settings:
        out.append(f"**{title}**\n")
        out.append("| model | seeds | pairs | R_mn | R_md | Recall@1 | Recall@10 | ILD@5 | ILD@10 |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for label, r in res[setting].items():
            if "R_mn" not in r:
                out.append(f"| {label} | {r['seeds']} | 0 | – | – | – | – | – | – |")
                continue
            out.append(f"| {label} | {r['seeds']} | {r['pairs']} | {r['R_mn']:.3f} | {r['R_md']:.3f} | {r['Recall@1']:.3f} | "
                       f"{r['Recall@10']:.3f} | {r['ILD@5']:.3f} | {r['ILD@10']:.3f} |")
        out.append("")
    return "\n".join(out)


def model_card(manifest, results, training):
    st = training["corpus"]
    chosen = training["shipped_mappers"]
    dur = training["durations_s"]
    vae = training["vae"]
    dec = training["decoders"]
    dec_desc = ("z → conv3 → 3 dilated residual blocks → deconv4/2 → 2 blocks → deconv4/2 → 3 blocks → conv1, width "
                f"{dec['bass']['channels']}" if dec["bass"]["arch"] == "res" else "the phase-1 decoder's layers")
    return f"""# loopmatch-v1 — model card

Drum2Bass / Bass2Drum loop recommendation after Yi & Barthet, "A generative framework for
composition-aware loop recommendation in music production: Drum2Bass use case". Built by
`make models` (train/), seed {training['seed']}, on CPU (2 threads).

## Files

| file | role | input | output |
|---|---|---|---|
""" + "\n".join(f"| {m['file']} | {m['role']} ({' → '.join(m['instruments'])}) | {m['inputs'][0]['name']} {m['inputs'][0]['shape']} | {m['outputs'][0]['name']} {m['outputs'][0]['shape']} |" for m in manifest["models"]) + f"""

All float32, opset 17, dynamic batch. Sample rate 22050 Hz, window 4.0 s (N = 88200; shorter
loops are tiled from their start, longer ones cut to their first N samples, as Go's
`audio.Window`). Mapper outputs are named `z_out` (an ONNX graph cannot have an input and an
output of the same name); the manifest lists the real names. `golden/` holds parity fixtures
(WAVs, expected `z` and mapped `z` as raw little-endian float32, `golden.json`), computed with
onnxruntime {__import__('onnxruntime').__version__} on PCM decoded and windowed by Go's rule.

## Data

A synthetic loop-pack corpus, generated deterministically from the seed (train/loopmatch_train/corpus.py):
{st['packs']} packs, {st['loops']} loops ({st['drum_loops']} drum, {st['bass_loops']} bass);
genres {st['genres']}; tempi (BPM: packs) {st['tempos']}; loop lengths in bars {st['bars']};
drum sources {st['drum_sources']}. Each pack has a genre, an integer tempo typical of the genre,
a key (75% minor), a chord progression, a groove (kick pattern with pack-specific syncopation,
swing, signature percussion), one drum kit and one bass patch; drum loops are the variations
main / busy / sparse / fill and bass loops main / busy / sparse of that groove; the bass follows the
progression and locks to the kick as the genre does (house: off-beats; techno: rolling 16ths
between kicks; hip-hop, trap, drum & bass, breakbeat, funk: on the kick; garage: kick plus
off-beat pickups). Rendered at 22050 Hz, 16-bit WAV, RMS-normalised to −18 dBFS (peak ≤ 0.97):
bass and half the drum kits with fluidsynth 2.3 from **FluidR3_GM** (GM bass programs 32–39, 81, 87; GM
drum kits Standard, Room, Power, Electronic, TR-808, Jazz, Brush), the other half of the drum kits
mixed in numpy from **hydrogen-drumkits** samples. No other sound set was used for training or model
selection. Split by pack 0.85 / 0.05 / 0.10: {st['split_packs']}. The corpus is regenerated by
`make models`, not committed.

Licences of the sound sets: FluidR3_GM — MIT. hydrogen-drumkits — GPL-2/GPL-2+ (Artemiy Pavlov's
ElectricEmpireKit, HardElectro1, VariBreaks; Emiliano Grilli's Millo kits; ColomboAcousticDrumkit
GPL-2+ with a composition exception; ForzeeStereo, The Black Pearl), CC0 (Audiophob),
CC-BY-SA-3.0-US (BJA_Pacific), CC-BY-3.0 (rumpf_kit_z01_h2); see
/usr/share/doc/hydrogen-drumkits/copyright. The model weights are trained on renderings of
these samples; the demo library (demo/LICENSE.md) carries the kits' licences.

## Architecture

- Front end, inside every encoder graph: STFT as a Conv1d with fixed Hann-windowed DFT
  kernels (n_fft {N_FFT}, hop {HOP}, no centering → 256 frames), magnitude, {N_MELS}-band mel
  (20 Hz–11 kHz), log(x + 1e-4), per-band standardisation with training-split statistics.
- VAE per instrument (1-D convolutions over time, frequency as channels, width 192, GELU):
  encoder mel[128×256] → conv3 → conv4/2 → conv4/2 → conv3 → conv1 → (μ, log σ²) of shape
  [C, T] = [16, 64]; decoder z → conv3 → deconv4/2 → deconv4/2 → conv3 → conv1 → standardised
  **linear-frequency log-magnitude** [513 × 256] (the target an iSTFT can invert). Loss: MSE +
  β·KL with β = {vae['drum']['beta']} (per latent time step), AdamW, one-cycle LR,
  {vae['drum']['epochs']} epochs, batch 32, reparameterisation in training; `z` = posterior mean.
- Why [16, 64]: T = 64 frames over 4 s is 62.5 ms per step, finer than a 16th note up to
  240 BPM, so z keeps the groove's onset timing in place (what makes drums and bass of a pack
  recoverable); 16 channels per step hold timbre and pitch; 1024 dims are cheap for cosine
  search; and the decoder upsamples T by 4 back to the STFT frame rate.
- Shipped magnitude decoders (train/loopmatch_train/train_decoder.py): phase 1 fixes the
  latent space; its MSE-trained decoder blurs note starts, so each instrument's shipped
  decoder is trained afresh on the **frozen** encoder (z, the mappers and every retrieval
  figure are unchanged): architecture "{dec['bass']['arch']}" ({dec_desc}), {dec['bass']['params']:,}
  parameters, on training-split loops with z drawn from the encoder's posterior (σ ×
  {dec['bass']['posterior_noise']}), {dec['bass']['epochs']} epochs, batch 32, AdamW, one-cycle LR. Loss: MSE on the standardised
  log-magnitude + {dec['bass']['w_level']:g} × L1 on the compressed magnitude ln(1 + |X|/51.2) (the scale an
  onset detector reads) + {dec['bass']['w_flux']:g} × the spectral-flux error (per frame, the summed
  |rise of the prediction − rise of the truth| over bins / 10), which asks for attacks in
  the frames where the loop has them. Final validation MSE: drum {dec['drum']['final']['val_mse']:.4f},
  bass {dec['bass']['final']['val_mse']:.4f} (phase-1 decoder: drum {vae['drum']['final']['val_rec']:.4f}, bass {vae['bass']['final']['val_rec']:.4f}).
  The loss weights and the architecture were chosen on the validation packs' bass loops
  (onset recall against x's onsets; the variants and their figures: docs/decoder/sweep.md,
  from train/loopmatch_train/decoder_sweep.py).
- Decoder graph: the magnitude decoder, de-standardisation, exp, then {training.get('gl_iters', 32)} iterations of
  **fast Griffin-Lim** (momentum {training.get('gl_momentum', 0)}; Perraudin et al. 2013) **inside the graph**, from a
  fixed seeded initial phase, returning audio [B, 88200] in [−1, 1]. Why magnitude + in-graph
  phase reconstruction rather than predicted phase: phase is hard to learn from a
  62.5 ms-per-step latent on CPU-sized data, and Griffin-Lim needs no training, so the graph
  stays deterministic and small. The STFT / iSTFT inside it are the real DFT factorised
  32 × 32 (two fixed matrix products and a twiddle multiply, MatMul/Mul/Transpose in ONNX:
  ~135k multiply-adds per 1024-sample frame instead of 1.05M for a dense DFT; framing and
  overlap-add by reshapes over 341-sample blocks), which cut the decode of one loop about
  3× against the previous dense DFT convolution. On true test-loop magnitudes, 16 momentum
  iterations reach a spectral convergence of 0.107 against 0.140 for 32 plain Griffin-Lim
  iterations, at half the cost. Previews carry Griffin-Lim phase artefacts, but they are
  audio and say what the mapper predicts.
- Mappers (MLP-Latent): flattened z (1024) standardised with training statistics → 4 fully
  connected layers 1024→512→512→512→1024 (GELU, dropout 0.1) → de-standardised target z.
  Variant "L2": MSE in the standardised target latent space (the paper's MLP-Latent).
  Variant "InfoNCE": the same plus a symmetric in-batch InfoNCE term on cosine(mapped z, true
  target z), τ = 0.07, λ = 1 (each mapped seed picks its target among the batch's targets, and
  with half weight each target picks its mapped seed), other packs' loops in the batch as
  negatives, same-pack loops masked, and time-roll augmentation: every batch's source and
  target latents are rolled along T by one random shift, the same for both (a pack's loops are
  aligned and periodic, so a shifted pair is still a pair; the mapper learns the timing relation
  between the grooves rather than absolute positions). On the validation packs this halved
  Drum2Bass R_mn (0.093 → 0.034) and lowered same-tempo R_mn from 0.376 to 0.226.
  Trained on every same-pack (source, target) pair of the training packs, AdamW, one-cycle LR,
  batch 128; the checkpoint and the variant are chosen on the validation packs only.
  Shipped: drum2bass = **{chosen['drum2bass']}**, bass2drum = **{chosen['bass2drum']}**.

## Evaluation (test packs, reported once)

For every same-pack (seed, target) pair: the normalised rank of the target among itself and
all target-instrument loops of other packs (other same-pack loops left out, since they are
right answers too), ties half; R_mn / R_md are the mean / median over pairs (random = 0.5),
Recall@K the share of pairs with the target in the top K, ILD@L the mean pairwise
1 − |A∩B|/L of the seeds' top-L lists (over all candidates of the setting). Scores are
cosine over flattened z (the deployed search). Baselines: random; metadata rule (nearest BPM,
then same key; ties half); linear — ridge regression from the seed's log-mel (pooled to
32 bands × 64 frames) to the target's, ranked by cosine, α chosen on validation.

### Drum2Bass

{fmt_table(results['drum2bass'])}
### Bass2Drum

{fmt_table(results['bass2drum'])}
## Training cost

Durations (s): {json.dumps(dur)}. Threads: 2. Seeds fixed and deterministic algorithms on;
a rerun reproduces the metrics (see the closing note of issue 8 for the measured spread).

## How to reproduce

```
make models        # scripts/bootstrap.sh --train, then train/make_models.sh
```
Everything intermediate goes to train/out/ (corpus WAVs + metadata.csv, cached features,
checkpoints, results.json); the bundle is copied here and the demo library to demo/.

## Limitations

Synthetic, single-source corpus: grooves are template-based, one kit and one patch per pack,
no effects or mixing. Retrieval on real libraries will be harder; the sound sets held out
from training (other soundfonts, real loops in Debian packages) are for that check.
"""
