"""Anomaly scores per instrument: one-class Deep SVDD on a loop window's audio embedding.

What "normal" means is learned per instrument from the corpus v2 train split (FluidR3_GM,
hydrogen kits, synthesised sounds). The model sees the same window the encoders see (the loop
tiled to 4 s, or its first 4 s), so for a short loop the repeat, and with it a broken seam, is
inside the window. Its embedding is computed inside the graph from raw PCM: log-mel statistics
per band (mean, spread, floor, relative to the clip's level), spectral flux, and sample-level
measures that a latent built for recommendation smooths away (the largest first and second
differences against their RMS: clicks; the share of samples at the peak and of flat tops:
clipping; held samples: bit-crush; crest factor, DC, silence share), and three groups aimed at
what those miss: clicks (the residual against a running median, where a 1-3 sample spike
stands out and a drum's attack does not), added noise (the floor of the quietest frames and
their high-frequency share) and a seam cut off the beat (the window's strongest repeat, from
the log-mel and the onset envelope, measured in the envelope's beat lag), the tuning against
A = 440 Hz (a tonal loop played at another speed is off pitch), and what the loop's declared
tempo (its name's or manifest's; 0 for none) says of the audio (TEMPO), the same readings
at the tempo a tiled window's own length implies (own_tempo: a seam cut off the beat is heard
without a declared tempo), and whether the whole loop's length (the graph's third input) is
whole beats at a whole-number tempo (length_fit: a loop played at another speed or trimmed off
its grid is not). The band statistics
are averaged over groups of adjacent bands (the group size chosen per instrument on the
validation split), so that they do not outweigh those few values. Deep SVDD maps the
standardised embedding to a point and scores the squared distance to the centre of the
training points; the threshold is the 95th percentile of the training loops' scores.

Two Deep SVDD variants, as the paper compares: a plain MLP pretrained as an autoencoder's
encoder, and a residual MLP (two residual blocks) trained from its initialisation. Baselines
on the same embedding: Isolation Forest (numpy, 100 trees of 256 samples) and PCA
reconstruction error (components for 90 % of the train variance). The variant shipped per
instrument is the one with the higher mean AUROC on the validation split's damaged loops
(damage from damage.py; corpus loops only). Reported on the test and the transfer split.

python -m loopmatch_train.anomaly --out train/out --bundle models/loopmatch-v2
builds just these models from an existing train/out (corpus v2 rendered) and adds them to the
bundle: <instrument>_anomaly.onnx, their manifest entries (role anomaly, with the threshold),
golden/anomaly.json, a MODEL_CARD section. The other files of the bundle stay byte for byte.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import soundfile as sf
import torch
from torch import nn
import torch.nn.functional as F

from . import corpus as C
from . import damage as D
from .audio_io import N, SR, load_mono, window
from .instrument import EPS, HOP, N_FFT, N_MELS, LogMel

INSTRUMENTS = ["drum", "bass"]
SEED = 2121
PERCENTILE = 95.0
CLAMP = 50.0
SCALARS = ["level", "flux_mean", "flux_std", "flux_max", "silence", "click", "click2", "hf", "crest",
           "clip", "flat", "dc", "hold", "loudness", "spike_max", "spike_mean", "spike_quiet",
           "med_spike1", "med_spike2", "loc_spike1", "loc_spike2", "floor_min", "floor_5", "hf_quiet",
           "repeat_diff", "repeat_ac", "beat_ac", "repeat_beats_frac", "tune_dev", "tune_conc"]
SPIKE_FRAME = 256  # samples per frame of the local click measures
MEDIAN = 7  # the click residual's median filter: a click of 1-3 samples is not in the median
# a sorting network for 7 values (16 compare-exchanges; it sorts all 2^7 inputs of 0 and 1, so
# every input: tests/test_anomaly.py)
SORT7 = [(0, 6), (2, 3), (4, 5), (0, 2), (1, 4), (3, 6), (0, 1), (2, 5), (3, 4), (1, 2), (4, 6), (2, 3), (4, 5),
         (1, 2), (3, 4), (5, 6)]
SPIKE_FLOOR = 0.01  # the residual's local level is at least this share of the peak
# the residual's level around a sample: its RMS over the LOCAL samples either side, leaving out
# the GAP nearest (a click of 1-3 samples and the median's own spread)
LOCAL, GAP = 16, 2
REPEAT_LAGS = (40, 162)  # frames: where the window's strongest repeat (the loop's length) is looked for
BEAT_LAGS = (12, 44)  # frames: where the beat's lag is looked for (30 to 110 BPM and their doubles)
# tuning (a tonal loop played at another speed is off concert pitch): the window low-passed and
# decimated, the energy of Hann frames at every note from E1 to E5 and TUNE_CLASSES offsets
# within its semitone; the offsets' circular mean says how far from A = 440 Hz the loop is tuned
TUNE_DECIMATE, TUNE_FRAME, TUNE_HOP, TUNE_CLASSES, TUNE_NOTES, TUNE_TAPS = 16, 1024, 512, 5, (28, 77), 63
EXACT_LAGS = (16, 162)  # frames: where a tiled loop's exact repeat is looked for (0.37 s on)
FPS = SR / HOP  # frames a second
OCTAVES = (1.0, 0.5, 2.0)  # the declared tempo, its half and its double: the score is the lowest of the three
# what the loop's declared tempo (its name's or manifest's BPM; 0 when it has none) says of
# the audio: at the declared beat, two beats and bar, how far the onset envelope's
# autocorrelation falls short of its strongest peak within -20 % .. +25 % of the lag, how far
# that peak lies from the lag, and the autocorrelation at the lag; the window's exact repeat
# (a tiled loop's length) in declared beats and how far from a whole number; how exact that
# repeat is (the one value that does not need the tempo); the distance again, for exact repeats only;
# then the same beat, two-beat and bar readings at the window's own tempo (OWN: a tiled
# loop's length, its exact repeat, taken as whole bars), which need no declared tempo: a loop
# cut off the grid repeats after a length whose bars put the beat off the envelope's peaks
GRID = ["beat_gap", "beat_off", "beat_ac", "beat2_gap", "beat2_off", "beat2_ac", "bar_gap", "bar_off", "bar_ac"]
# and what the loop's length says (length_fit; the length is the whole loop's, every window
# gets it): how far it is from whole bars at a whole-number tempo (a loop played at another
# speed, or trimmed off its grid, has a length no producer's tempo gives), and with a declared
# tempo, how far from whole half beats of it
LENGTH = ["len_off", "len_beat_off"]
TEMPO = GRID + ["repeat_frac", "repeat_exact", "tiled_frac"] + ["own_" + n for n in GRID] + LENGTH
# the tempo features a loop without a declared tempo still has
TEMPO_FREE = [TEMPO.index("repeat_exact")] + [TEMPO.index("own_" + n) for n in GRID] + [TEMPO.index("len_off")]
# length_fit: a loop's length fits when it lies within LEN_TOL_MS of a power-of-two number of
# beats (LEN_BEATS) at a whole-number tempo within LEN_BPM (a DAW's export is exact to a
# sample; resampling moves it by a fraction of a millisecond; a trim or a speed change moves it
# by many); the value is the misfit beyond that tolerance, in milliseconds
LEN_TOL_MS = 2.0
LEN_BEATS = (1, 2, 4, 8, 16, 32, 64)
LEN_BPM = (60.0, 200.0)
OWN_BPM = 70.0  # the window's own tempo: the fewest whole bars in its repeat that give at least this
TILED = -1.0  # a window whose exact repeat's log distance against the median lag's is below this is a tiled loop
N_FEATURES = 3 * N_MELS + len(SCALARS) + len(TEMPO)
METHODS = ["svdd_plain", "svdd_residual", "iforest", "pca", "tails"]
SHIPPABLE = ["svdd_plain", "svdd_residual", "tails"]  # the methods a bundle may ship (chosen on val)


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


# --- a loop's windows, as ingest cuts them (audio/windows.go) ----------------------------
# A loop longer than the window is scored on every window (one per hop of whole bars at its
# declared tempo, continuing from the loop's start past its end, so the last one holds the
# seam), and the loop's score aggregates its windows' scores (WINDOW_MODES, chosen on the
# validation split): a click 9 s into a 12 s loop is not in its first window.

MAX_WINDOWS = 16  # audio.DefaultMaxWindows
HOP_BPM = (40.0, 300.0)  # audio's minHopBPM, maxHopBPM
WINDOW_S = N / SR
WINDOW_MODES = ["first", "max"]  # the loop's score: its first window's, or the largest of its windows'


def hop_seconds(bpm, window_s=WINDOW_S):
    """audio.HopSeconds: the most whole bars (4/4) at bpm that fit the window; one window
    when the tempo is unknown or out of bounds."""
    if not (HOP_BPM[0] <= bpm <= HOP_BPM[1]):
        return window_s
    bar = 240.0 / bpm
    bars = math.floor(window_s / bar + 1e-9)
    return window_s if bars < 1 else bars * bar


def window_count(duration, hop, window_s=WINDOW_S, max_windows=MAX_WINDOWS):
    """audio.WindowCount: one for a loop no longer than the window, else one per hop that
    starts inside the loop (a start within 1 % of a hop of the end does not count)."""
    if not duration > window_s * (1 + 1e-6) or not hop > 0:
        return 1
    return max(1, min(int(math.ceil(duration / hop - 0.01)), max_windows))


def loop_windows(x, bpm, max_windows=MAX_WINDOWS):
    """audio.Windows of a mono loop at SR: window 0 is window(x); window k starts k hops in
    (rounded half away from zero, as Go's math.Round) and wraps past the end."""
    x = np.asarray(x, np.float32)
    hop = hop_seconds(bpm)
    out = [window(x)]
    for k in range(1, window_count(len(x) / SR, hop, max_windows=max_windows)):
        start = int(math.floor(k * hop * SR + 0.5)) % len(x)
        out.append(x[np.arange(start, start + N) % len(x)])
    return out


def aggregate(s, counts, mode):
    """Per-window scores s (loops' windows end to end, counts per loop) -> one per loop."""
    counts = np.asarray(counts, np.int64)
    starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64)
    if mode == "first":
        return s[starts]
    if mode == "max":
        return np.maximum.reduceat(s, starts)
    raise ValueError(f"unknown window aggregation {mode!r}: use one of {', '.join(WINDOW_MODES)}")


# --- the embedding ---------------------------------------------------------------------

class Features(LogMel):
    """(audio [B, N], bpm [B]: the declared tempo, 0 for none) -> embeddings [B, len(OCTAVES),
    N_FEATURES], one per reading of the tempo (OCTAVES; they differ only in the beat's and
    bar's lags), the declared first (see the module doc). The classifier's STFT and mel
    filterbank (the same buffers), without its mean removal. need: the columns to compute
    (indices into the N_FEATURES, ascending; None: all), so a graph that reads a few selected
    features computes only those (the values are the same either way)."""

    def __init__(self, need=None):
        super().__init__()
        if need is not None:
            need = sorted(int(j) for j in need)
            if not need or need[0] < 0 or need[-1] >= N_FEATURES or len(set(need)) != len(need):
                raise ValueError(f"Features: need {need!r}: give distinct columns in [0, {N_FEATURES})")
        self.need = need
        self._parts = self._make_parts()
        sr2 = SR / TUNE_DECIMATE
        n = np.arange(TUNE_TAPS) - TUNE_TAPS // 2
        fc = 0.4 / TUNE_DECIMATE  # the low-pass's cutoff, in cycles a sample at SR: 0.4 of the decimated rate
        self.register_buffer("tune_lp", torch.tensor(2 * fc * np.sinc(2 * fc * n) * np.hamming(TUNE_TAPS), dtype=torch.float32)[None, None])
        t = np.arange(TUNE_FRAME) / sr2
        f = np.array([440 * 2 ** ((m - 69) / 12 + c / (12 * TUNE_CLASSES)) for m in range(*TUNE_NOTES) for c in range(TUNE_CLASSES)])
        w = np.hanning(TUNE_FRAME)
        k = np.concatenate([np.cos(2 * np.pi * f[:, None] * t[None]) * w, np.sin(2 * np.pi * f[:, None] * t[None]) * w])
        self.register_buffer("tune_kernel", torch.tensor(k, dtype=torch.float32)[:, None])

    def tuning(self, x):
        """[B, 2]: how far the loop's partials sit from the equal-tempered grid at A = 440 Hz
        (cents, 0-50: the circular mean of the energy over the offsets within a semitone) and
        how concentrated they are (0: spread evenly, a drum; 1: all at one offset)."""
        y = F.conv1d(x.unsqueeze(1), self.tune_lp, stride=TUNE_DECIMATE)
        s = F.conv1d(y, self.tune_kernel, stride=TUNE_HOP)
        nf = s.shape[1] // 2
        e = (s[:, :nf] ** 2 + s[:, nf:] ** 2).sum(2).reshape(x.shape[0], -1, TUNE_CLASSES).sum(1)
        e = e / (e.sum(1, keepdim=True) + 1e-12)
        ang = torch.arange(TUNE_CLASSES, dtype=torch.float32) * (2 * np.pi / TUNE_CLASSES)
        re, im = (e * torch.cos(ang)).sum(1), (e * torch.sin(ang)).sum(1)
        return torch.stack([torch.atan2(im, re).abs() * (100 / (2 * np.pi)), torch.sqrt(re * re + im * im + 1e-12)], 1)

    def log_mel(self, x):
        """(mel power [B, N_MELS, frames], its log) of audio [B, N]."""
        s = F.conv1d(x.unsqueeze(1), self.kernel, stride=HOP)
        re, im = s[:, :self.nb], s[:, self.nb:]
        mel = torch.matmul(self.mel, torch.sqrt(re * re + im * im + 1e-12))
        return mel, torch.log(mel + EPS)

    def forward(self, x, bpm, dur=None):
        """x [B, N], bpm [B] (0: none), dur [B]: the whole loop's length in seconds (0 or
        None: unknown). The embedding's columns are self.need's (all when None), in order:
        only what those columns read is computed (an exported graph computes no more)."""
        want = list(range(N_FEATURES)) if self.need is None else self.need
        memo = {}

        def get(name):  # each intermediate computed once, and only when some column reads it
            if name not in memo:
                memo[name] = self._parts[name](get, x, bpm, dur)
            return memo[name]
        base = [j for j in want if j < N_BASE]
        cols = []
        for j in base:  # runs of columns of one group, read with one slice or gather
            g, c = _COLUMN[j]
            if cols and cols[-1][0] == g:
                cols[-1][1].append(c)
            else:
                cols.append((g, [c]))
        parts = [_take(get(g), c) for g, c in cols]
        per = [j - N_BASE for j in want if j >= N_BASE]
        octave = []
        if per:
            for o in OCTAVES:
                oc = []
                for name, lo, n in _OCTAVE_GROUPS:
                    c = [j - lo for j in per if lo <= j < lo + n]
                    if c:
                        oc.append(_take(get(name) if name == "length" else self._octave(name, get, bpm, o), c))
                octave.append(torch.cat(oc, 1))
        if not octave:
            b = torch.cat(parts, 1)
            return torch.stack([b] * len(OCTAVES), 1)
        if not parts:
            return torch.stack(octave, 1)
        b = torch.cat(parts, 1)
        return torch.stack([torch.cat([b, oc], 1) for oc in octave], 1)

    @staticmethod
    def _octave(name, get, bpm, o):
        if name == "tempo":
            return tempo(get("diff"), get("ac"), bpm, o)
        return grid(get("ac"), get("own"), o)

    def _make_parts(self):
        """What forward computes, by name: each a function of (get, x, bpm, dur), get
        returning another part (computed once). A scalar feature is a part of its own, so a
        graph of a few selected features computes those and what they read, no more."""
        def frames(get, x, *_):  # the local click measures' frames of SPIKE_FRAME samples
            d2 = get("d2")
            nf = d2.shape[1] // SPIKE_FRAME
            fr = d2[:, :nf * SPIKE_FRAME].reshape(d2.shape[0], nf, SPIKE_FRAME)
            xf = x[:, 1:1 + nf * SPIKE_FRAME].reshape(x.shape[0], nf, SPIKE_FRAME)
            return fr, xf, fr.abs().amax(2)

        def kurt(get, *_):
            fr, _, pk = get("frames")
            return torch.log(pk * pk / ((fr * fr).mean(2) + 1e-10) + 1e-6)

        def quiet(get, *_):
            _, xf, pk = get("frames")
            return torch.log(pk / (torch.sqrt((xf * xf).mean(2)) + 1e-4) + 1e-6)

        def silence(get, *_):
            e = torch.log(get("mel_lm")[0].sum(1) + EPS)
            return (e < e.amax(1, keepdim=True) - 6.9).float().mean(1)  # 60 dB below the loudest frame

        def atpeak(get, *_):
            return (get("a") >= 0.995 * get("peak")[:, None]).float().mean(1)

        def flat(get, *_):
            return ((get("a")[:, 1:] >= 0.98 * get("peak")[:, None]) & (get("d").abs() < 1e-6)).float().mean(1)

        def hold(get, *_):
            return ((get("d").abs() < 1e-7) & (get("a")[:, 1:] > 2e-3)).float().mean(1)

        def rms_of(t):
            return torch.sqrt((t * t).mean(1) + 1e-10)
        p = {
            "mel_lm": lambda get, x, *_: self.log_mel(x),
            "lm": lambda get, *_: get("mel_lm")[1],
            "lmn": lambda get, *_: get("lm") - get("level")[:, None, None],
            "flux": lambda get, *_: F.relu(get("lmn")[:, :, 1:] - get("lmn")[:, :, :-1]).mean(1),
            "a": lambda get, x, *_: x.abs(),
            "rms": lambda get, x, *_: rms_of(x),
            "peak": lambda get, *_: get("a").amax(1) + 1e-8,
            "d": lambda get, x, *_: x[:, 1:] - x[:, :-1],
            "rmsd": lambda get, *_: rms_of(get("d")),
            "d2": lambda get, *_: get("d")[:, 1:] - get("d")[:, :-1],
            "rmsd2": lambda get, *_: rms_of(get("d2")),
            "frames": frames, "kurt": kurt, "quiet": quiet,
            "diff": lambda get, *_: lag_diffs(get("lm")),
            "ac": lambda get, *_: onset_ac(get("lm")),
            "own": lambda get, *_: own_tempo(get("diff")),
            # the embedding's groups of columns (_COLUMN, _OCTAVE_GROUPS)
            "band_mean": lambda get, *_: get("lmn").mean(2),
            "band_std": lambda get, *_: get("lmn").std(2),
            "band_min": lambda get, *_: get("lmn").amin(2),
            "level": lambda get, *_: get("lm").mean(dim=(1, 2)),
            "flux_mean": lambda get, *_: get("flux").mean(1),
            "flux_std": lambda get, *_: get("flux").std(1),
            "flux_max": lambda get, *_: get("flux").amax(1),
            "silence": silence,
            "click": lambda get, *_: torch.log(get("d").abs().amax(1) / get("rmsd") + 1e-6),
            "click2": lambda get, *_: torch.log(get("d2").abs().amax(1) / get("rmsd2") + 1e-6),
            "hf": lambda get, *_: torch.log(get("rmsd") / get("rms") + 1e-6),
            "crest": lambda get, *_: torch.log(get("peak") / get("rms") + 1e-6),
            "clip": lambda get, *_: torch.log(atpeak(get) + 1e-5),
            "flat": lambda get, *_: torch.log(flat(get) + 1e-5),
            "dc": lambda get, x, *_: x.mean(1) / get("rms"),
            "hold": lambda get, *_: torch.log(hold(get) + 1e-5),
            "loudness": lambda get, *_: torch.log(get("rms") + 1e-6),
            "spike_max": lambda get, *_: get("kurt").amax(1),
            "spike_mean": lambda get, *_: get("kurt").mean(1),
            "spike_quiet": lambda get, *_: get("quiet").amax(1),
            "spikes": lambda get, x, *_: median_spikes(x, get("peak")),
            "floors": lambda get, x, *_: floors(x),
            "repeats": lambda get, *_: repeats(get("diff"), get("ac")),
            "tuning": lambda get, x, *_: self.tuning(x),
            "length": lambda get, x, bpm, dur: length_fit(torch.zeros_like(bpm) if dur is None else dur, bpm),
        }
        return p


# the embedding's columns (N_FEATURES: the per-band statistics, the scalars, then the tempo
# features of each reading of the tempo) as (Features part, column of it): what a graph of a
# few selected columns computes (Features(need))
_COLUMN = ([("band_mean", b) for b in range(N_MELS)] + [("band_std", b) for b in range(N_MELS)] +
           [("band_min", b) for b in range(N_MELS)] + [(n, 0) for n in SCALARS[:17]] +
           [("spikes", i) for i in range(4)] + [("floors", i) for i in range(3)] + [("repeats", i) for i in range(4)] +
           [("tuning", i) for i in range(2)])
N_BASE = len(_COLUMN)  # the columns every reading of the tempo shares
# the tempo features (TEMPO) in groups: (part, first column within TEMPO, columns)
_OCTAVE_GROUPS = [("tempo", 0, len(GRID) + 3), ("own_grid", len(GRID) + 3, len(GRID)), ("length", 2 * len(GRID) + 3, len(LENGTH))]


def _take(t, cols):
    """Columns cols of t ([B] for a part of one column: then [B, 1]), a slice when they run."""
    if t.dim() == 1:
        return t[:, None]
    if cols == list(range(cols[0], cols[0] + len(cols))):
        return t[:, cols[0]:cols[0] + len(cols)]
    return t[:, cols]


def median_spikes(x, peak):
    """Clicks: the residual of the signal against its running median of MEDIAN samples (a
    spike of 1-3 samples is not in the median; a drum's attack, a step, is). Two measures,
    each as its two largest frames of SPIKE_FRAME samples (a normal loop has at most an odd
    one, a clicked loop several), log ratios: the frame's largest residual against the rest of
    the frame's residual, and (loc_spike) each residual sample against the residual's RMS over
    the LOCAL samples either side of it, leaving out the GAP nearest, so a click inside a
    hi-hat's burst stands out from the burst around it. Both floored at SPIKE_FLOOR of the
    peak, so a near-silent frame's tiny wiggle is no click."""
    n = x.shape[1] - MEDIAN + 1
    h = MEDIAN // 2
    v = [x[:, i:i + n] for i in range(MEDIAN)]
    for i, j in SORT7:  # elementwise min / max: cheaper than a sort or TopK per sample
        v[i], v[j] = torch.minimum(v[i], v[j]), torch.maximum(v[i], v[j])
    r = x[:, h:h + n] - v[h]
    nf = n // SPIKE_FRAME
    floor = SPIKE_FLOOR * peak[:, None]
    rf = r[:, :nf * SPIKE_FRAME].reshape(x.shape[0], nf, SPIKE_FRAME)
    pk = rf.abs().amax(2)
    rest = torch.sqrt(F.relu((rf * rf).sum(2) - pk * pk) / (SPIKE_FRAME - 1))
    top = torch.topk(torch.log(pk / (rest + floor) + 1e-6), 2, dim=1).values
    k = torch.ones(1, 1, 2 * LOCAL + 1)
    k[0, 0, LOCAL - GAP:LOCAL + GAP + 1] = 0
    loc = torch.sqrt(F.conv1d((r * r).unsqueeze(1), k / k.sum(), padding=LOCAL)[:, 0] + 1e-12)
    lr = (r.abs() / (loc + floor))[:, :nf * SPIKE_FRAME].reshape(x.shape[0], nf, SPIKE_FRAME).amax(2)
    top_loc = torch.topk(torch.log(lr + 1e-6), 2, dim=1).values
    return torch.cat([top, top_loc], 1)


def floors(x):
    """Added noise: the quietest frames of SPIKE_FRAME samples against the clip's level (the
    lowest and the 5th percentile), and how much of the quietest tenth's energy is in the
    first difference (white noise's is twice its energy; a decaying tone's far less)."""
    nf = x.shape[1] // SPIKE_FRAME
    xf = x[:, :nf * SPIKE_FRAME].reshape(x.shape[0], nf, SPIKE_FRAME)
    e = torch.log((xf * xf).mean(2) + 1e-10)
    d = xf[:, :, 1:] - xf[:, :, :-1]
    hf = torch.log((d * d).mean(2) + 1e-10) - e
    level = torch.log((x * x).mean(1) + 1e-10)
    low = torch.topk(e, nf // 10, dim=1, largest=False)
    k5 = nf // 20 + 1
    return torch.stack([low.values[:, 0] - level, low.values[:, k5 - 1] - level,
                        torch.gather(hf, 1, low.indices).mean(1)], 1)


def _lagged(a, lags):
    """a [..., T] -> (a at t, a at t + lag for every lag [..., L, T], validity mask [L, T])."""
    t = a.shape[-1]
    i = torch.arange(t)[None, :] + torch.tensor(lags)[:, None]
    return a[..., None, :], a[..., torch.clamp(i, max=t - 1)], (i < t).float()


def _peak(ac, lo, hi):
    """The lag of the largest value of ac (index = lag - 1) in [lo, hi), refined by a parabola
    through its neighbours, and that value."""
    k = torch.argmax(ac[:, lo - 1:hi - 1], 1, keepdim=True) + (lo - 1)
    y0, y1, y2 = torch.gather(ac, 1, k - 1), torch.gather(ac, 1, k), torch.gather(ac, 1, k + 1)
    den = y0 - 2 * y1 + y2
    off = torch.where(den.abs() > 1e-9, 0.5 * (y0 - y2) / torch.where(den.abs() > 1e-9, den, torch.ones_like(den)),
                      torch.zeros_like(den))
    return (k + 1).float()[:, 0] + off[:, 0].clamp(-0.5, 0.5), y1[:, 0]


def lag_diffs(lm):
    """[B, lags]: the mean log-mel change between frames lag apart, for lags in EXACT_LAGS.
    One slice per lag: cheaper in ONNX Runtime than gathering all lags at once (a [B, 64,
    lags, frames] tensor). In an exported graph it is one node (_LagDiffs) that
    loop_lag_diffs writes as an ONNX Loop over the lags doing the same: written out, its 146
    lags were half the graph's nodes, and ONNX Runtime's memory planner takes time that grows
    with the square of the nodes to open a graph (1.8 s of CPU for 4,800 nodes)."""
    if torch.onnx.is_in_onnx_export():
        return _LagDiffs.apply(lm)
    return _lag_slices(lm)


def _lag_slices(lm):
    """lag_diffs written out: one slice per lag."""
    t = lm.shape[2]
    return torch.stack([(lm[:, :, lag:] - lm[:, :, :t - lag]).abs().mean(dim=(1, 2)) for lag in range(*EXACT_LAGS)], 1)


class _LagDiffs(torch.autograd.Function):
    """lag_diffs while a graph is exported: one node loopmatch::LagDiffs (lo, hi: EXACT_LAGS),
    which loop_lag_diffs replaces by standard ONNX before the graph is used."""

    @staticmethod
    def forward(ctx, lm):
        return _lag_slices(lm)

    @staticmethod
    def symbolic(g, lm):
        out = g.op("loopmatch::LagDiffs", lm, lo_i=EXACT_LAGS[0], hi_i=EXACT_LAGS[1])
        out.setType(lm.type().with_sizes([None, EXACT_LAGS[1] - EXACT_LAGS[0]]))
        return out


LAG_DOMAIN = "loopmatch"


def loop_lag_diffs(model):
    """An exported graph (onnx.ModelProto) with every loopmatch::LagDiffs node written as an
    ONNX Loop over its lags (the body: the two slices, their difference's absolute value and
    its mean over bands and frames, lag_diffs's own steps in its own order), then the
    transpose to [B, lags]; the custom domain dropped. The graph is changed in place and
    returned."""
    from onnx import TensorProto, helper, numpy_helper

    def const(name, v, dtype=np.int64):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, dtype), name))
    nodes = []
    for k, n in enumerate(model.graph.node):
        if n.domain != LAG_DOMAIN:
            nodes.append(n)
            continue
        if n.op_type != "LagDiffs":
            raise ValueError(f"loop_lag_diffs: unknown node {n.domain}::{n.op_type}")
        at = {a.name: a.i for a in n.attribute}
        lo, hi = at["lo"], at["hi"]
        lm, p = n.input[0], f"lag_diffs_{k}/"
        body = helper.make_graph([
            const(p + "lo", [lo]), const(p + "zero", [0]), const(p + "two", [2]), const(p + "end", [1 << 30]),
            helper.make_node("Unsqueeze", [p + "i", p + "zero"], [p + "i1"]),
            helper.make_node("Add", [p + "i1", p + "lo"], [p + "lag"]),
            helper.make_node("Shape", [lm], [p + "shape"]),
            helper.make_node("Gather", [p + "shape", p + "two"], [p + "t"]),
            helper.make_node("Sub", [p + "t", p + "lag"], [p + "t_lag"]),
            helper.make_node("Slice", [lm, p + "lag", p + "end", p + "two"], [p + "later"]),
            helper.make_node("Slice", [lm, p + "zero", p + "t_lag", p + "two"], [p + "earlier"]),
            helper.make_node("Sub", [p + "later", p + "earlier"], [p + "change"]),
            helper.make_node("Abs", [p + "change"], [p + "abs"]),
            helper.make_node("ReduceMean", [p + "abs"], [p + "mean"], axes=[1, 2], keepdims=0),
            helper.make_node("Identity", [p + "cond"], [p + "cond_out"]),
        ], p + "body", [helper.make_tensor_value_info(p + "i", TensorProto.INT64, []),
                        helper.make_tensor_value_info(p + "cond", TensorProto.BOOL, [])],
            [helper.make_tensor_value_info(p + "cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info(p + "mean", TensorProto.FLOAT, None)])
        nodes += [const(p + "trips", hi - lo), const(p + "true", True, np.bool_),
                  helper.make_node("Loop", [p + "trips", p + "true"], [p + "stacked"], body=body),
                  helper.make_node("Transpose", [p + "stacked"], [n.output[0]], perm=[1, 0])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    keep = [o for o in model.opset_import if o.domain != LAG_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model


def onset_ac(lm):
    """[B, L]: the normalised autocorrelation of the onset envelope (spectral flux, mean
    removed) at lags 1..L (index = lag - 1)."""
    t = lm.shape[2]
    e = F.relu(lm[:, :, 1:] - lm[:, :, :-1]).mean(1)
    e = e - e.mean(1, keepdim=True)
    a, b, m = _lagged(e, list(range(1, t - 9)))
    return (a * b * m).sum(2) / torch.sqrt((a * a * m).sum(2) * (b * b * m).sum(2) + 1e-9)


def repeats(diff, ac):
    """The seam: the window's strongest repeat (a short loop tiled repeats exactly at its
    length, a long one musically at a bar) and whether it is a whole number of beats. The
    smallest mean log-mel change between frames REPEAT_LAGS apart; the autocorrelation of the
    onset envelope (spectral flux) at its strongest repeat and its strongest beat lag, and how
    far the repeat's length in beats is from a whole number (a loop cut off the grid repeats
    at a length that is not)."""
    lo, hi = REPEAT_LAGS
    p, acp = _peak(ac, lo, hi - 1)
    beat, acb = _peak(ac, *BEAT_LAGS)
    q = p / beat
    return torch.stack([diff[:, lo - EXACT_LAGS[0]:].amin(1), acp, acb, (q - torch.round(q)).abs()], 1)


def grid(ac, bpm, octave=1.0):
    """[B, len(GRID)]: at the beat, two beats and bar of octave x bpm (bpm [B], 0 for none: then
    all 0), how far the onset envelope's autocorrelation falls short of its strongest peak
    within -20 % .. +25 % of the lag, how far that peak lies from the lag (log ratio), and the
    autocorrelation at the lag."""
    n = ac.shape[1]
    lagv = torch.arange(1, n + 1, dtype=torch.float32)[None]
    known = (bpm > 0).float()
    fpb = 60.0 / torch.clamp(bpm, min=1.0) * FPS  # frames per beat
    out = []
    for k in (1.0, 2.0, 4.0):
        lag = (k * fpb / octave)[:, None]
        inside = ((lag >= 2) & (lag <= n - 1)).float()[:, 0]
        at = (ac * F.relu(1 - (lagv - lag).abs())).sum(1)  # linear interpolation at the lag
        near = (lagv >= 0.8 * lag) & (lagv <= 1.25 * lag) & (lagv >= 2)
        mx, arg = torch.where(near, ac, torch.full_like(ac, -2.0)).max(1)
        off = torch.log((arg.float() + 1) / lag[:, 0]).abs()
        g = known * inside
        out += [g * (mx - at), g * off, g * at]
    return torch.stack(out, 1)


def exact_repeat(diff):
    """The window's exact repeat: (its lag in frames, the lag of diff's smallest value, and how
    exact it is, the log of that value against diff's median; below TILED for a tiled loop)."""
    dmin, k = diff.min(1)
    med = torch.topk(diff, diff.shape[1] // 2, 1).values[:, -1]
    return k.float() + EXACT_LAGS[0], torch.log(dmin + 1e-3) - torch.log(med + 1e-3)


def own_tempo(diff):
    """[B]: the tempo a tiled window's own repeat implies (0 for a window that is no tiled
    loop): its length, refined by a parabola through diff's neighbours of the smallest value,
    as the fewest whole 4/4 bars that give at least OWN_BPM (the octave is read as the declared
    tempo's is, at half and double too). A loop is a whole number of bars, so a clean tiled
    loop's own beat falls on its envelope's beat; a loop cut off the grid has a length whose
    bars do not divide into its beats."""
    _, exact = exact_repeat(diff)
    k = torch.clamp(torch.argmin(diff, 1, keepdim=True), 1, diff.shape[1] - 2)
    y0, y1, y2 = torch.gather(diff, 1, k - 1), torch.gather(diff, 1, k), torch.gather(diff, 1, k + 1)
    den = y0 - 2 * y1 + y2
    off = torch.where(den.abs() > 1e-9, 0.5 * (y0 - y2) / torch.where(den.abs() > 1e-9, den, torch.ones_like(den)),
                      torch.zeros_like(den)).clamp(-0.5, 0.5)
    sec = (k.float() + EXACT_LAGS[0] + off)[:, 0] / FPS
    bars = torch.clamp(torch.ceil(OWN_BPM * sec / 240.0 - 1e-6), min=1.0)
    return (exact < TILED).float() * 240.0 * bars / sec


def tempo(diff, ac, bpm, octave=1.0):
    """What the declared tempo says of the audio (the declared part of TEMPO; bpm [B], 0 when
    the loop has none: then every value but repeat_exact is 0). A loop played at another speed
    than its declared tempo (a varispeed, a wrong sample rate) has its beat's and bar's
    autocorrelation peaks off the declared lags (grid); a loop cut off the grid repeats after a
    length that is not a whole number of declared beats. octave: the beat's and bar's lags are
    read at octave x the declared tempo (the model also hears half and double time: a name
    that says 87 for a loop at 174 is no error); the repeat is always counted in declared beats
    (a loop of whole bars is a whole number of them at half and double time too)."""
    known = (bpm > 0).float()
    fpb = 60.0 / torch.clamp(bpm, min=1.0) * FPS  # frames per declared beat
    lag, exact = exact_repeat(diff)
    beats = lag / fpb
    frac = (beats - torch.round(beats)).abs()
    return torch.cat([grid(ac, bpm, octave), torch.stack([known * frac, exact, known * frac * (exact < TILED).float()], 1)], 1)


def length_fit(dur, bpm):
    """[B, 2]: len_off, how many milliseconds the loop's length (dur [B], seconds; 0 when
    unknown: then 0) lies beyond LEN_TOL_MS from the nearest length of LEN_BEATS beats at a
    whole-number tempo within LEN_BPM (0 when no such reading exists, a loop under 0.3 s or
    over 64 s); len_beat_off, the same against whole half beats of the declared tempo (bpm
    [B], 0 for none: then 0; half beats, so a name that says 87 for a loop at 174 fits)."""
    d = torch.clamp(dur, min=1e-3)
    inf = torch.full_like(d, 1e9)
    best = inf
    for k in LEN_BEATS:
        t = 60.0 * k / d
        for ti in (torch.floor(t), torch.ceil(t)):
            ok = (ti >= LEN_BPM[0]) & (ti <= LEN_BPM[1])
            e = (d - 60.0 * k / torch.clamp(ti, min=1.0)).abs() * 1000.0
            best = torch.where(ok, torch.minimum(best, e), best)
    off = torch.where((dur > 0) & (best < inf), F.relu(best - LEN_TOL_MS), torch.zeros_like(d))
    u = 30.0 / torch.clamp(bpm, min=1.0)  # half a declared beat, seconds
    beat_off = F.relu((d - torch.round(d / u) * u).abs() * 1000.0 - LEN_TOL_MS)
    beat_off = torch.where((dur > 0) & (bpm > 0), beat_off, torch.zeros_like(d))
    return torch.stack([off, beat_off], 1)


def no_tempo(z):
    """z (pooled or not; the tempo features last) as the graph computes it for the same loop
    without a declared tempo: every tempo feature but TEMPO_FREE 0."""
    y = np.array(z, np.float32, copy=True)
    base = z.shape[-1] - len(TEMPO)
    y[..., [base + i for i in range(len(TEMPO)) if i not in TEMPO_FREE]] = 0.0
    return y


def embed(wins, bpms, fe, batch=64, durs=None):
    """Embeddings of windows at their declared tempi (bpms, one per window) and their loops'
    lengths (durs, seconds, one per window; None: unknown)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(wins), batch):
            d = None if durs is None else torch.tensor(durs[i:i + batch], dtype=torch.float32)
            out.append(fe(torch.from_numpy(np.stack(wins[i:i + batch])),
                          torch.tensor(bpms[i:i + batch], dtype=torch.float32), d).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(OCTAVES), N_FEATURES), np.float32)


# --- Deep SVDD -------------------------------------------------------------------------

def _lin(i, o):
    return nn.Linear(i, o, bias=False)  # no biases: Deep SVDD's guard against a constant map


class PlainNet(nn.Module):
    def __init__(self, d=N_FEATURES, rep=32):
        super().__init__()
        self.net = nn.Sequential(_lin(d, 128), nn.LeakyReLU(0.1), _lin(128, 64), nn.LeakyReLU(0.1), _lin(64, rep))

    def forward(self, x):
        return self.net(x)


class ResBlock(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.a, self.b = _lin(h, h), _lin(h, h)

    def forward(self, x):
        return x + self.b(F.leaky_relu(self.a(F.leaky_relu(x, 0.1)), 0.1))


class ResidualNet(nn.Module):
    def __init__(self, d=N_FEATURES, h=128, rep=32):
        super().__init__()
        self.inp, self.blocks, self.out = _lin(d, h), nn.Sequential(ResBlock(h), ResBlock(h)), _lin(h, rep)

    def forward(self, x):
        return self.out(F.leaky_relu(self.blocks(self.inp(x)), 0.1))


def pooling(group):
    """[N_FEATURES, d]: the per-band statistics averaged over groups of `group` adjacent mel
    bands, the scalars as they are. With 64 bands of three statistics each, the bands outweigh
    the handful of scalars that see clicks, noise and the seam; the group size is chosen per
    instrument on the validation split (POOLS)."""
    nb = 3 * N_MELS
    p = np.zeros((N_FEATURES, nb // group + N_FEATURES - nb), np.float32)
    for i in range(nb):
        p[i, i // group] = 1.0 / group
    for j in range(N_FEATURES - nb):
        p[nb + j, nb // group + j] = 1.0
    return p


POOLS = [4, 8, 16]


def feature_names(group):
    """Names of pooling(group)'s columns: mean / spread / floor of mel bands a-b, then the
    scalars and the tempo features."""
    out = []
    for g in range(3 * N_MELS // group):
        lo = g * group
        out.append(f"{('mean', 'spread', 'floor')[lo // N_MELS]}_{lo % N_MELS}-{lo % N_MELS + group - 1}")
    return out + SCALARS + TEMPO


# Which of the pooled features the models read, chosen on the validation split (select):
# greedy forward selection by the mean AUROC over the damage kinds, both conditions, of a
# proxy needing no training (a window's SELECT_TOP largest feature tails summed; a loop's
# score the highest of its windows'), up to SELECT_MAX features, while a feature adds at
# least SELECT_GAIN. With every feature each loop has some tails far out by chance (a few
# dozen values), and the one that hears a damage is drowned; the few that carry most are kept.
SELECT_TOP, SELECT_MAX, SELECT_GAIN = 3, 24, 1e-4


QUANTILES = 1024  # order statistics of the training values kept per feature
# values this close (relative) to a training value count as equal to it: many features have a
# point mass (no clipped samples: log(1e-5) exactly), and a value one rounding away from it
# (ONNX Runtime's vectorised log for a batch, its scalar one for a single row) must not fall
# off either side of the whole mass
TIE_TOL = 1e-5
TAIL_K = 10  # the outermost order statistics whose spacing scales the tail beyond the training range
TAIL_FLOOR = 1e-3  # that scale's floor, relative to the value (a point mass at the edge has no spacing)
TAIL_MAX = 1000.0  # the most a value beyond the range adds (standardised and clamped after)


class Tails(nn.Module):
    """[B, d] -> [B, d]: each value's two-sided tail in its feature's training distribution,
    -log((min(#ref <= v, #ref >= v) + 1) / (Q + 1)) over Q order statistics of the training
    values (ref [Q, d]; within TIE_TOL counts as equal). A value far outside what normal loops have scores high in its own
    feature whatever the scale and skew of the others, so one feature that sees a click or a
    wrong tempo is not drowned by the many that do not. Beyond the training range the tail
    grows on, by the distance in units of the outermost order statistics' spacing."""

    def __init__(self, ref):
        super().__init__()
        ref = np.asarray(ref, np.float32)
        self.register_buffer("ref", torch.tensor(ref))
        # beyond the training range the tail keeps growing, as an exponential tail whose scale
        # is the spacing of the outermost order statistics (a loop driven 24 dB into clipping
        # is more unusual than one just past the most clipped training loop)
        k = TAIL_K
        floor = TAIL_FLOOR * (1 + np.abs(ref))
        self.register_buffer("hi_scale", torch.tensor(np.maximum((ref[-1] - ref[-k]) / np.log(k), floor[-1]), dtype=torch.float32))
        self.register_buffer("lo_scale", torch.tensor(np.maximum((ref[k - 1] - ref[0]) / np.log(k), floor[0]), dtype=torch.float32))

    def forward(self, z):
        r, v = self.ref[None], z[:, None]
        tol = TIE_TOL * (1 + v.abs())
        lo = (r <= v + tol).float().sum(1)
        hi = (r >= v - tol).float().sum(1)
        t = -torch.log((torch.minimum(lo, hi) + 1) / (self.ref.shape[0] + 1))
        tol = tol[:, 0]
        beyond = F.relu(z - self.ref[-1] - tol) / self.hi_scale + F.relu(self.ref[0] - z - tol) / self.lo_scale
        return t + torch.clamp(beyond, max=TAIL_MAX)


def reference(x, q=QUANTILES):
    """q evenly spaced order statistics of each column of x (the training values)."""
    s = np.sort(np.asarray(x, np.float32), 0)
    return s[np.round(np.linspace(0, len(s) - 1, q)).astype(np.int64)]


def apply_tails(tails, x, batch=256):
    with torch.no_grad():
        return np.concatenate([tails(torch.from_numpy(np.ascontiguousarray(x[i:i + batch], np.float32))).numpy()
                               for i in range(0, len(x), batch)]) if len(x) else np.zeros_like(x)


class _TailedGraph(nn.Module):
    """What both shipped kinds of model share: (audio [B, N], bpm [B, 1]: the declared tempo, 0
    for none) -> the embedding of each tempo reading, pooled (pool) and through its training
    tails (Tails(ref)); score [B]: raw(tails) of the reading that fits best (the lowest), over
    the training 95th percentile of its condition (with a declared tempo or without), so one
    threshold serves both."""

    def __init__(self, pool, ref, scale_tempo, scale_none):
        super().__init__()
        pool = np.asarray(pool, np.float32)
        need = np.flatnonzero(np.any(pool != 0, 1))  # the embedding's columns the pooled features read
        self.fe = Features(need)
        self.tails = Tails(ref)
        self.register_buffer("pool", torch.tensor(pool[need], dtype=torch.float32))
        self.register_buffer("scale_tempo", torch.tensor(scale_tempo, dtype=torch.float32))
        self.register_buffer("scale_none", torch.tensor(scale_none, dtype=torch.float32))

    def raw(self, t):
        raise NotImplementedError

    def forward(self, audio, bpm, duration):
        b = bpm[:, 0]
        f = torch.matmul(self.fe(audio, b, duration[:, 0]), self.pool)  # [B, octaves, d]
        n, o, d = f.shape
        raw = self.raw(self.tails(f.reshape(n * o, d))).reshape(n, o).amin(1)  # the tempo reading that fits best
        return raw / torch.where(b > 0, self.scale_tempo, self.scale_none)


class AnomalyGraph(_TailedGraph):
    """Deep SVDD as a graph: (audio [B, N], bpm [B, 1]: the declared tempo, 0 for none) ->
    score [B]: the squared distance to the centre (the smallest over the tempo's readings,
    OCTAVES) over the 95th percentile of the training loops' distances with (or without) a
    declared tempo, so one threshold serves both."""

    def __init__(self, net, mu, sd, c, pool, ref, scale_tempo, scale_none):
        super().__init__(pool, ref, scale_tempo, scale_none)
        self.net = net
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
        self.register_buffer("c", torch.tensor(c, dtype=torch.float32))

    def raw(self, t):
        z = torch.clamp((t - self.mu) / self.sd, -CLAMP, CLAMP)
        return ((self.net(z) - self.c) ** 2).sum(1)


class TailsGraph(_TailedGraph):
    """The largest-tails score as a graph, with AnomalyGraph's inputs and output: the sum of a
    window's SELECT_TOP largest feature tails over the selected features (pool holds only
    their columns, ref their order statistics), the lowest over the tempo's readings, over its
    condition's training 95th percentile. No training beyond the tails themselves (as ECOD)."""

    def __init__(self, pool, ref, scale_tempo, scale_none, k=SELECT_TOP):
        super().__init__(pool, ref, scale_tempo, scale_none)
        self.k = k

    def raw(self, t):
        return torch.topk(t, self.k, dim=1).values.sum(1)


def tails_scores(prep, sel, k=SELECT_TOP):
    """The largest-tails score of standardised windows [n, d] (prep's), over columns sel."""
    mu, sd = prep["mu"][sel], prep["sd"][sel]
    k = min(k, len(sel))
    return lambda q: np.sort(q[:, sel] * sd + mu, 1)[:, -k:].sum(1)


def standardiser(x):
    mu = x.mean(0)
    sd = x.std(0) + 1e-3
    return mu.astype(np.float32), sd.astype(np.float32)


def _std(x, mu, sd):
    """Standardised, not clamped: the largest tails read the tails back from it exactly (as
    TailsGraph reads them), and a feature whose training values are one point mass (sd near
    its floor) would lose all but CLAMP * sd of a damaged loop's tail. The learned methods
    clamp their own input (_clamp), as AnomalyGraph does."""
    return ((x - mu) / sd).astype(np.float32)


def _clamp(z):
    """The learned methods' input (Deep SVDD, Isolation Forest, PCA): the standardised values
    within +-CLAMP, as AnomalyGraph clamps them."""
    return np.clip(z, -CLAMP, CLAMP).astype(np.float32)


def svdd_scores(net, c, z):
    with torch.no_grad():
        return ((net(torch.from_numpy(_clamp(z))) - torch.from_numpy(c)) ** 2).sum(1).numpy()


def train_svdd(variant, z, val_eval, seed=SEED, ae_epochs=40, epochs=60, log=log):
    """Deep SVDD on standardised train embeddings z. val_eval(scores_fn) -> mean val AUROC
    picks the checkpoint (every 5 epochs). Returns net, centre, history."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = z.shape[1]
    net = PlainNet(d) if variant == "plain" else ResidualNet(d)
    xt = torch.from_numpy(z)
    bs = 128
    if variant == "plain":  # autoencoder pretraining: the mirror decoder is thrown away after
        dec = nn.Sequential(_lin(32, 64), nn.LeakyReLU(0.1), _lin(64, 128), nn.LeakyReLU(0.1), _lin(128, d))
        opt = torch.optim.Adam(list(net.parameters()) + list(dec.parameters()), lr=1e-3, weight_decay=1e-6)
        for ep in range(ae_epochs):
            perm = rng.permutation(len(z))
            for k in range(0, len(z), bs):
                b = xt[perm[k:k + bs]]
                loss = F.mse_loss(dec(net(b)), b)
                opt.zero_grad()
                loss.backward()
                opt.step()
        log(f"anomaly: {variant} autoencoder pretrained, loss {float(loss):.4f}")
    with torch.no_grad():
        c = net(xt).mean(0).numpy()
    c[(np.abs(c) < 0.01) & (c < 0)] = -0.01
    c[(np.abs(c) < 0.01) & (c >= 0)] = 0.01
    ct = torch.from_numpy(c)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-6)
    best, best_state, history = -1.0, None, []
    for ep in range(1, epochs + 1):
        perm = rng.permutation(len(z))
        tot, nb = 0.0, 0
        for k in range(0, len(z), bs):
            b = xt[perm[k:k + bs]]
            loss = ((net(b) - ct) ** 2).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot, nb = tot + float(loss), nb + 1
        if ep % 5 == 0:
            auc = val_eval(lambda q: svdd_scores(net, c, q))
            history.append({"epoch": ep, "loss": round(tot / nb, 5), "val_mean_auroc": round(auc, 4)})
            if auc > best:
                best, best_state = auc, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    log(f"anomaly: {variant} best val mean AUROC {best:.4f}")
    return net.eval(), c, history


# --- baselines -------------------------------------------------------------------------

def _c(n):
    """Average path length of an unsuccessful BST search among n points (Liu et al.)."""
    n = np.asarray(n, np.float64)
    return np.where(n > 2, 2 * (np.log(np.maximum(n - 1, 1)) + 0.5772156649) - 2 * (n - 1) / np.maximum(n, 1),
                    np.where(n == 2, 1.0, 0.0))


class IsolationForest:
    """Isolation Forest (Liu, Ting & Zhou 2008): trees of random axis splits on subsamples;
    the score is 2^(-E[path length] / c(psi)), higher is more anomalous."""

    def __init__(self, trees=100, psi=256, seed=SEED):
        self.trees, self.psi, self.seed = trees, psi, seed

    def fit(self, x):
        rng = np.random.default_rng(self.seed)
        self.psi_ = min(self.psi, len(x))
        limit = int(np.ceil(np.log2(self.psi_)))
        self.forest = []
        for _ in range(self.trees):
            nodes = []  # (feature, split, left, right, size)

            def grow(s, depth):
                i = len(nodes)
                nodes.append(None)
                lo, hi = s.min(0), s.max(0)
                ok = np.flatnonzero(hi > lo)
                if depth >= limit or len(s) <= 1 or len(ok) == 0:
                    nodes[i] = (-1, 0.0, -1, -1, len(s))
                    return i
                f = int(rng.choice(ok))
                t = float(rng.uniform(lo[f], hi[f]))
                m = s[:, f] < t
                left = grow(s[m], depth + 1)
                right = grow(s[~m], depth + 1)
                nodes[i] = (f, t, left, right, len(s))
                return i
            grow(x[rng.choice(len(x), self.psi_, replace=False)], 0)
            self.forest.append(np.array(nodes, dtype=np.float64))
        return self

    def score(self, x):
        h = np.zeros(len(x))
        for t in self.forest:
            node = np.zeros(len(x), np.int64)
            depth = np.zeros(len(x))
            for _ in range(64):
                f = t[node, 0].astype(np.int64)
                leaf = f < 0
                if leaf.all():
                    break
                go_left = x[np.arange(len(x)), np.maximum(f, 0)] < t[node, 1]
                nxt = np.where(go_left, t[node, 2], t[node, 3]).astype(np.int64)
                node = np.where(leaf, node, nxt)
                depth += ~leaf
            h += depth + _c(t[node, 4])
        return 2.0 ** (-(h / len(self.forest)) / _c(self.psi_))


class PCARecon:
    """Squared reconstruction error from the principal components that hold `var` of the
    train variance."""

    def __init__(self, var=0.9):
        self.var = var

    def fit(self, x):
        self.mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        frac = np.cumsum(s ** 2) / np.sum(s ** 2)
        self.k = int(np.searchsorted(frac, self.var) + 1)
        self.v = vt[:self.k].T
        return self

    def score(self, x):
        d = x - self.mean
        r = d - (d @ self.v) @ self.v.T
        return (r * r).sum(1)


# --- evaluation ------------------------------------------------------------------------

def auroc(neg, pos):
    """P(score of a damaged loop > score of a clean one), ties counting half."""
    s = np.concatenate([neg, pos])
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):  # average ranks of ties
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rp = ranks[len(neg):].sum()
    return float((rp - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def threshold(train_scores):
    """The 95th percentile of the training loops' scores (and nothing else)."""
    return float(np.percentile(np.asarray(train_scores, np.float64), PERCENTILE))


def at_threshold(neg, pos, t):
    tp, fp = int((pos > t).sum()), int((neg > t).sum())
    return {"precision": round(tp / (tp + fp), 4) if tp + fp else None, "recall": round(tp / len(pos), 4),
            "clean_flagged": round(fp / len(neg), 4)}


def evaluate(score_fn, sets, t):
    """sets: {"clean": z, kind: z}; per kind AUROC and precision / recall at threshold t
    (clean and damaged loops one to one)."""
    neg = score_fn(sets["clean"])
    out = {}
    for kind in D.KINDS:
        pos = score_fn(sets[kind])
        out[kind] = {"auroc": round(auroc(neg, pos), 4), **at_threshold(neg, pos, t)}
    out["mean_auroc"] = round(float(np.mean([out[k]["auroc"] for k in D.KINDS])), 4)
    out["clean_flagged"] = round(float((neg > t).mean()), 4)
    return out


# --- data ------------------------------------------------------------------------------

def _load(corpus_dir, rel):
    return load_mono(os.path.join(corpus_dir, rel))


def damaged_windows(rows, idx_by_inst, corpus_dir, split, inst, seed=SEED):
    """Clean loops of split's inst and each kind's damaged loops, one per loop, each as its
    windows (loop_windows at the loop's declared tempo)."""
    mine = idx_by_inst[(split, inst)]
    others = idx_by_inst[(split, "bass" if inst == "drum" else "drum")]
    out = {k: [] for k in ["clean"] + D.KINDS}
    durs = {k: [] for k in out}
    for n, i in enumerate(mine):
        r = rows[i]
        x = _load(corpus_dir, r["path"])
        out["clean"].append(loop_windows(x, r["bpm"]))
        durs["clean"].append(len(x) / SR)
        for kk, kind in enumerate(D.KINDS):
            rng = np.random.default_rng([seed, kk, n, 7 if split == "val" else 11 if split == "test" else 13])
            other = _load(corpus_dir, rows[int(rng.choice(others))]["path"]) if kind == "wrong_instrument" else None
            y = D.apply(kind, x, rng, n_window=N, bpm=r["bpm"], sr=SR, other=other)
            out[kind].append(loop_windows(y, r["bpm"]))
            durs[kind].append(len(y) / SR)
    return out, durs


def embed_loops(loops, bpms, fe, durs):
    """loops: per loop its windows, bpms and durs (seconds) one per loop; -> (embeddings of
    all windows end to end, windows per loop)."""
    counts = np.array([len(w) for w in loops], np.int64)
    flat = [w for ws in loops for w in ws]
    return embed(flat, list(np.repeat(np.asarray(bpms, np.float32), counts)), fe,
                 durs=list(np.repeat(np.asarray(durs, np.float32), counts))), counts


def dataset(work_dir, corpus_dir, log=log):
    """Embeddings of every window per (split, instrument, set) at each loop's declared tempo
    (its name's, as a library's file names carry it: a damaged loop keeps the name of the
    loop it was), and (split, instrument, set + "#n") the windows per loop; cached in
    WORK/embeddings.npz."""
    d = work_dir
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "embeddings.npz")
    rows = C.read_meta(corpus_dir)
    idx = {}
    for i, r in enumerate(rows):
        idx.setdefault((r["split"], r["instrument"]), []).append(i)
    if os.path.exists(path):
        z = np.load(path)
        data = {tuple(k.split("/")): z[k] for k in z.files}

        def fits(s, i):  # this embedding of this corpus's loops, every window (a stale cache is rebuilt)
            e, n = data.get((s, i, "clean")), data.get((s, i, "clean#n"))
            return (e is not None and n is not None and len(n) == len(idx[(s, i)]) and int(n.sum()) == len(e)
                    and e.shape[1:] == (len(OCTAVES), N_FEATURES))
        if all(fits(s, i) for s in ("train", "val", "test", "transfer") for i in INSTRUMENTS):
            return data, rows, idx
        log("anomaly: cached embeddings do not match the corpus or the embedding: recomputing")
    fe = Features().eval()
    data = {}
    for inst in INSTRUMENTS:
        t = time.time()
        tr = idx[("train", inst)]
        wins, durs = [], []
        for i in tr:
            x = _load(corpus_dir, rows[i]["path"])
            wins.append(loop_windows(x, rows[i]["bpm"]))
            durs.append(len(x) / SR)
        e, n = embed_loops(wins, [rows[i]["bpm"] for i in tr], fe, durs)
        del wins
        data[("train", inst, "clean")], data[("train", inst, "clean#n")] = e, n
        log(f"anomaly: train {inst}: {len(tr)} loops, {len(e)} windows ({time.time() - t:.0f} s)")
        for split in ("val", "test", "transfer"):
            t = time.time()
            bpms = [rows[i]["bpm"] for i in idx[(split, inst)]]
            wins, durs = damaged_windows(rows, idx, corpus_dir, split, inst)
            for k, w in wins.items():
                data[(split, inst, k)], data[(split, inst, k + "#n")] = embed_loops(w, bpms, fe, durs[k])
            log(f"anomaly: {split} {inst}: {len(idx[(split, inst)])} loops x {1 + len(D.KINDS)} ({time.time() - t:.0f} s)")
    np.savez(path, **{"/".join(k): v for k, v in data.items()})
    return data, rows, idx


# --- build -----------------------------------------------------------------------------

CONDITIONS = ["tempo", "no_tempo"]  # loops with a declared tempo, and the same loops without one


def key(split, cond):
    """results key: the split for loops with a declared tempo, SPLIT_no_tempo without."""
    return split if cond == "tempo" else f"{split}_no_tempo"


def train_windows(data, inst, pool):
    """The train split's windows pooled [2 x windows, octaves, d]: with their declared tempo,
    then again without one."""
    trd = data[("train", inst, "clean")] @ pool  # [windows, octaves, d]
    return np.concatenate([trd, no_tempo(trd)])


def tails_graph(pool, ref, sel, scale):
    """The shipped largest-tails graph over the selected columns sel of pool (the embedding ->
    the pooled features) and of ref (their training order statistics), scale: each
    condition's training 95th percentile."""
    return TailsGraph(np.ascontiguousarray(pool[:, sel]), ref[:, sel], scale["tempo"], scale["no_tempo"])


def export_only(out_dir, bundle_dir, work_dir=None, log=log):
    """The shipped largest-tails models again, from the work dir's results.json and cached
    embeddings, with no selection and no training: how a change to the graphs' form (not to
    what they compute: their scores are checked against the bundle's own) reaches a bundle."""
    work_dir = work_dir or os.path.join(out_dir, "anomaly")
    torch.set_num_threads(1)
    corpus_dir = os.path.join(out_dir, "corpus")
    with open(os.path.join(work_dir, "results.json")) as f:
        info = json.load(f)
    data, _, _ = dataset(work_dir, corpus_dir, log)
    shipped = {}
    for inst in INSTRUMENTS:
        res = info["instruments"][inst]
        if res["shipped"] != "tails":
            raise SystemExit(f"anomaly: {inst} ships {res['shipped']}, whose trained net results.json does not hold: "
                             "run the full build (without --export-only)")
        group = res["tails_pool"]
        names = feature_names(group)
        sel = [names.index(n) for n in res["tails_features"]]
        pool = pooling(group)
        ref = reference(train_windows(data, inst, pool)[:, 0])
        shipped[inst] = (tails_graph(pool, ref, sel, res["methods"]["tails"]["scale"]).eval(),
                         res["methods"]["tails"]["threshold"], res["windows"])
    add_to_bundle(bundle_dir, shipped, info, corpus_dir, log)
    return info


def preparer(data, inst, group):
    """The model's input for one band pooling: every window of the train split's loops with
    their declared tempo and again without one (so a loop without a tempo is as normal as one
    with), each feature through its training tails (Tails), standardised; the held-out splits'
    sets likewise, per condition, each as (windows [n, octaves, d], windows per loop)."""
    pool = pooling(group)
    tr3 = train_windows(data, inst, pool)
    cnt = data[("train", inst, "clean#n")]
    tr = tr3[:, 0]  # the models learn the declared reading
    ref = reference(tr)
    tails = Tails(ref)
    t = apply_tails(tails, tr)
    mu, sd = standardiser(t)

    def prep(x):  # [n, octaves, d] -> the same, through the tails, standardised
        return _std(apply_tails(tails, x.reshape(-1, x.shape[-1])), mu, sd).reshape(x.shape[:-1] + (-1,))

    def held(split, k, cond):
        x = data[(split, inst, k)] @ pool
        return prep(x if cond == "tempo" else no_tempo(x)), data[(split, inst, k + "#n")]
    sets = {split: {cond: {k: held(split, k, cond) for k in ["clean"] + D.KINDS} for cond in CONDITIONS}
            for split in ("val", "test", "transfer")}
    return {"pool": pool, "ref": ref, "mu": mu, "sd": sd, "z": _clamp(_std(t, mu, sd)),
            "z3": (prep(tr3), np.concatenate([cnt, cnt])),
            "known": np.r_[np.ones(len(cnt), bool), np.zeros(len(cnt), bool)],  # per loop: with a declared tempo
            "sets": sets}


def lowest(fn):
    """A score of one reading [n, d] -> the score of all of them [n, octaves, d]: the lowest
    (the tempo reading that fits best)."""
    return lambda z3: np.min(np.stack([fn(np.ascontiguousarray(z3[:, o])) for o in range(z3.shape[1])], 1), 1)


def per_loop(fn, mode):
    """A score of one reading [n, d] -> a score per loop of a (windows, windows per loop) set."""
    low = lowest(fn)
    return lambda s: aggregate(low(s[0]), s[1], mode)


def val_auroc(fn, val, modes=WINDOW_MODES):
    """Mean AUROC over the damage kinds on val, over both conditions (with a declared tempo
    and without) and the window aggregations in modes."""
    out = []
    for mode in modes:
        f = per_loop(fn, mode)
        out += [auroc(f(val[cond]["clean"]), f(val[cond][k])) for cond in CONDITIONS for k in D.KINDS]
    return float(np.mean(out))


def select(prep, names, log=log):
    """Greedy forward selection of the largest-tails score's features on val (see SELECT_TOP):
    prep from preparer. Returns the chosen columns in the order chosen and the val figure
    after each."""
    val = prep["sets"]["val"]

    def proxy(sel):
        f = per_loop(tails_scores(prep, sel), "max")
        out = []
        for cond in CONDITIONS:
            clean = f(val[cond]["clean"])
            out += [auroc(clean, f(val[cond][kind])) for kind in D.KINDS]
        return float(np.mean(out))
    sel, trace, best = [], [], 0.0
    while len(sel) < min(SELECT_MAX, len(names)):
        v, j = max((proxy(sel + [j]), j) for j in range(len(names)) if j not in sel)
        if v < best + SELECT_GAIN:
            break
        sel.append(j)
        best = v
        trace.append({"feature": names[j], "val": round(v, 4)})
    log(f"anomaly: selected {len(sel)} of {len(names)} features (val {best:.4f}): {', '.join(names[j] for j in sel)}")
    return sel, trace


def build(out_dir, bundle_dir, log=log, work_dir=None):
    """work_dir (default OUT/anomaly) holds the cached embeddings and results.json."""
    work_dir = work_dir or os.path.join(out_dir, "anomaly")
    torch.set_num_threads(1)
    t0 = time.time()
    corpus_dir = os.path.join(out_dir, "corpus")
    data, rows, idx = dataset(work_dir, corpus_dir, log)
    t1 = time.time()
    info = {"seed": SEED, "percentile": PERCENTILE, "features": N_FEATURES, "scalars": SCALARS, "tempo_features": TEMPO,
            "quantiles": QUANTILES, "conditions": CONDITIONS, "front_end": {"n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS}, "damage_kinds": D.KINDS,
            "max_windows": MAX_WINDOWS, "window_modes": WINDOW_MODES,
            "select": {"top": SELECT_TOP, "max": SELECT_MAX, "gain": SELECT_GAIN}, "instruments": {}}
    shipped = {}
    for inst in INSTRUMENTS:
        res = {"train_loops": int(len(data[("train", inst, "clean#n")])), "train_windows": int(len(data[("train", inst, "clean")])),
               "pools": {}, "selected": {}}
        best, best_tails = None, None
        for group in POOLS:  # the band pooling, the Deep SVDD variant and the tails' features, chosen on val
            prep = preparer(data, inst, group)
            val = prep["sets"]["val"]

            def val_mean(fn, val=val):  # both conditions and both window aggregations
                return val_auroc(fn, val)
            for variant in ("plain", "residual"):
                net, c, hist = train_svdd(variant, prep["z"], val_mean, log=log)
                v = val_mean(lambda q: svdd_scores(net, c, q))
                res["pools"][f"{group}/svdd_{variant}"] = round(v, 4)
                log(f"anomaly: {inst} bands pooled by {group}, svdd_{variant}: val mean AUROC {v:.4f}")
                if best is None or v > best[0]:
                    best = (v, group, variant, net, c, hist, prep, val_mean)
            names = feature_names(group)
            sel, trace = select(prep, names, log)
            res["selected"][str(group)] = trace
            v = val_mean(tails_scores(prep, sel))
            res["pools"][f"{group}/tails"] = round(v, 4)
            log(f"anomaly: {inst} bands pooled by {group}, tails of {len(sel)} features: val mean AUROC {v:.4f}")
            if best_tails is None or v > best_tails[0]:
                best_tails = (v, group, sel, [names[j] for j in sel], prep)
        _, group, variant, net, c, hist, prep, val_mean = best
        _, tgroup, tsel, tnames, tprep = best_tails
        res["pool"], res["tails_pool"] = group, tgroup
        res["features"] = int(prep["pool"].shape[1])
        res["tails_features"] = tnames
        models = {}
        # the other variant at the chosen pooling, so the table compares both on one embedding
        other = "residual" if variant == "plain" else "plain"
        onet, oc, ohist = train_svdd(other, prep["z"], val_mean, log=log)
        for v, (n_, c_, h_) in ((variant, (net, c, hist)), (other, (onet, oc, ohist))):
            models["svdd_" + v] = (lambda q, net=n_, c=c_: svdd_scores(net, c, q), h_, prep)
        forest = IsolationForest().fit(prep["z"])
        models["iforest"] = (lambda q: forest.score(_clamp(q)), None, prep)
        pca = PCARecon().fit(prep["z"])
        models["pca"] = (lambda q: pca.score(_clamp(q)), None, prep)
        models["tails"] = (tails_scores(tprep, tsel), None, tprep)
        # what ships: the method (Deep SVDD, either variant, or the largest tails) and the
        # loop's score from its windows (first or max) with the highest val mean AUROC, both conditions
        res["val"] = {f"{m}/{mode}": round(val_auroc(models[m][0], models[m][2]["sets"]["val"], [mode]), 4)
                      for m in SHIPPABLE for mode in WINDOW_MODES}
        pick, mode = max(((m, mode) for m in SHIPPABLE for mode in WINDOW_MODES), key=lambda mm: res["val"][f"{mm[0]}/{mm[1]}"])
        res["shipped"], res["windows"] = pick, mode
        res["window_val"] = {m: res["val"][f"{pick}/{m}"] for m in WINDOW_MODES}
        log(f"anomaly: {inst} val mean AUROC {res['val']}: ships {pick}, windows {mode}")

        def calibrated(m, mode):
            """Method m's loop scores under window aggregation mode: each condition's over its
            own training loops' 95th percentile, then one threshold (the 95th percentile of
            all training loops' scores so scaled, about 1), and the held-out figures."""
            fn, hist_, p = models[m]
            fn = per_loop(fn, mode)
            raw = fn(p["z3"])
            scale = {cond: threshold(raw[p["known"] == (cond == "tempo")]) for cond in CONDITIONS}
            t = threshold(np.concatenate([raw[p["known"]] / scale["tempo"], raw[~p["known"]] / scale["no_tempo"]]))
            r = {"threshold": t, "scale": scale, "history": hist_}
            for split in ("val", "test", "transfer"):
                for cond in CONDITIONS:
                    r[key(split, cond)] = evaluate(lambda q, cond=cond: fn(q) / scale[cond], p["sets"][split][cond], t)
            return r
        res["methods"] = {}
        for m in METHODS:
            r = res["methods"][m] = calibrated(m, mode)
            log(f"anomaly: {inst} {m}: " + ", ".join(f"{sp} {r[key(sp, 'tempo')]['mean_auroc']:.4f} / {r[key(sp, 'no_tempo')]['mean_auroc']:.4f}"
                                                  for sp in ("val", "test", "transfer")) + " (declared tempo / none)")
        # the shipped method under the aggregation not chosen, for the card
        res["other_windows"] = {}
        for m in WINDOW_MODES:
            if m != mode:
                r = calibrated(pick, m)
                res["other_windows"][m] = {key(sp, cond): r[key(sp, cond)]["mean_auroc"] for sp in ("test", "transfer") for cond in CONDITIONS}
        res["pca_components"] = pca.k
        sc = res["methods"][pick]["scale"]
        if pick == "tails":
            g = tails_graph(tprep["pool"], tprep["ref"], tsel, sc)
        else:
            n_, c_ = (net, c) if pick == "svdd_" + variant else (onet, oc)
            g = AnomalyGraph(n_, prep["mu"], prep["sd"], c_, prep["pool"], prep["ref"], sc["tempo"], sc["no_tempo"])
        shipped[inst] = (g.eval(), res["methods"][pick]["threshold"], mode)
        info["instruments"][inst] = res
    info["durations_s"] = {"data": round(t1 - t0, 1), "train_and_evaluate": round(time.time() - t1, 1)}
    info["command"] = "python -m loopmatch_train.anomaly --out train/out --bundle models/loopmatch-v2 (make models runs it)"
    add_to_bundle(bundle_dir, shipped, info, corpus_dir, log)
    with open(os.path.join(work_dir, "results.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


CARD_BEGIN = "<!-- anomaly: written by train/loopmatch_train/anomaly.py -->"
CARD_END = "<!-- /anomaly -->"
NAMES = {"svdd_plain": "Deep SVDD (AE-pretrained)", "svdd_residual": "Deep SVDD (residual)",
         "iforest": "Isolation Forest", "pca": "PCA reconstruction", "tails": "Largest tails (selected features)"}


def table(info, split):
    """Markdown: per instrument and method, AUROC (precision at the threshold) per kind."""
    head = "| instrument | method | " + " | ".join(D.KINDS) + " | mean AUROC | clean flagged |"
    lines = [head, "|---|---|" + "---|" * (len(D.KINDS) + 2)]
    for inst in INSTRUMENTS:
        res = info["instruments"][inst]
        for m in METHODS:
            r = res["methods"][m][split]
            cells = []
            for k in D.KINDS:
                p = r[k]["precision"]
                cells.append(f"{r[k]['auroc']:.3f} ({'-' if p is None else f'{p:.2f}'})")
            star = " (shipped)" if m == res["shipped"] else ""
            lines.append(f"| {inst} | {NAMES[m]}{star} | " + " | ".join(cells) + f" | {r['mean_auroc']:.3f} | {r['clean_flagged']:.3f} |")
    return "\n".join(lines)


def verdict(info, split):
    out = []
    for inst in INSTRUMENTS:
        res = info["instruments"][inst]["methods"]
        best_svdd = max(res["svdd_plain"][split]["mean_auroc"], res["svdd_residual"][split]["mean_auroc"])
        for m in ("iforest", "pca"):
            if res[m][split]["mean_auroc"] >= best_svdd:
                out.append(f"on {inst}, {NAMES[m]} ({res[m][split]['mean_auroc']:.3f}) is not behind the better Deep SVDD ({best_svdd:.3f})")
        kinds = [k for k in D.KINDS if max(res["svdd_plain"][split][k]["auroc"], res["svdd_residual"][split][k]["auroc"])
                 < max(res["iforest"][split][k]["auroc"], res["pca"][split][k]["auroc"])]
        if kinds:
            out.append(f"on {inst}, a baseline beats both Deep SVDD variants on {', '.join(kinds)}")
    return "; ".join(out) if out else "Deep SVDD is ahead of both baselines on average for both instruments"


TARGET_AUROC = 0.90  # issue 21's acceptance: mean AUROC over the damage kinds


def target(info):
    """A plain sentence on the acceptance target, per instrument and condition, for the shipped model."""
    def shipped(inst, split):
        r = info["instruments"][inst]
        return r["methods"][r["shipped"]][split]
    out = [f"Target: a mean AUROC of at least {TARGET_AUROC:.2f} over the damage kinds."]
    for cond, what in (("tempo", "Loops with a declared tempo"), ("no_tempo", "Loops without one")):
        parts = [f"{inst} {shipped(inst, key('test', cond))['mean_auroc']:.3f} on test, "
                 f"{shipped(inst, key('transfer', cond))['mean_auroc']:.3f} on transfer" for inst in INSTRUMENTS]
        met = all(shipped(i, key(sp, cond))["mean_auroc"] >= TARGET_AUROC for i in INSTRUMENTS for sp in ("test", "transfer"))
        part = "met on both held-out splits" if met else "not met on both held-out splits"
        weak = []
        for inst in INSTRUMENTS:
            m = shipped(inst, key("test", cond))
            low = [f"{k} {m[k]['auroc']:.2f}" for k in D.KINDS if m[k]["auroc"] < 0.75]
            if low:
                weak.append(f"{inst}: {', '.join(low)}")
        hard = f" Below 0.75 on test: {'; '.join(weak)}." if weak else ""
        out.append(f"{what}: {part} ({'; '.join(parts)}).{hard}")
    out.append("Without a declared tempo a pitch/tempo warp of a corpus loop sounds like a corpus loop at another "
               "tempo, and what gives it away is its length (len_off: no whole number of beats at a whole-number "
               "tempo); a warp whose length lands within 2 ms of a whole-number tempo by chance is missed, and a loop at "
               "a tempo that is no whole number (a break sampled from a record) is flagged. The declared tempo lets the "
               "model hear warps and cut seams more surely.")
    return " ".join(out)


def shipped_text(info):
    return "; ".join(f"{inst}: {NAMES[info['instruments'][inst]['shipped']]}, val mean AUROC "
                     + ", ".join(f"{k} {v:.3f}" for k, v in info['instruments'][inst]['val'].items())
                     for inst in INSTRUMENTS)


def windows_text(info):
    """The card's sentence on how a loop's windows make its score."""
    parts = []
    for inst in INSTRUMENTS:
        r = info["instruments"][inst]
        other = "; ".join(f"{m}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["other_windows"][m].items()) for m in r["other_windows"])
        parts.append(f"{inst}: `{r['windows']}` (val mean AUROC " + ", ".join(f"{m} {v:.3f}" for m, v in r["window_val"].items())
                     + f"; the aggregation not chosen, held out: {other})")
    return ("A loop longer than the window is cut into windows as ingest cuts them (one per hop of whole bars at "
            f"its tempo, wrapping past the end, so the last holds the seam; at most {MAX_WINDOWS}); every window of "
            "the train split's loops trains the model, and the loop's score is its first window's (`first`) or the "
            "highest of its windows' (`max`), chosen per instrument on the validation split and written in the "
            "manifest's `windows`; the threshold and the scaling are set on loop scores made that way. "
            + "; ".join(parts) + ".")


def _card(specs, info):
    thr = ", ".join(f"{s['instruments'][0]} {s['threshold']:.4g} ({info['instruments'][s['instruments'][0]]['shipped']})" for s in specs)
    return f"""{CARD_BEGIN}
## Anomaly scores (`drum_anomaly.onnx`, `bass_anomaly.onnx`, role `anomaly`)

One-class models of what a normal loop of each instrument sounds like, so ingest
can store every loop's anomaly score and flag the loops above the threshold, the 95th
percentile of the training loops' scores (so about 5 % of a library like the corpus is
flagged by design). Inputs `audio` [B, {N}] (the encoders' window: a short loop tiled, so its
seam is inside), `bpm` [B, 1] (the loop's declared tempo, from its name or a manifest; 0
when it has none: a tempo estimated from the same audio would only agree with it) and
`duration` [B, 1] (the whole loop's length in seconds, every window of a loop the same; 0 when
unknown), output
`score` [B], the loop window's raw score over the 95th percentile of the training loops' raw
scores with a declared tempo (or without one, for a loop without), so one threshold serves
both. Two kinds of model share the embedding below, and the validation split chooses per
instrument which ships ({shipped_text(info)}): Deep SVDD (the squared distance of the
window's point from the centre of the training points), and the largest tails: the sum of
the {SELECT_TOP} largest feature tails (as ECOD scores) over features chosen on the validation split by
greedy forward selection (drum: {', '.join(info['instruments']['drum']['tails_features'])}; bass:
{', '.join(info['instruments']['bass']['tails_features'])}). With all {N_FEATURES} values every clean loop has some
tails far out by chance, and Deep SVDD learns to shrink exactly the directions its training
loops vary in, the same tails where damage shows; the selected few carry what hears damage; the manifest's `threshold` per model: {thr}.
{windows_text(info)} The embedding is computed inside
the graph from PCM ({N_FEATURES} values: per mel band the mean, spread and floor of the log-mel
relative to the clip's level, spectral flux, and sample-level measures of clicks, clipping,
held samples, crest factor, DC and silence; clicks as the residual against a {MEDIAN}-sample running
median, peak against the rest of its {SPIKE_FRAME}-sample frame; added noise as the floor of the
quietest frames and their high-frequency share; the seam as the window's strongest repeat, its
length in beats of the onset envelope's beat lag and how far that is from a whole number;
tuning: how far the partials below 550 Hz sit from the equal-tempered grid at A = 440 Hz (a
tonal loop played at another speed is off concert pitch) and how concentrated they are;
and what the declared tempo says of the audio: at the declared beat, two beats and bar, how far
the onset envelope's autocorrelation falls short of its strongest peak near that lag and how far
that peak lies from it (a loop played at another speed than its tempo), and the window's exact
repeat, a tiled loop's length, in declared beats and how far from a whole number (a loop cut
off the grid); the beat's and bar's lags are read at the declared tempo, its half and its
double, and the score is the lowest of the three, so a name that says 87 for a loop at 174 is
no error; and the same beat, two-beat and bar readings at the window's own tempo, which needs
no declared one: a tiled loop's length (its exact repeat) taken as the fewest whole bars that
give at least {OWN_BPM:.0f} BPM, so a loop cut off the grid, whose length does not divide into its
beats, has its own beat off the envelope's peaks, with or without a name; and the loop's
whole length: how many milliseconds beyond {LEN_TOL_MS:g} it lies from a power-of-two number of
beats at a whole-number tempo of {LEN_BPM[0]:g}-{LEN_BPM[1]:g} BPM (a loop played at another
speed, or trimmed off its grid, has a length no producer's tempo gives; a DAW's export is exact
to a sample), and with a declared tempo, from whole half beats of it. Limit: a loop at a tempo
that is no whole number, such as a break sampled from a record, reads as played at another
speed), the per-band statistics averaged over groups of adjacent bands (for Deep SVDD drum {info['instruments']['drum']['pool']},
bass {info['instruments']['bass']['pool']} bands: {info['instruments']['drum']['features']} / {info['instruments']['bass']['features']} inputs; for the largest tails drum {info['instruments']['drum']['tails_pool']}, bass {info['instruments']['bass']['tails_pool']}; the group size, one of {', '.join(map(str, POOLS))}, chosen with the
method on the validation split, so the few values that see clicks, noise and the seam are not
outweighed by 192 band statistics). Each value then goes through its feature's training
distribution ({QUANTILES} order statistics kept in the graph): its two-sided tail, -log((min(#
below, # above) + 1) / ({QUANTILES} + 1)), so a value far outside the normal range of one feature
counts whatever the scale and skew of the others, and beyond the training range it grows on
by the distance in units of the outermost order statistics' spacing (a loop driven 24 dB into
clipping is more unusual than the most clipped training loop); then standardised with the train split's
statistics. The train split enters twice, with its declared tempi and without them, so a loop
without a tempo is as normal as one with.

Trained on the corpus v2 train split only ({info['instruments']['drum']['train_loops']:,} drum, {info['instruments']['bass']['train_loops']:,} bass loops); the method, window
aggregation, pooling, Deep SVDD checkpoint (every 5 epochs) and the tails' features are chosen
by the mean AUROC over the damage kinds on the validation split's loops damaged by
`train/loopmatch_train/damage.py` (corpus loops; val mean AUROC per pooling and method in the
manifest's `anomaly.instruments.*.pools`, the selection's steps in `*.selected`).
Baselines on the same (pooled) embedding: Isolation Forest (100 trees, 256 samples each) and
PCA reconstruction error ({info['instruments']['drum']['pca_components']} / {info['instruments']['bass']['pca_components']} components for 90 % of the variance, drum / bass).
Every threshold is its method's 95th percentile of its own training scores (per condition, as above).

Evaluation: each clean loop of the split against the same loop damaged, one kind at a time
(clicks, clipping, added noise, bit-crush, a pitch/tempo warp, a loop of the other instrument,
a cut off the beat grid that breaks the seam). Cells: AUROC (precision at the threshold,
clean and damaged loops one to one); "clean flagged": the share of the split's clean loops
above the threshold. Each split twice: the loops with their declared tempo (a damaged loop keeps
the tempo its name declares: a warped or cut file keeps its name), and the same loops without
one. Rebuild just these models from an existing train/out:
`PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.anomaly --out train/out --bundle models/loopmatch-v2`.

Test split (in distribution), loops with a declared tempo:

{table(info, 'test')}

Test split, the same loops without a declared tempo:

{table(info, 'test_no_tempo')}

Transfer split (generator families and sound sources held out of training; reported, never
used to choose anything), with a declared tempo:

{table(info, 'transfer')}

Transfer split without a declared tempo:

{table(info, 'transfer_no_tempo')}

{target(info)}
Where Deep SVDD is not ahead (test split, with a tempo): {verdict(info, 'test')}. Without:
{verdict(info, 'test_no_tempo')}. Transfer split, with a tempo: {verdict(info, 'transfer')}.
Without: {verdict(info, 'transfer_no_tempo')}.
{CARD_END}
"""


def golden_fixtures(bundle_dir, paths, modes, log=log):
    """golden/anomaly.json: loop scores from onnxruntime for WAVs cut into windows by Go's rule
    (loop_windows at the fixture's tempo, the hop's too) and aggregated as the model's
    manifest says (modes); the drum and bass fixtures of golden.json, a clipped copy of the
    first drum loop, and a long drum loop (the first tiled to three times its length) with
    clicks in its last part only."""
    from .export import session
    gd = os.path.join(bundle_dir, "golden")
    base = load_mono(os.path.join(gd, "g0_drum.wav"))
    sf.write(os.path.join(gd, "a0_drum_clipped.wav"), D.clipping(base, np.random.default_rng(SEED)), SR, subtype="PCM_16")
    long = np.tile(base, 3)
    for at in np.linspace(len(long) * 0.75, len(long) - 8, 4).astype(int):
        long[at:at + 2] = 0.9
    sf.write(os.path.join(gd, "a1_drum_long_clicks.wav"), D.pcm16(long), SR, subtype="PCM_16")
    # (wav, instrument, declared tempo: 0 for none; the same loop with and without one)
    picks = [("g0_drum.wav", "drum", 120.0), ("g0_drum.wav", "drum", 0.0), ("g1_bass.wav", "bass", 0.0),
             ("g1_bass.wav", "bass", 97.0), ("g2_drum.wav", "drum", 0.0), ("g3_bass.wav", "bass", 140.0),
             ("c2_bass.wav", "bass", 0.0), ("a0_drum_clipped.wav", "drum", 0.0), ("a0_drum_clipped.wav", "drum", 130.0),
             ("a1_drum_long_clicks.wav", "drum", 130.0), ("a1_drum_long_clicks.wav", "drum", 0.0)]
    sess = {inst: session(p) for inst, p in paths.items()}
    entries = []
    for wav, inst, bpm in picks:
        x = load_mono(os.path.join(gd, wav))
        wins = loop_windows(x, bpm)
        dur = len(x) / SR
        s = sess[inst].run(["score"], {"audio": np.stack(wins), "bpm": np.full((len(wins), 1), bpm, np.float32),
                                       "duration": np.full((len(wins), 1), dur, np.float32)})[0]
        entries.append({"wav": wav, "instrument": inst, "bpm": bpm, "duration": dur, "windows": len(wins),
                        "window_scores": [float(v) for v in s], "score": float(aggregate(s, [len(wins)], modes[inst])[0])})
    doc = {"sample_rate": SR, "window_samples": N, "tolerance_rel": 1e-3,
           "rule": "decode 16-bit PCM as int/32768, mono; the loop's windows as audio.Windows cuts them at the "
                   "fixture's tempo (the hop: whole bars at bpm, one window when 0), each scored at that tempo and the "
                   "loop's length in seconds (duration: its samples / sample_rate); "
                   "score: the loop's, as the model's manifest windows says (first, or the highest)",
           "fixtures": entries}
    with open(os.path.join(gd, "anomaly.json"), "w") as f:
        json.dump(doc, f, indent=2)
    log(f"anomaly: golden fixtures {len(entries)}")


def add_to_bundle(bundle_dir, shipped, info, corpus_dir, log=log):
    from .bundle import add_role, sha256
    import onnx

    from .export import _export, session
    specs, paths = [], {}
    check = np.random.default_rng(0).standard_normal((3, N)).astype(np.float32) * 0.1
    check_bpm = np.array([[120.0], [0.0], [87.5]], np.float32)
    check_dur = np.array([[4.0], [3.1], [0.0]], np.float32)
    for inst, (g, thr, mode) in shipped.items():
        f = f"{inst}_anomaly.onnx"
        path = os.path.join(bundle_dir, f)
        _export(g, (torch.zeros(2, N), torch.full((2, 1), 120.0), torch.full((2, 1), 4.0)), path,
                ["audio", "bpm", "duration"], "score", custom_opsets={LAG_DOMAIN: 1})
        model = loop_lag_diffs(onnx.load(path))
        onnx.checker.check_model(model)
        onnx.save(model, path)
        with torch.no_grad():
            ref = g(torch.from_numpy(check), torch.from_numpy(check_bpm), torch.from_numpy(check_dur)).numpy()
        got = session(path).run(["score"], {"audio": check, "bpm": check_bpm, "duration": check_dur})[0]
        rel = float(np.max(np.abs(ref - got) / np.maximum(np.abs(ref), 1e-3)))
        info["instruments"][inst]["onnx_parity_max_rel_diff"] = rel
        log(f"anomaly: {f} onnx vs torch max rel diff {rel:.3g}")
        paths[inst] = path
        specs.append({"name": f"{inst}_anomaly", "file": f, "sha256": sha256(path), "role": "anomaly",
                      "instruments": [inst], "threshold": thr, "percentile": PERCENTILE,
                      "variant": info["instruments"][inst]["shipped"], "windows": mode,
                      "inputs": [{"name": "audio", "shape": [-1, N], "dtype": "float32"},
                                 {"name": "bpm", "shape": [-1, 1], "dtype": "float32"},
                                 {"name": "duration", "shape": [-1, 1], "dtype": "float32"}],
                      "outputs": [{"name": "score", "shape": [-1], "dtype": "float32"}]})
    golden_fixtures(bundle_dir, paths, {inst: mode for inst, (_, _, mode) in shipped.items()}, log)
    add_role(bundle_dir, "anomaly", specs, "anomaly", info, CARD_BEGIN, CARD_END, _card(specs, info))
    log(f"anomaly: added to {bundle_dir}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--work", default=None, help="cache and results folder (default OUT/anomaly)")
    ap.add_argument("--export-only", action="store_true",
                    help="re-export the shipped models from the work dir's results.json and cached embeddings (no selection, no training)")
    args = ap.parse_args(argv)
    if args.export_only:
        export_only(args.out, args.bundle, work_dir=args.work)
    else:
        build(args.out, args.bundle, work_dir=args.work)


if __name__ == "__main__":
    main()
