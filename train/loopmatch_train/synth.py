"""Sounds synthesised in code for corpus v2: drum kits and bass patches with randomised
parameters (numpy + scipy only), so that timbre is a pack's accident, never its identity.

Drum kits: kick (sine with a pitch sweep, click, drive), snare (tone + band-passed noise),
clap (noise bursts), hats / ride / crash (six detuned square oscillators at metallic ratios
plus noise, high-passed), toms (sine sweeps), rim, percussion (cowbell, woodblock, conga).
Bass patches, three families: "subtractive" (saw / square / pulse / sine with a filter
envelope and drive), "wavetable" (a harmonic spectrum that morphs over the note) and "fm"
(two-operator FM with an index envelope; held out of training for the transfer split).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfilt

SR = 22050
SYNTH_BASS_TRAIN = ["subtractive", "wavetable"]
SYNTH_BASS_TRANSFER = ["fm"]


def midi_hz(p: float) -> float:
    return 440.0 * 2 ** ((p - 69) / 12)


def _env(n, attack, decay, sr=SR):
    t = np.arange(n) / sr
    a = np.clip(t / max(attack, 1e-4), 0, 1)
    return a * np.exp(-t / max(decay, 1e-4))


def _bp(x, lo, hi, order=2):
    hi = min(hi, SR / 2 * 0.95)
    lo = min(max(lo, 20), hi * 0.9)
    return sosfilt(butter(order, [lo, hi], "bandpass", fs=SR, output="sos"), x)


def _hp(x, f, order=2):
    return sosfilt(butter(order, min(f, SR / 2 * 0.95), "highpass", fs=SR, output="sos"), x)


def _lp(x, f, order=2):
    return sosfilt(butter(order, min(max(f, 30), SR / 2 * 0.95), "lowpass", fs=SR, output="sos"), x)


def _norm(x):
    p = float(np.max(np.abs(x))) or 1.0
    return (x / p).astype(np.float32)


def _metal(rng, n, base, decay, hp):
    ratios = np.array([2.0, 3.0, 4.16, 5.43, 6.79, 8.21]) * rng.uniform(0.9, 1.1, 6)
    t = np.arange(n) / SR
    x = sum(np.sign(np.sin(2 * np.pi * base * r * t + rng.uniform(0, 6.28))) for r in ratios)
    x = x * 0.5 + rng.normal(0, 1, n) * rng.uniform(0.2, 1.0)
    return _hp(x, hp) * _env(n, 0.0005, decay)


def drum_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Role -> mono float32 one-shot at SR, every parameter drawn from rng."""
    kit = {}
    # kick
    n = int(SR * rng.uniform(0.25, 0.7))
    t = np.arange(n) / SR
    f_end, f_start = rng.uniform(40, 65), rng.uniform(110, 320)
    tau = rng.uniform(0.015, 0.07)
    f = f_end + (f_start - f_end) * np.exp(-t / tau)
    ph = 2 * np.pi * np.cumsum(f) / SR
    k = np.sin(ph) * _env(n, 0.001, rng.uniform(0.12, 0.5))
    k += rng.uniform(0, 0.5) * _hp(rng.normal(0, 1, n), 2000) * _env(n, 0.0002, 0.004)
    drive = rng.uniform(1, 4)
    kit["kick"] = _norm(np.tanh(drive * k))
    # snare
    n = int(SR * rng.uniform(0.2, 0.45))
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * rng.uniform(150, 260) * t) * _env(n, 0.001, rng.uniform(0.03, 0.1))
    c = rng.uniform(1200, 5000)
    noise = _bp(rng.normal(0, 1, n), c * 0.4, c * 2.2) * _env(n, 0.001, rng.uniform(0.06, 0.25))
    kit["snare"] = _norm(rng.uniform(0.2, 0.8) * tone + noise)
    # clap
    n = int(SR * rng.uniform(0.25, 0.5))
    env = np.zeros(n)
    gap = rng.uniform(0.006, 0.014)
    for j in range(int(rng.integers(3, 5))):
        s = int(j * gap * SR)
        env[s:] += _env(n - s, 0.0005, 0.008 if j < 3 else rng.uniform(0.05, 0.15))
    c = rng.uniform(900, 2500)
    kit["clap"] = _norm(_bp(rng.normal(0, 1, n), c * 0.6, c * 2.5) * env)
    # metals
    base = rng.uniform(280, 620)
    kit["hat_c"] = _norm(_metal(rng, int(SR * 0.15), base, rng.uniform(0.02, 0.07), rng.uniform(6000, 9000)))
    kit["hat_o"] = _norm(_metal(rng, int(SR * 0.6), base, rng.uniform(0.15, 0.45), rng.uniform(5500, 8500)))
    kit["ride"] = _norm(_metal(rng, int(SR * 1.2), base * rng.uniform(0.7, 1.0), rng.uniform(0.4, 0.9), rng.uniform(3000, 6000)))
    kit["crash"] = _norm(_metal(rng, int(SR * 1.5), base * rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.2), rng.uniform(2500, 5000)))
    # toms
    for role, lo, hi in (("tom_l", 70, 120), ("tom_h", 120, 220)):
        n = int(SR * 0.5)
        t = np.arange(n) / SR
        f0 = rng.uniform(lo, hi)
        f = f0 * (1 + 0.6 * np.exp(-t / 0.03))
        kit[role] = _norm(np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n, 0.001, rng.uniform(0.12, 0.3)))
    # rim
    n = int(SR * 0.08)
    t = np.arange(n) / SR
    kit["rim"] = _norm(np.sin(2 * np.pi * rng.uniform(1500, 2600) * t) * _env(n, 0.0002, 0.012)
                       + 0.5 * _hp(rng.normal(0, 1, n), 3000) * _env(n, 0.0002, 0.004))
    # percussion
    kind = int(rng.integers(0, 3))
    n = int(SR * 0.3)
    t = np.arange(n) / SR
    if kind == 0:  # cowbell
        f1 = rng.uniform(500, 600)
        x = np.sign(np.sin(2 * np.pi * f1 * t)) + np.sign(np.sin(2 * np.pi * f1 * 1.48 * t))
        p = _bp(x, f1 * 0.8, f1 * 3) * _env(n, 0.0005, rng.uniform(0.05, 0.15))
    elif kind == 1:  # woodblock
        p = np.sin(2 * np.pi * rng.uniform(700, 1600) * t) * _env(n, 0.0003, rng.uniform(0.015, 0.04))
    else:  # conga
        f0 = rng.uniform(180, 420)
        f = f0 * (1 + 0.3 * np.exp(-t / 0.02))
        p = np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n, 0.001, rng.uniform(0.08, 0.2))
    kit["perc"] = _norm(p)
    return kit


@dataclass
class BassPatch:
    family: str  # subtractive, wavetable, fm
    params: dict = field(default_factory=dict)


def bass_patch(family: str, rng: np.random.Generator) -> BassPatch:
    if family == "subtractive":
        return BassPatch(family, dict(
            osc=str(rng.choice(["saw", "square", "pulse", "sine", "saw2"])),
            cutoff=float(rng.uniform(150, 900)), env_amt=float(rng.uniform(0, 3000)),
            env_decay=float(rng.uniform(0.04, 0.4)), attack=float(rng.uniform(0.001, 0.02)),
            release=float(rng.uniform(0.02, 0.15)), drive=float(rng.choice([1.0, 1.0, 2.0, 4.0])),
            sub=float(rng.uniform(0, 0.6)), detune=float(rng.uniform(0, 0.15)),
            glide=float(rng.uniform(0.03, 0.09))))
    if family == "wavetable":
        h = np.arange(1, 25)
        a = rng.uniform(0, 1, 24) / h ** rng.uniform(0.6, 1.6)
        b = rng.uniform(0, 1, 24) / h ** rng.uniform(0.8, 2.2)
        a[0] = b[0] = 1.0
        return BassPatch(family, dict(
            table_a=a.tolist(), table_b=b.tolist(), morph=float(rng.uniform(0.05, 0.6)),
            attack=float(rng.uniform(0.001, 0.02)), release=float(rng.uniform(0.02, 0.15)),
            drive=float(rng.choice([1.0, 1.5, 3.0])), glide=float(rng.uniform(0.03, 0.09))))
    if family == "fm":
        return BassPatch(family, dict(
            ratio=float(rng.choice([0.5, 1.0, 1.0, 2.0, 3.0])), index=float(rng.uniform(0.5, 6.0)),
            index_decay=float(rng.uniform(0.03, 0.4)), feedback=float(rng.uniform(0, 0.4)),
            attack=float(rng.uniform(0.001, 0.015)), release=float(rng.uniform(0.02, 0.12)),
            glide=float(rng.uniform(0.03, 0.09))))
    raise ValueError(f"unknown synth bass family {family!r}")


def _freq_curve(n, f, f_prev, glide):
    fr = np.full(n, f)
    if f_prev:
        g = min(n, int(glide * SR))
        fr[:g] = f_prev * (f / f_prev) ** (np.arange(g) / max(g, 1))
    return fr


def bass_note(patch: BassPatch, pitch: int, seconds: float, vel: int, prev_pitch: int | None, rng) -> np.ndarray:
    """One note (held for `seconds`, then its release) as float32 at SR. prev_pitch: slide from it."""
    p = patch.params
    hold = max(int(seconds * SR), 16)
    rel = int(p["release"] * SR)
    n = hold + rel
    f = midi_hz(pitch)
    fr = _freq_curve(n, f, midi_hz(prev_pitch) if prev_pitch is not None else None, p["glide"])
    phase = 2 * np.pi * np.cumsum(fr) / SR
    t = np.arange(n) / SR
    amp = np.clip(t / p["attack"], 0, 1)
    amp[hold:] *= np.exp(-(np.arange(rel)) / (rel / 5 + 1))
    if patch.family == "subtractive":
        osc = p["osc"]
        if osc == "saw":
            x = 2 * ((phase / (2 * np.pi)) % 1) - 1
        elif osc == "saw2":
            x = (2 * ((phase / (2 * np.pi)) % 1) - 1 + 2 * ((phase * (1 + p["detune"] / 12) / (2 * np.pi)) % 1) - 1) / 2
        elif osc == "square":
            x = np.sign(np.sin(phase))
        elif osc == "pulse":
            x = np.where((phase / (2 * np.pi)) % 1 < 0.25, 1.0, -1.0)
        else:
            x = np.sin(phase)
        x = x + p["sub"] * np.sin(phase / 2)
        dark = _lp(x, p["cutoff"])
        bright = _lp(x, p["cutoff"] + p["env_amt"])
        e = np.exp(-t / p["env_decay"])
        x = dark * (1 - e) + bright * e
    elif patch.family == "wavetable":
        a, b = np.array(p["table_a"]), np.array(p["table_b"])
        nyq = int(max(1, min(len(a), (SR / 2 * 0.9) // f)))
        m = np.clip(t / p["morph"], 0, 1)
        x = np.zeros(n)
        for h in range(nyq):
            x += ((1 - m) * a[h] + m * b[h]) * np.sin((h + 1) * phase)
    else:  # fm
        idx = p["index"] * (0.3 + 0.7 * np.exp(-t / p["index_decay"]))
        mod = np.sin(p["ratio"] * phase)
        x = np.sin(phase + idx * mod + p["feedback"] * np.sin(phase))
    if p.get("drive", 1.0) > 1.0:
        x = np.tanh(p["drive"] * x) / np.tanh(p["drive"])
    return (x * amp * (vel / 127.0)).astype(np.float32)
