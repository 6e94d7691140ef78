"""Per-loop production for corpus v2: random EQ, saturation, compression, reverb, lo-fi
filtering, gain and noise floor, each drawn independently for every loop, so production is
never a cue for which loops belong together. Everything is applied to the loop as a cycle
(filters run over two periods and keep the second, reverb is a circular convolution), so
loops stay seamless."""
from __future__ import annotations

from dataclasses import dataclass, asdict

import numpy as np
from scipy.signal import lfilter, butter, sosfilt

SR = 22050


@dataclass
class Chain:
    low_gain_db: float = 0.0
    low_hz: float = 120.0
    high_gain_db: float = 0.0
    high_hz: float = 5000.0
    peak_gain_db: float = 0.0
    peak_hz: float = 800.0
    peak_q: float = 1.0
    drive: float = 1.0
    comp_threshold_db: float = 0.0  # 0: off
    comp_ratio: float = 1.0
    reverb_wet: float = 0.0
    reverb_seconds: float = 0.5
    lofi_hz: float = 0.0  # 0: off
    noise_db: float = -120.0
    gain_db: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def random_chain(rng: np.random.Generator, lofi: bool = False) -> Chain:
    c = Chain()
    if rng.random() < 0.8:
        c.low_gain_db, c.low_hz = float(rng.uniform(-6, 6)), float(rng.uniform(60, 250))
        c.high_gain_db, c.high_hz = float(rng.uniform(-9, 6)), float(rng.uniform(2500, 8000))
        c.peak_gain_db, c.peak_hz, c.peak_q = float(rng.uniform(-6, 6)), float(np.exp(rng.uniform(np.log(200), np.log(4000)))), float(rng.uniform(0.5, 2.5))
    if rng.random() < 0.4:
        c.drive = float(rng.uniform(1.5, 5.0))
    if rng.random() < 0.4:
        c.comp_threshold_db, c.comp_ratio = float(rng.uniform(-24, -8)), float(rng.uniform(2, 8))
    if rng.random() < 0.4:
        c.reverb_wet, c.reverb_seconds = float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.2, 1.5))
    if lofi or rng.random() < 0.1:
        c.lofi_hz = float(rng.uniform(2500, 6000))
    if rng.random() < 0.3:
        c.noise_db = float(rng.uniform(-60, -38))
    c.gain_db = float(rng.uniform(-6, 3))
    return c


def _biquad(kind, f, gain_db, q=0.707):
    """RBJ cookbook shelf and peak filters: (b, a)."""
    a_ = 10 ** (gain_db / 40)
    w = 2 * np.pi * min(f, SR / 2 * 0.95) / SR
    cw, sw = np.cos(w), np.sin(w)
    if kind == "peak":
        al = sw / (2 * q)
        b = [1 + al * a_, -2 * cw, 1 - al * a_]
        a = [1 + al / a_, -2 * cw, 1 - al / a_]
    else:
        al = sw / 2 * np.sqrt(2)
        sa = 2 * np.sqrt(a_) * al
        if kind == "low":
            b = [a_ * ((a_ + 1) - (a_ - 1) * cw + sa), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw), a_ * ((a_ + 1) - (a_ - 1) * cw - sa)]
            a = [(a_ + 1) + (a_ - 1) * cw + sa, -2 * ((a_ - 1) + (a_ + 1) * cw), (a_ + 1) + (a_ - 1) * cw - sa]
        else:
            b = [a_ * ((a_ + 1) + (a_ - 1) * cw + sa), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw), a_ * ((a_ + 1) + (a_ - 1) * cw - sa)]
            a = [(a_ + 1) - (a_ - 1) * cw + sa, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sa]
    return np.array(b) / a[0], np.array(a) / a[0]


def _cyclic(fn, x):
    """Apply a causal process to a periodic signal: run it over two periods, keep the second."""
    n = len(x)
    return fn(np.concatenate([x, x]))[n:]


def apply(chain: Chain, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    y = x.astype(np.float64)
    n = len(y)
    for kind, f, g, q in (("low", chain.low_hz, chain.low_gain_db, 0.707), ("high", chain.high_hz, chain.high_gain_db, 0.707),
                          ("peak", chain.peak_hz, chain.peak_gain_db, chain.peak_q)):
        if abs(g) > 0.05:
            b, a = _biquad(kind, f, g, q)
            y = _cyclic(lambda s: lfilter(b, a, s), y)
    if chain.lofi_hz > 0:
        sos = butter(4, chain.lofi_hz, "lowpass", fs=SR, output="sos")
        y = _cyclic(lambda s: sosfilt(sos, s), y)
    peak = float(np.max(np.abs(y))) or 1.0
    if chain.drive > 1.0:
        y = np.tanh(chain.drive * y / peak) / np.tanh(chain.drive) * peak
    if chain.comp_threshold_db < 0:
        # RMS envelope follower (10 ms attack, 120 ms release approximated by one smoother)
        rms = np.sqrt(_cyclic(lambda s: lfilter([0.003], [1, -0.997], s), y * y) + 1e-12)
        level = 20 * np.log10(rms / (peak + 1e-12) + 1e-12)
        over = np.maximum(level - chain.comp_threshold_db, 0)
        y = y * 10 ** (-over * (1 - 1 / chain.comp_ratio) / 20)
    if chain.reverb_wet > 0:
        m = min(int(chain.reverb_seconds * SR), n)
        ir = rng.normal(0, 1, m) * np.exp(-np.arange(m) / (chain.reverb_seconds * SR / 6.9))
        ir = sosfilt(butter(1, 4000, "lowpass", fs=SR, output="sos"), ir)
        ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
        full = np.zeros(n)
        full[:m] = ir
        wet = np.fft.irfft(np.fft.rfft(y) * np.fft.rfft(full), n)  # circular: the tail wraps
        y = (1 - chain.reverb_wet) * y + chain.reverb_wet * wet * (np.std(y) / (np.std(wet) + 1e-12))
    if chain.noise_db > -100:
        y = y + rng.normal(0, 1, n) * (np.sqrt(np.mean(y ** 2)) * 10 ** (chain.noise_db / 20))
    return (y * 10 ** (chain.gain_db / 20)).astype(np.float32)
