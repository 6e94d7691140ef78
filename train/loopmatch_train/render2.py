"""Render corpus v2 scores to 16-bit WAV at the bundle rate.

GM drums and GM basses: fluidsynth with FluidR3_GM (render.render_fluid_chunk). Hydrogen
kits and synthesised kits: one-shots mixed in numpy. Synth basses: synth.bass_note per note
(slides glide from the previous note). Then every loop is folded seamless, passed through its
own random production chain (production.py) and loudness normalised at the chain's gain.
"""
from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from . import corpus as C
from . import corpus2 as C2
from . import production as P
from . import render as R
from . import synth as S

SR = R.SR
def synth_bass(pack: C2.Pack, loop: C2.Loop) -> np.ndarray:
    patch = S.bass_patch(pack.bass_source, np.random.default_rng([pack.bass_program, 11]))
    rng = np.random.default_rng([pack.bass_program, 12])
    n = R.loop_samples(pack.bpm, loop.bars)
    buf = np.zeros(n + int(2 * SR), np.float32)
    step_s = C.step_seconds(pack.bpm)
    prev = None
    for nt in loop.notes:
        t = int(round(C.note_time(nt.step, pack.bpm, pack.swing) * SR))
        x = S.bass_note(patch, int(nt.pitch), nt.dur * step_s, nt.vel, prev if nt.slide else None, rng)
        m = min(len(x), len(buf) - t)
        if m > 0:
            buf[t:t + m] += x[:m]
        prev = int(nt.pitch)
    return R.fold_tail(buf, n)


def _fluid_job(pack: C2.Pack, loop: C2.Loop):
    n = R.loop_samples(pack.bpm, loop.bars)
    step_s = C.step_seconds(pack.bpm)
    notes = []
    if loop.instrument == "drum":
        ch, prog = 9, int(pack.drum_kit)
        for nt in loop.notes:
            t = C.note_time(nt.step, pack.bpm, pack.swing)
            notes.append((t, t + 0.1, R.GM_DRUM_NOTES[str(nt.pitch)], nt.vel))
    else:
        ch, prog = 0, int(pack.bass_program)
        for nt in loop.notes:
            t = C.note_time(nt.step, pack.bpm, pack.swing)
            notes.append((t, min(t + nt.dur * step_s, n / SR), int(nt.pitch), nt.vel))
    return (loop.name, ch, prog, notes, n)


def loop_path(pack: C2.Pack, loop: C2.Loop) -> str:
    return os.path.join(pack.name, f"{loop.name}_{pack.bpm}bpm_{pack.key}.wav")


def _render_chunk(args):
    packs, outdir, seed = args
    jobs = []
    for p in packs:
        for lp in p.loops:
            if (lp.instrument == "drum" and p.drum_source == "gm") or (lp.instrument == "bass" and p.bass_source == "gm"):
                jobs.append(_fluid_job(p, lp))
    audio = R.render_fluid_chunk(jobs) if jobs else {}
    out = []
    for p in packs:
        kit = None
        if p.drum_source == "synth":
            kit = S.drum_kit(np.random.default_rng([int(p.drum_kit), 10]))
        elif p.drum_source == "hydrogen":
            kit = R.hydrogen_kit(str(p.drum_kit))
        for li, lp in enumerate(p.loops):
            if lp.name in audio:
                x = audio[lp.name]
            elif lp.instrument == "drum":
                x = R.mix_one_shots(kit, p, lp)
            else:
                x = synth_bass(p, lp)
            prng = np.random.default_rng([seed, 3, p.index, li])
            chain = P.random_chain(prng, lofi=p.genre == "lofi" and prng.random() < 0.5)
            y = P.apply(chain, R.normalise(x), prng)
            y = _normalise_at(y, chain.gain_db)
            rel = loop_path(p, lp)
            os.makedirs(os.path.join(outdir, p.name), exist_ok=True)
            sf.write(os.path.join(outdir, rel), y, SR, subtype="PCM_16")
            out.append(dict(path=rel, pack=p.name, instrument=lp.instrument, variant=lp.variant, genre=p.genre,
                            bpm=p.bpm, key=p.key, bars=lp.bars, drum_kit=f"{p.drum_source}:{p.drum_kit}",
                            bass_program=f"{p.bass_source}:{p.bass_program}", samples=R.loop_samples(p.bpm, lp.bars),
                            family=p.family, idiom=lp.idiom or p.idiom, group=p.group))
    return out


def _normalise_at(x: np.ndarray, gain_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)
    y = x * (10 ** ((R.TARGET_RMS_DB + gain_db) / 20) / rms)
    peak = float(np.max(np.abs(y)))
    if peak > R.PEAK:
        y *= R.PEAK / peak
    return y.astype(np.float32)


def render_corpus(packs: list[C2.Pack], split: dict[str, str], outdir: str, seed: int, workers: int = 2, chunk: int = 25):
    return R.render_corpus(packs, split, outdir, workers, chunk, chunk_fn=_render_chunk, extra=(seed,))
