"""Render corpus scores to 16-bit WAV at the bundle rate.

Bass loops and GM drum loops: fluidsynth (CLI) with FluidR3_GM, many loops per MIDI file
(one process per chunk of packs, so the 140 MB soundfont loads rarely). Hydrogen drum
loops: the kit's own samples mixed in numpy. Every loop is made seamless (the release
tail past the loop end is folded back onto its start) and loudness normalised.
"""
from __future__ import annotations

import csv
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from math import gcd

import mido
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from . import corpus as C

SR = 22050
SF2 = os.environ.get("LOOPMATCH_SF2", "/usr/share/sounds/sf2/FluidR3_GM.sf2")
HYDROGEN_DIR = os.environ.get("LOOPMATCH_HYDROGEN", "/usr/share/hydrogen/data/drumkits")
TAIL = 1.0  # seconds of release rendered past each loop's end
TARGET_RMS_DB = -18.0
PEAK = 0.97

GM_DRUM_NOTES = {"kick": 36, "snare": 38, "clap": 39, "rim": 37, "hat_c": 42, "hat_o": 46,
                 "ride": 51, "crash": 49, "tom_l": 45, "tom_h": 50, "perc": 56}

# keyword rules for finding a role in a hydrogen kit (first match wins)
H2_ROLES = {
    "kick": ["kick", "bassdrum", "bass drum", "bd"],
    "snare": ["snare"],
    "clap": ["clap"],
    "rim": ["stick", "rim"],
    "hat_c": ["closed", "hat 1 cl", "hat cl", "hat_cl", "hh closed", "hat closed", "hi-hat closed"],
    "hat_o": ["open", "hat 1 op", "hat op", "opened"],
    "ride": ["ride"],
    "crash": ["crash"],
    "tom_l": ["tom low", "low tom", "floor tom", "tom floor", "tom_l"],
    "tom_h": ["tom hi", "high tom", "tom high", "tom 1", "tom"],
    "perc": ["cowbell", "conga", "tamb", "agogo", "perc", "zap"],
}
H2_FALLBACK = {"clap": "snare", "rim": "snare", "perc": "rim", "ride": "hat_o", "crash": "hat_o",
               "hat_o": "hat_c", "tom_l": "tom_h", "tom_h": "snare"}


def normalise(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)
    y = x * (10 ** (TARGET_RMS_DB / 20) / rms)
    peak = float(np.max(np.abs(y)))
    if peak > PEAK:
        y *= PEAK / peak
    return y.astype(np.float32)


def fold_tail(seg: np.ndarray, n: int) -> np.ndarray:
    """Loop of n samples from a render of n + tail samples: fold the tail onto the start."""
    out = seg[:n].astype(np.float64).copy()
    tail = seg[n:]
    k = 0
    while k < len(tail):
        m = min(n, len(tail) - k)
        out[:m] += tail[k:k + m]
        k += m
    return out.astype(np.float32)


def loop_samples(bpm: int, bars: int) -> int:
    return int(round(C.loop_seconds(bpm, bars) * SR))


# --- hydrogen -----------------------------------------------------------------

@lru_cache(maxsize=None)
def hydrogen_kit(kit: str) -> dict[str, np.ndarray]:
    """Role -> mono float32 sample at SR (first layer of the first matching instrument)."""
    d = os.path.join(HYDROGEN_DIR, kit)
    root = ET.parse(os.path.join(d, "drumkit.xml")).getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    insts = []
    for inst in root.iter(ns + "instrument"):
        nm = inst.find(ns + "name")
        files = [f.text for f in inst.iter(ns + "filename") if f.text and os.path.exists(os.path.join(d, f.text))]
        if nm is not None and nm.text and files:
            insts.append((nm.text.lower(), files))
    roles: dict[str, np.ndarray] = {}
    for role, keys in H2_ROLES.items():
        for key in keys:
            hit = next((f for n, f in insts if key in n and not (role == "kick" and "bass drum" not in key and "snare" in n)), None)
            if role == "tom_h" and hit is not None and key == "tom" and any(k in n for n, f in insts if f is hit for k in ("low", "floor")):
                hit = None
            if hit is not None:
                # middle velocity layer: a natural level for a groove
                roles[role] = _load_sample(os.path.join(d, hit[len(hit) // 2]))
                break
    for role, fb in H2_FALLBACK.items():
        r = role
        while r not in roles and r in H2_FALLBACK:
            r = H2_FALLBACK[r]
            if r in roles:
                roles[role] = roles[r]
    return roles


def _load_sample(path: str) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SR:
        g = gcd(sr, SR)
        x = resample_poly(x, SR // g, sr // g).astype(np.float32)
    x = x[: int(1.5 * SR)]
    peak = float(np.max(np.abs(x))) or 1.0
    return (x / peak).astype(np.float32)


DRUM_GAINS = {"kick": 1.0, "snare": 0.8, "clap": 0.8, "rim": 0.5, "hat_c": 0.35, "hat_o": 0.4,
              "ride": 0.35, "crash": 0.45, "tom_l": 0.7, "tom_h": 0.7, "perc": 0.45}


def mix_one_shots(kit: dict, pack, loop) -> np.ndarray:
    """A drum loop from a kit's one-shots (role -> sample): each note's sample at its time,
    scaled by the role's gain and the velocity, the tail folded onto the loop's start."""
    n = loop_samples(pack.bpm, loop.bars)
    buf = np.zeros(n + int(2 * SR), np.float32)
    for nt in loop.notes:
        s = kit.get(str(nt.pitch))
        if s is None:
            continue
        t = int(round(C.note_time(nt.step, pack.bpm, pack.swing) * SR))
        g = DRUM_GAINS.get(str(nt.pitch), 0.5) * (nt.vel / 127.0)
        buf[t:t + len(s)] += g * s[: len(buf) - t]
    return fold_tail(buf, n)


def render_hydrogen(pack: C.Pack, loop: C.Loop) -> np.ndarray:
    return mix_one_shots(hydrogen_kit(str(pack.drum_kit)), pack, loop)


# --- fluidsynth -----------------------------------------------------------------

TPB = 11025  # ticks per beat at 120 bpm (0.5 s a beat): one tick = one sample at 22050 Hz
SAMPLES_PER_TICK = 1
ALIGN = 128  # segment starts fall on fluidsynth block boundaries


def _segments_midi(segments, path):
    """segments: list of (start_sample, channel, program, notes[(t0_s, t1_s, pitch, vel)])."""
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    ev = [(0, 0, mido.MetaMessage("set_tempo", tempo=500000))]
    for start, ch, prog, notes in segments:
        t0 = start // SAMPLES_PER_TICK
        ev.append((max(t0 - 40, 0), 1, mido.Message("control_change", channel=ch, control=123, value=0)))
        ev.append((max(t0 - 30, 0), 2, mido.Message("control_change", channel=ch, control=121, value=0)))
        ev.append((max(t0 - 20, 0), 3, mido.Message("program_change", channel=ch, program=prog)))
        ev.append((max(t0 - 10, 0), 4, mido.Message("control_change", channel=ch, control=7, value=110)))
        for a, b, pitch, vel in notes:
            ta = t0 + int(round(a * SR / SAMPLES_PER_TICK))
            tb = t0 + int(round(b * SR / SAMPLES_PER_TICK))
            ev.append((ta, 6, mido.Message("note_on", channel=ch, note=int(pitch), velocity=int(vel))))
            ev.append((max(tb, ta + 1), 5, mido.Message("note_off", channel=ch, note=int(pitch), velocity=0)))
    ev.sort(key=lambda e: (e[0], e[1]))
    now = 0
    for t, _, m in ev:
        m.time = t - now
        now = t
        tr.append(m)
    tr.append(mido.MetaMessage("end_of_track", time=int(2 * SR / SAMPLES_PER_TICK)))
    mid.save(path)


def render_fluid_chunk(jobs):
    """jobs: list of (loop_name, channel, program, notes, n_samples). Returns name -> audio."""
    segs, starts, pos = [], [], ALIGN * 8
    for name, ch, prog, notes, n in jobs:
        segs.append((pos, ch, prog, notes))
        starts.append((name, pos, n))
        pos += n + int(TAIL * SR) + int(0.5 * SR)
        pos = (pos + ALIGN - 1) // ALIGN * ALIGN
    with tempfile.TemporaryDirectory() as td:
        mp, rp = os.path.join(td, "c.mid"), os.path.join(td, "c.raw")
        _segments_midi(segs, mp)
        subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SR),
                        "-T", "raw", "-O", "float", "-E", "little", "-o", "synth.cpu-cores=1",
                        "-F", rp, SF2, mp], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        raw = np.fromfile(rp, dtype="<f4").reshape(-1, 2).mean(axis=1)
    out = {}
    for name, start, n in starts:
        seg = raw[start:start + n + int(TAIL * SR)]
        if len(seg) < n + int(TAIL * SR):
            seg = np.pad(seg, (0, n + int(TAIL * SR) - len(seg)))
        out[name] = fold_tail(seg, n)
    return out


def fluid_job(pack: C.Pack, loop: C.Loop):
    n = loop_samples(pack.bpm, loop.bars)
    dur_step = C.step_seconds(pack.bpm)
    notes = []
    if loop.instrument == "drum":
        ch, prog = 9, int(pack.drum_kit)
        for nt in loop.notes:
            t = C.note_time(nt.step, pack.bpm, pack.swing)
            notes.append((t, t + 0.1, GM_DRUM_NOTES[str(nt.pitch)], nt.vel))
    else:
        ch, prog = 0, pack.bass_program
        for nt in loop.notes:
            t = C.note_time(nt.step, pack.bpm, pack.swing)
            notes.append((t, min(t + nt.dur * dur_step, n / SR), int(nt.pitch), nt.vel))
    return (loop.name, ch, prog, notes, n)


def _write(path, x):
    sf.write(path, normalise(x), SR, subtype="PCM_16")


def _render_chunk(args):
    packs, outdir = args
    jobs, rows = [], []
    for p in packs:
        for lp in p.loops:
            rel = os.path.join(p.name, f"{lp.name}_{p.bpm}bpm_{p.key}.wav")
            rows.append((rel, p, lp))
            if lp.instrument == "bass" or p.drum_source == "gm":
                jobs.append(fluid_job(p, lp))
    audio = render_fluid_chunk(jobs) if jobs else {}
    out = []
    for rel, p, lp in rows:
        x = audio[lp.name] if lp.name in audio else render_hydrogen(p, lp)
        os.makedirs(os.path.join(outdir, p.name), exist_ok=True)
        _write(os.path.join(outdir, rel), x)
        out.append(dict(path=rel, pack=p.name, instrument=lp.instrument, variant=lp.variant, genre=p.genre,
                        bpm=p.bpm, key=p.key, bars=lp.bars, drum_kit=f"{p.drum_source}:{p.drum_kit}",
                        bass_program=p.bass_program, samples=loop_samples(p.bpm, lp.bars)))
    return out


def render_corpus(packs: list, split: dict[str, str], outdir: str, workers: int = 2, chunk: int = 25,
                  chunk_fn=None, extra: tuple = ()):
    """Render packs in chunks of `chunk` on `workers` processes with chunk_fn((packs, outdir,
    *extra)) -> rows (default: corpus v1's), add each row's split, write metadata.csv."""
    os.makedirs(outdir, exist_ok=True)
    chunks = [(packs[i:i + chunk], outdir, *extra) for i in range(0, len(packs), chunk)]
    rows = []
    with ProcessPoolExecutor(workers) as ex:
        for res in ex.map(chunk_fn or _render_chunk, chunks):
            rows.extend(res)
    for r in rows:
        r["split"] = split[r["pack"]]
    with open(os.path.join(outdir, "metadata.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    return rows
