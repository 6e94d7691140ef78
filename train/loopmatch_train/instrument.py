"""The instrument classifier: audio window -> probabilities of drum / bass / other.

Ingest asks it when a loop's name, folder and manifest do not say what instrument it is, and
runs it on named loops too, to count where name and audio disagree. It has to be cheap (it
runs beside the encoder on every loop), so its front end is its own small one: a 512-point
STFT with a hop of one frame (172 frames of 23 ms over the 4 s window), 64 log-mel bands with
the clip's mean removed (so loudness is no cue), then three 1-D convolutions over time, mean,
max and standard deviation pooling, and a two-layer head. About 2-3 ms per loop on one core.

Training data: the corpus v2 drum and bass loops of the train split, and "other" loops
rendered here: chords, arpeggios, melodies and pads from FluidR3_GM's melodic programs
(bass programs excluded) over the corpus's keys and progressions, and sounds synthesised in
code (detuned-saw pads, plucked arpeggios, a formant "voice", noise risers and sweeps), each
through a random production chain from production.py, as the corpus loops are. Selected on
the validation split (best epoch by accuracy); reported on the test split and on the
transfer split (corpus transfer packs: hydrogen kits, FM basses, Euclidean grooves; "other"
loops from GM program families no training loop uses: brass, reeds and pipes).

python -m loopmatch_train.instrument --out train/out --bundle models/loopmatch-v2
builds just this model from an existing train/out (corpus v2 rendered) and adds it to the
bundle: classifier.onnx, its manifest entry, golden/classifier.json, a MODEL_CARD section.
The other files of the bundle are left byte for byte as they are.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from . import corpus as C
from . import production as P
from . import render as R
from . import synth as S
from .audio_io import N, SR, load_mono, window
from .models import hann, mel_filterbank

CLASSES = ["drum", "bass", "other"]
N_FFT = 512
HOP = 512
N_MELS = 64
FRAMES = 1 + (N - N_FFT) // HOP  # 172
EPS = 1e-4
SEED = 4321
MIN_CONFIDENCE = 0.6  # below this, ingest reports the loop instead of guessing

# FluidR3_GM melodic programs. Basses (32-39) and the two leads the corpus plays basses with
# (81, 87) are never "other"; percussive programs (112-119) and sound effects (120-127) are
# left out: they are neither tonal parts nor basses and would blur the classes.
GM_BASS = set(range(32, 40)) | {81, 87}
GM_TRANSFER = set(range(56, 80))  # brass, reeds, pipes: the held-out "other" sources
GM_OTHER = [p for p in range(0, 112) if p not in GM_BASS]
GM_OTHER_MAIN = [p for p in GM_OTHER if p not in GM_TRANSFER]
GM_OTHER_TRANSFER = [p for p in GM_OTHER if p in GM_TRANSFER]
TEMPI = [70, 80, 85, 90, 95, 100, 105, 110, 115, 120, 124, 125, 128, 130, 135, 140, 145, 150, 160, 170, 174]
OTHER_COUNTS = {"train": 2400, "val": 240, "test": 400, "transfer": 400}
CODE_KINDS = ["pad", "pluck", "voice", "noise"]


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


# --- the model -------------------------------------------------------------------------

class LogMel(nn.Module):
    """audio [B, N] -> log-mel [B, 64, 172] with the clip's mean removed."""

    def __init__(self):
        super().__init__()
        w = hann(N_FFT)
        nb = N_FFT // 2 + 1
        k = np.arange(nb)[:, None] * np.arange(N_FFT)[None, :] * 2 * np.pi / N_FFT
        kern = np.concatenate([np.cos(k) * w, -np.sin(k) * w], 0)[:, None, :]
        self.register_buffer("kernel", torch.tensor(kern, dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(mel_filterbank(N_MELS, N_FFT)))
        self.nb = nb

    def forward(self, audio):
        x = F.conv1d(audio.unsqueeze(1), self.kernel, stride=HOP)
        re, im = x[:, :self.nb], x[:, self.nb:]
        mag = torch.sqrt(re * re + im * im + 1e-12)
        lm = torch.log(torch.matmul(self.mel, mag) + EPS)
        return lm - lm.mean(dim=(1, 2), keepdim=True)


class Net(nn.Module):
    """normalised log-mel [B, 64, 172] -> logits [B, 3]."""

    def __init__(self, ch=64):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(N_MELS, ch, 3, padding=1), nn.GELU(),
            nn.Conv1d(ch, ch, 4, 2, 1), nn.GELU(),
            nn.Conv1d(ch, ch, 4, 2, 1), nn.GELU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(3 * ch, 64), nn.GELU(), nn.Linear(64, len(CLASSES)))

    def forward(self, lm):
        h = self.conv(lm)
        return self.head(torch.cat([h.mean(2), h.amax(2), h.std(2)], 1))


class ClassifierGraph(nn.Module):
    """What the bundle ships: audio [B, N] -> probs [B, 3] (softmax, in CLASSES order)."""

    def __init__(self, net: Net):
        super().__init__()
        self.fe = LogMel()
        self.net = net

    def forward(self, audio):
        return torch.softmax(self.net(self.fe(audio)), 1)


# --- "other" loops ---------------------------------------------------------------------

def _chords(rng, key_tonic: int, minor: bool, bars: int):
    """One chord per bar from the corpus's progressions: [(root pitch class, minor triad?)],
    and the key's scale (semitones above the tonic)."""
    progs = C.PROGRESSIONS_MINOR if minor else C.PROGRESSIONS_MAJOR
    prog = progs[int(rng.integers(0, len(progs)))]
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    out = []
    for b in range(bars):
        deg = prog[b % len(prog)]
        out.append(((key_tonic + deg) % 12, (deg + 3) % 12 in scale and (deg + 4) % 12 not in scale))
    return out, scale


def _part_notes(rng, bpm: int, bars: int, tonic: int, minor: bool):
    """Notes (t0, t1, pitch, vel) of one melodic part: chords, arpeggio, melody or pad."""
    beat = 60.0 / bpm
    chords, scale = _chords(rng, tonic, minor, bars)
    kind = rng.choice(["chords", "arp", "melody", "pad"])
    base = int(rng.integers(55, 67))  # the part's register starts around G3-F#4
    notes = []
    for b, (root, minor3) in enumerate(chords):
        t_bar = b * 4 * beat
        r = base + (root - base) % 12
        triad = [r, r + (3 if minor3 else 4), r + 7] + ([r + 12] if rng.random() < 0.5 else [])
        if kind == "pad":
            for p in triad:
                notes.append((t_bar, t_bar + 4 * beat, p, int(rng.integers(60, 100))))
        elif kind == "chords":
            hits = sorted(set(int(x) for x in rng.choice(16, size=int(rng.integers(2, 7)), replace=False)))
            for h in hits:
                d = beat / 4 * int(rng.integers(1, 5))
                for p in triad:
                    notes.append((t_bar + h * beat / 4, t_bar + h * beat / 4 + d, p, int(rng.integers(60, 110))))
        elif kind == "arp":
            step = beat / float(rng.choice([2, 4]))
            seq = triad + triad[::-1][1:-1] if rng.random() < 0.5 else triad
            for i in range(int(round(4 * beat / step))):
                p = seq[i % len(seq)] + (12 if rng.random() < 0.1 else 0)
                notes.append((t_bar + i * step, t_bar + (i + 0.9) * step, p, int(rng.integers(60, 110))))
        else:  # melody on the scale, around the chord
            t = 0.0
            p = r + 12
            while t < 4 * beat - 1e-6:
                d = beat / 2 * int(rng.choice([1, 1, 2, 3]))
                if rng.random() < 0.8:
                    notes.append((t_bar + t, t_bar + min(t + d, 4 * beat), p, int(rng.integers(60, 115))))
                p = p + int(rng.choice([-2, -1, 1, 2, 0, 3, -3]))
                p = r + 12 + (p - r - 12) % 14 - 2  # stay within about an octave above the chord
                while (p - tonic) % 12 not in scale:
                    p += 1
                t += d
    return notes


def _env(n, a, d):
    return S._env(n, a, d)


def _code_other(kind: str, rng, bpm: int, bars: int, tonic: int, minor: bool) -> np.ndarray:
    n = R.loop_samples(bpm, bars)
    t = np.arange(n) / SR
    beat = 60.0 / bpm
    if kind == "noise":  # risers, sweeps, swells: filtered noise with a moving band
        x = rng.standard_normal(n)
        period = 4 * beat * float(rng.choice([1, 2, 4]))
        phase = (t % period) / period
        lo = 200 * (1 + 30 * phase ** float(rng.uniform(0.5, 2.0)))
        y = np.zeros(n)
        for k in range(0, n, 1024):  # piecewise band-pass with the band of the block
            f = float(lo[k])
            seg = S._bp(x[max(0, k - 256):k + 1024], f, min(f * 3, SR / 2 - 100))
            y[k:k + 1024] = seg[(k - max(0, k - 256)):][:len(y[k:k + 1024])]
        return (y * (0.2 + phase)).astype(np.float32)
    chords, scale = _chords(rng, tonic, minor, bars)
    y = np.zeros(n)
    if kind == "voice":  # glottal-ish pulse train through vowel formants, with vibrato
        vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
        f0_base = float(rng.uniform(110, 330))
        seg = int(beat * SR * float(rng.choice([1, 2])))
        for k in range(0, n, seg):
            m = min(seg, n - k)
            root = chords[min(k // int(4 * beat * SR), len(chords) - 1)][0]
            f0 = f0_base * 2 ** (((root - tonic) % 12 + int(rng.choice([0, 3, 7]))) / 12.0 * 0.5)
            vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t[k:k + m])
            ph = np.cumsum(f0 * vib / SR)
            src = 2 * (ph % 1.0) - 1
            v = vowels[int(rng.integers(0, len(vowels)))]
            out = sum(S._bp(src, f * 0.9, f * 1.1) * g for f, g in zip(v, (1.0, 0.5, 0.25)))
            y[k:k + m] += out * _env(m, 0.03, 4.0)
        return y.astype(np.float32)
    for b, (root, minor3) in enumerate(chords):
        k0 = int(b * 4 * beat * SR)
        m = min(int(4 * beat * SR), n - k0)
        if m <= 0:
            break
        tt = np.arange(m) / SR
        r = 48 + (root - 48) % 12 + 12 * int(rng.integers(0, 2))
        pitches = [r, r + (3 if minor3 else 4), r + 7]
        if kind == "pad":
            seg = np.zeros(m)
            for p in pitches:
                for det in (-0.08, 0.0, 0.08):
                    f = 440 * 2 ** ((p - 69 + det) / 12)
                    seg += 2 * ((tt * f + rng.random()) % 1.0) - 1
            seg = S._lp(seg, float(rng.uniform(800, 4000))) * _env(m, float(rng.uniform(0.05, 0.5)), 8.0)
            y[k0:k0 + m] += seg
        else:  # plucked arpeggio (Karplus-Strong-like decaying partials)
            step = beat / float(rng.choice([2, 4]))
            ns = int(step * SR)
            for i in range(max(1, m // ns)):
                p = pitches[i % 3] + 12
                f = 440 * 2 ** ((p - 69) / 12)
                q = min(ns * 2, m - i * ns)
                tq = np.arange(q) / SR
                note = sum(np.sin(2 * np.pi * f * h * tq) / h * np.exp(-tq * (3 + 4 * h)) for h in range(1, 6))
                y[k0 + i * ns:k0 + i * ns + q] += note
    return y.astype(np.float32)


def _other_plan(split: str, count: int):
    """Deterministic list of what to render for one split of "other" loops."""
    rng = np.random.default_rng([SEED, ["train", "val", "test", "transfer"].index(split)])
    plan = []
    for i in range(count):
        bpm = int(rng.choice(TEMPI))
        bars = int(rng.choice([1, 2, 4]))
        tonic, minor = int(rng.integers(0, 12)), bool(rng.random() < 0.6)
        if split == "transfer":
            src = "gm"
            prog = int(rng.choice(GM_OTHER_TRANSFER))
        elif rng.random() < 0.65:
            src, prog = "gm", int(rng.choice(GM_OTHER_MAIN))
        else:
            src, prog = str(rng.choice(CODE_KINDS)), 0
        plan.append(dict(name=f"other_{split}_{i:05d}", split=split, source=src, program=prog, bpm=bpm, bars=bars,
                         tonic=tonic, minor=minor, seed=int(rng.integers(0, 2 ** 31))))
    return plan


def _render_other_chunk(plan):
    jobs = []
    for p in plan:
        if p["source"] == "gm":
            rng = np.random.default_rng([p["seed"], 1])
            notes = _part_notes(rng, p["bpm"], p["bars"], p["tonic"], p["minor"])
            n = R.loop_samples(p["bpm"], p["bars"])
            notes = [(a, min(b, n / SR), pitch, vel) for a, b, pitch, vel in notes if a < n / SR]
            jobs.append((p["name"], 0, p["program"], notes, n))
    audio = R.render_fluid_chunk(jobs) if jobs else {}
    out = []
    for p in plan:
        rng = np.random.default_rng([p["seed"], 2])
        if p["source"] == "gm":
            x = audio[p["name"]]
        else:
            x = _code_other(p["source"], rng, p["bpm"], p["bars"], p["tonic"], p["minor"])
        if not np.isfinite(x).all() or float(np.max(np.abs(x))) < 1e-6:
            x = np.zeros(R.loop_samples(p["bpm"], p["bars"]), np.float32)
            x[::int(SR * 0.5)] = 1.0  # never happens with these generators; keep a finite loop
        chain = P.random_chain(rng, lofi=rng.random() < 0.05)
        y = P.apply(chain, R.normalise(x), rng)
        rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)
        y = y * (10 ** ((R.TARGET_RMS_DB + chain.gain_db) / 20) / rms)
        peak = float(np.max(np.abs(y)))
        if peak > R.PEAK:
            y *= R.PEAK / peak
        # quantise as a 16-bit WAV would be, so training sees what ingest decodes
        y = np.round(np.clip(y, -1, 32767 / 32768) * 32768) / 32768
        out.append(window(y.astype(np.float32)))
    return out


def render_other(out_dir: str, workers: int = 2):
    """Render (or reuse) every split's "other" windows: OUT/instrument/other_<split>.npy."""
    from concurrent.futures import ProcessPoolExecutor
    d = os.path.join(out_dir, "instrument")
    os.makedirs(d, exist_ok=True)
    res = {}
    for split, count in OTHER_COUNTS.items():
        path = os.path.join(d, f"other_{split}.npy")
        plan = _other_plan(split, count)
        if os.path.exists(path) and np.load(path, mmap_mode="r").shape[0] == count:
            res[split] = (np.load(path, mmap_mode="r"), plan)
            continue
        chunks = [plan[i:i + 40] for i in range(0, len(plan), 40)]
        with ProcessPoolExecutor(workers) as ex:
            wins = [w for ws in ex.map(_render_other_chunk, chunks) for w in ws]
        arr = np.stack(wins).astype(np.float32)
        np.save(path, arr)
        with open(os.path.join(d, f"other_{split}.json"), "w") as f:
            json.dump(plan, f)
        log(f"instrument: rendered {count} other loops for {split}")
        res[split] = (np.load(path, mmap_mode="r"), plan)
    return res


# --- features and training -------------------------------------------------------------

def _features(windows_iter, count, fe, batch=64):
    out = np.zeros((count, N_MELS, FRAMES), np.float16)
    i = 0
    buf = []
    with torch.no_grad():
        for w in windows_iter:
            buf.append(w)
            if len(buf) == batch:
                out[i:i + batch] = fe(torch.from_numpy(np.stack(buf))).numpy()
                i += batch
                buf = []
        if buf:
            out[i:i + len(buf)] = fe(torch.from_numpy(np.stack(buf))).numpy()
    return out


def dataset(out_dir: str, corpus_dir: str, workers: int = 2):
    """Features and labels per split, cached in OUT/instrument/features_<split>.npz."""
    d = os.path.join(out_dir, "instrument")
    os.makedirs(d, exist_ok=True)
    rows = C.read_meta(corpus_dir)
    other = render_other(out_dir, workers)
    fe = LogMel().eval()
    data = {}
    for split in ("train", "val", "test", "transfer"):
        path = os.path.join(d, f"features_{split}.npz")
        idx = [i for i, r in enumerate(rows) if r["split"] == split]
        if os.path.exists(path):
            z = np.load(path)
            if len(z["y"]) == len(idx) + OTHER_COUNTS[split]:
                data[split] = (z["x"], z["y"], [rows[i]["path"] for i in idx] + [p["name"] for p in other[split][1]])
                continue
        t = time.time()
        xc = _features((load_window_path(corpus_dir, rows[i]["path"]) for i in idx), len(idx), fe)
        wins, plan = other[split]
        xo = _features((np.asarray(w) for w in wins), len(wins), fe)
        x = np.concatenate([xc, xo])
        y = np.array([CLASSES.index(rows[i]["instrument"]) for i in idx] + [2] * len(wins), np.int64)
        np.savez(path, x=x, y=y)
        log(f"instrument: features for {split}: {len(y)} loops ({time.time() - t:.0f} s)")
        data[split] = (x, y, [rows[i]["path"] for i in idx] + [p["name"] for p in plan])
    return data


def load_window_path(corpus_dir, rel):
    return window(load_mono(os.path.join(corpus_dir, rel)))


def _predict(net, x, batch=512):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(torch.softmax(net(torch.from_numpy(np.asarray(x[i:i + batch], np.float32))), 1).numpy())
    return np.concatenate(out)


def train(data, epochs: int = 12, per_class: int = 1500, seed: int = SEED, log=log):
    """Each epoch draws per_class loops of every class (the classes weigh the same whatever
    their sizes, and an epoch stays short on 2 cores); the best epoch on val is kept."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y, _ = data["train"]
    xv, yv, _ = data["val"]
    by_class = [np.flatnonzero(y == c) for c in range(len(CLASSES))]
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    per_epoch = (per_class * len(CLASSES)) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * per_epoch)
    best, best_state, history = -1.0, None, []
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(np.concatenate([rng.choice(ix, per_class, replace=len(ix) < per_class) for ix in by_class]))
        tot = 0.0
        for k in range(per_epoch):
            b = np.sort(perm[k * 64:(k + 1) * 64])
            xb = torch.from_numpy(np.asarray(x[b], np.float32))
            # roll each loop in time (loops are cyclic) and jitter its spectral tilt a little
            xb = torch.stack([torch.roll(r, int(rng.integers(0, FRAMES)), dims=1) for r in xb])
            tilt = torch.from_numpy(rng.normal(0, 0.3, (len(b), 1, 1)).astype(np.float32)) * torch.linspace(-1, 1, N_MELS)[None, :, None]
            loss = F.cross_entropy(net(xb + tilt), torch.from_numpy(y[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss)
        acc = float((_predict(net, xv).argmax(1) == yv).mean())
        history.append({"epoch": ep + 1, "loss": round(tot / per_epoch, 4), "val_accuracy": round(acc, 4)})
        log(f"instrument: epoch {ep + 1} loss {tot / per_epoch:.4f} val accuracy {acc:.4f}")
        if acc >= best:
            best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return net.eval(), history


def scores(probs, y, min_conf=MIN_CONFIDENCE):
    pred = probs.argmax(1)
    conf = probs.max(1)
    cm = np.zeros((len(CLASSES), len(CLASSES)), int)
    for a, b in zip(y, pred):
        cm[a, b] += 1
    sure = conf >= min_conf
    per = {c: round(float((pred[y == i] == i).mean()), 4) for i, c in enumerate(CLASSES) if (y == i).any()}
    return {"loops": int(len(y)), "accuracy": round(float((pred == y).mean()), 4), "per_class_recall": per,
            "confusion": {"rows_true_cols_predicted": CLASSES, "matrix": cm.tolist()},
            "min_confidence": min_conf, "confident_fraction": round(float(sure.mean()), 4),
            "accuracy_when_confident": round(float((pred[sure] == y[sure]).mean()), 4) if sure.any() else None}


# --- bundle ----------------------------------------------------------------------------

CARD_BEGIN = "<!-- instrument-classifier: written by train/loopmatch_train/instrument.py -->"
CARD_END = "<!-- /instrument-classifier -->"


def _card(spec, info):
    def cm(s):
        lines = ["| true \\ predicted | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]
        for c, row in zip(CLASSES, s["confusion"]["matrix"]):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        return "\n".join(lines)
    t, tr = info["metrics"]["test"], info["metrics"]["transfer"]
    return f"""{CARD_BEGIN}
## Instrument classifier (`{spec['file']}`, role `classifier`)

What ingest asks when a loop's name, folders and manifest do not say its instrument (names
and manifests still win), and what it runs on named loops to count where name and audio
disagree. Input `audio` [B, {N}] (the same window as the encoders), output `probs` [B, 3],
softmax over the classes `{', '.join(CLASSES)}` in that order (the manifest's `classes`). A loop
whose best class scores below {spec['min_confidence']} (`min_confidence`) is reported as
uncertain rather than guessed. Front end inside the graph: a 512-point STFT with a hop of 512
(172 frames), 64 log-mel bands, the clip's mean removed; three 1-D convolutions, mean / max /
std pooling over time, a two-layer head ({info['parameters']:,} parameters).

Trained on the corpus v2 train split's drum and bass loops plus {OTHER_COUNTS['train']:,} "other" loops
rendered for it (FluidR3_GM melodic programs playing chords, arpeggios, melodies and pads over
the corpus's keys and progressions; detuned-saw pads, plucked arpeggios, a formant voice and
noise sweeps synthesised in code; the corpus's random production chains), best epoch on the
validation split ({info['selected_epoch']} of {info['epochs']}, val accuracy {info['metrics']['val']['accuracy']:.4f}).
The transfer split holds the corpus's transfer packs (hydrogen kits, FM basses, Euclidean
grooves) and "other" loops from GM program families no training loop uses (brass, reeds,
pipes). Rebuild just this model from an existing train/out:
`PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.instrument --out train/out --bundle models/loopmatch-v2`.

| split | loops | accuracy | drum | bass | other | confident (>= {spec['min_confidence']}) | accuracy when confident |
|---|---|---|---|---|---|---|---|
| test | {t['loops']} | {t['accuracy']:.4f} | {t['per_class_recall']['drum']:.4f} | {t['per_class_recall']['bass']:.4f} | {t['per_class_recall']['other']:.4f} | {t['confident_fraction']:.4f} | {t['accuracy_when_confident']:.4f} |
| transfer | {tr['loops']} | {tr['accuracy']:.4f} | {tr['per_class_recall']['drum']:.4f} | {tr['per_class_recall']['bass']:.4f} | {tr['per_class_recall']['other']:.4f} | {tr['confident_fraction']:.4f} | {tr['accuracy_when_confident']:.4f} |

Confusion on the test split:

{cm(t)}

Confusion on the transfer split:

{cm(tr)}
{CARD_END}
"""


def golden_fixtures(bundle_dir, onnx_path, corpus_dir, data_paths, log=log):
    """golden/classifier.json: a drum, a bass (one short, one long: tiling and cutting) and the
    classifier's probs from onnxruntime on PCM windowed by Go's rule."""
    from .export import session
    gd = os.path.join(bundle_dir, "golden")
    os.makedirs(gd, exist_ok=True)
    rows = C.read_meta(corpus_dir)
    test = [r for r in rows if r["split"] == "test"]
    picks = []
    for inst, short in (("drum", True), ("bass", False), ("bass", True)):
        r = next(r for r in test if r["instrument"] == inst and (int(r["samples"]) < N) == short and r not in picks)
        picks.append(r)
    sess = session(onnx_path)
    entries = []
    for k, r in enumerate(picks):
        wav = f"c{k}_{r['instrument']}.wav"
        shutil.copyfile(os.path.join(corpus_dir, r["path"]), os.path.join(gd, wav))
        x = window(load_mono(os.path.join(gd, wav)))[None]
        p = sess.run(["probs"], {"audio": x})[0]
        pf = f"c{k}_{r['instrument']}_probs.f32"
        p.astype("<f4").tofile(os.path.join(gd, pf))
        entries.append({"wav": wav, "instrument": r["instrument"], "samples": int(r["samples"]),
                        "probs": {"file": pf, "shape": list(p.shape)}})
    doc = {"sample_rate": SR, "window_samples": N, "classes": CLASSES, "tolerance_max_abs": 1e-4,
           "rule": "decode 16-bit PCM as int/32768, mono, tile from the start to N or take the first N samples",
           "fixtures": entries}
    with open(os.path.join(gd, "classifier.json"), "w") as f:
        json.dump(doc, f, indent=2)
    log(f"instrument: golden fixtures {len(entries)}")


def add_to_bundle(bundle_dir, net, info, corpus_dir, log=log):
    from .bundle import add_role, sha256
    from .export import _export, session
    f = "classifier.onnx"
    path = os.path.join(bundle_dir, f)
    g = ClassifierGraph(net).eval()
    _export(g, torch.zeros(2, N), path, "audio", "probs")
    check = np.random.default_rng(0).standard_normal((3, N)).astype(np.float32) * 0.1
    with torch.no_grad():
        ref = g(torch.from_numpy(check)).numpy()
    parity = float(np.max(np.abs(ref - session(path).run(["probs"], {"audio": check})[0])))
    info["onnx_parity_max_abs_diff"] = parity
    log(f"instrument: onnx vs torch max abs diff {parity:.3g}")
    golden_fixtures(bundle_dir, path, corpus_dir, None, log)
    spec = {"name": "classifier", "file": f, "sha256": sha256(path), "role": "classifier", "instruments": [],
            "classes": CLASSES, "min_confidence": MIN_CONFIDENCE,
            "inputs": [{"name": "audio", "shape": [-1, N], "dtype": "float32"}],
            "outputs": [{"name": "probs", "shape": [-1, len(CLASSES)], "dtype": "float32"}]}
    add_role(bundle_dir, "classifier", [spec], "classifier", info, CARD_BEGIN, CARD_END, _card(spec, info))
    log(f"instrument: {f} added to {bundle_dir}")


def build(out_dir: str, bundle_dir: str, epochs: int = 12, workers: int = 2, log=log):
    """Render the "other" loops, compute features, train, select on val, evaluate, export."""
    t0 = time.time()
    torch.set_num_threads(1)
    corpus_dir = os.path.join(out_dir, "corpus")
    data = dataset(out_dir, corpus_dir, workers)
    t1 = time.time()
    net, history = train(data, epochs, log=log)
    metrics = {}
    for split in ("val", "test", "transfer"):
        x, y, _ = data[split]
        metrics[split] = scores(_predict(net, x), y)
        log(f"instrument: {split} accuracy {metrics[split]['accuracy']:.4f} {metrics[split]['per_class_recall']}")
    sel = max(history, key=lambda h: (h["val_accuracy"], h["epoch"]))
    info = {"classes": CLASSES, "seed": SEED, "epochs": epochs, "selected_epoch": sel["epoch"],
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "front_end": {"n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "frames": FRAMES},
            "data": {"corpus_splits": "corpus v2 drum and bass loops of each split",
                     "other_loops": OTHER_COUNTS, "other_sources": {
                         "gm_programs_main": GM_OTHER_MAIN, "gm_programs_transfer": GM_OTHER_TRANSFER,
                         "code": CODE_KINDS}},
            "history": history, "metrics": metrics,
            "durations_s": {"data": round(t1 - t0, 1), "train": round(time.time() - t1, 1)},
            "command": "python -m loopmatch_train.instrument --out train/out --bundle models/loopmatch-v2 (make models runs it)"}
    add_to_bundle(bundle_dir, net, info, corpus_dir, log)
    with open(os.path.join(out_dir, "instrument", "results.json"), "w") as f:
        json.dump(info, f, indent=2)
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    build(args.out, args.bundle, args.epochs, args.workers)


if __name__ == "__main__":
    main()
