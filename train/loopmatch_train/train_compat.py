"""Compatibility towers (loopmatch-v2): one small convolutional tower per instrument maps a
loop's log-mel spectrogram to a time-resolved embedding e [CE, 64] in a space shared by drums
and basses, where a drum loop and a bass loop of the same pack are close and everything a
producer would reject is far:

- negatives at the seed's own tempo: most of every batch is drawn from packs of one tempo
  ("selected" negatives in Neural Loop Combiner's terms), so tempo cannot satisfy the loss;
- circular-shift negatives: the right pack's loop moved off the beat (a quarter to three
  quarters of a beat), so the embedding must say where onsets fall;
- pairs augmented together: one random time roll for both loops of a pair (the grid stays
  aligned), while timbre-only augmentations (band masks) are drawn for each side.

The towers see each band's log-mel with its mean over time removed (the static spectral
colour of a sound set or a mix, and the loop's loudness, are gone before the first layer),
and downsample time only 4x (64 frames of 62.5 ms), with no pooling over time.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .common import setup
from .metrics import cosine_scores, evaluate
from .models import N_MELS, T_LAT
from .sampling import TempoBatches, paired_roll, pairs_by_pack, shift_frames


class CompatTower(nn.Module):
    """log-mel [B, 128, 256] -> e [B, ce, 64], unit L2 norm over (ce, 64)."""

    def __init__(self, ce: int = 8, ch: int = 64):
        super().__init__()
        self.register_buffer("scale", torch.ones(1))
        # one strided convolution straight to the latent rate (8 frames = 125 ms per step,
        # hop 4): the towers must train on two CPU cores
        self.net = nn.Sequential(nn.Conv1d(N_MELS, ch, 8, stride=4, padding=2), nn.GELU())
        self.ctx = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=d, dilation=d) for d in (1, 2, 4, 8)])
        self.out = nn.Conv1d(ch, ce, 1)
        self.ce = ce

    def forward(self, logmel):
        x = (logmel - logmel.mean(dim=2, keepdim=True)) / self.scale
        h = self.net(x)
        for c in self.ctx:
            h = h + F.gelu(c(h))
        e = self.out(h)
        n = torch.sqrt((e * e).sum(dim=(1, 2), keepdim=True) + 1e-8)
        return e / n


def paired_stretch(xd: torch.Tensor, xb: torch.Tensor, factor: float):
    """Both loops of every pair played `factor` times faster (log-mel resampled in time, the
    window tiled again from its start): the same tempo change for both, so the pair's grid
    stays aligned while the absolute tempo moves."""
    n = xd.shape[-1]
    m = max(8, int(round(n / factor)))
    out = []
    for x in (xd, xb):
        y = F.interpolate(x, size=m, mode="linear", align_corners=False)
        reps = -(-n // m)
        out.append(y.repeat(1, 1, reps)[..., :n])
    return out[0], out[1]


def band_mask(x: torch.Tensor, rng: np.random.Generator, max_bands: int = 16) -> torch.Tensor:
    x = x.clone()
    for i in range(len(x)):
        w = int(rng.integers(0, max_bands + 1))
        if w:
            s = int(rng.integers(0, N_MELS - w))
            x[i, s:s + w] = x[i].mean()
    return x


@torch.no_grad()
def embed(tower: CompatTower, logmel: np.ndarray, idx, batch: int = 256) -> np.ndarray:
    tower.eval()
    out = []
    for i in range(0, len(idx), batch):
        out.append(tower(torch.from_numpy(np.asarray(logmel[np.sort(idx[i:i + batch])], dtype=np.float32))).numpy())
    # np.sort keeps reads sequential for memory maps; undo the order per chunk
    res = []
    for k, i in enumerate(range(0, len(idx), batch)):
        chunk = np.asarray(idx[i:i + batch])
        order = np.argsort(np.argsort(chunk))
        res.append(out[k][order])
    return np.concatenate(res) if res else np.zeros((0, tower.ce, T_LAT), np.float32)


def score_split(td, tb, logmel, rows, idx_d, idx_b, settings=("all", "same_bpm")):
    ed, eb = embed(td, logmel, idx_d), embed(tb, logmel, idx_b)
    packs = np.array([r["pack"] for r in rows])
    bpm = np.array([r["bpm"] for r in rows])
    out = {}
    for direction, (sq, cq, si, ci) in {"drum2bass": (ed, eb, idx_d, idx_b), "bass2drum": (eb, ed, idx_b, idx_d)}.items():
        s = cosine_scores(sq, cq)
        out[direction] = {st: evaluate(s, packs[si], bpm[si], packs[ci], bpm[ci], st) for st in settings}
    return out


def train_towers(logmel, rows, tr_d, tr_b, va_d, va_b, seed: int, epochs: int = 30, steps_per_epoch: int = 150,
                 same: int = 48, rand: int = 16, tau: float = 0.07, lr: float = 2e-3, ce: int = 8,
                 n_shift: int = 2, roll: bool = True, mask: bool = True, stretch: float = 0.0, threads: int = 2,
                 log=print):
    setup(seed, threads)
    td, tb = CompatTower(ce), CompatTower(ce)
    # one scale for the mean-removed log-mel, from the training loops
    sample = np.asarray(logmel[np.sort(np.concatenate([tr_d, tr_b]))[:: max(1, (len(tr_d) + len(tr_b)) // 500)]], np.float32)
    sd = float((sample - sample.mean(axis=2, keepdims=True)).std())
    td.scale.fill_(sd)
    tb.scale.fill_(sd)
    packs = pairs_by_pack(rows, tr_d, tr_b)
    bpm_of = {r["pack"]: r["bpm"] for r in rows}
    rng = np.random.default_rng(seed)
    sampler = TempoBatches(packs, bpm_of, same, rand, rng)
    params = list(td.parameters()) + list(tb.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    best, best_state, hist = None, None, []
    t0 = time.time()
    for ep in range(epochs):
        td.train()
        tb.train()
        tot = 0.0
        for _ in range(steps_per_epoch):
            b = sampler.batch()
            di = np.array([x[0] for x in b])
            bi = np.array([x[1] for x in b])
            pk = [x[2] for x in b]
            xd = torch.from_numpy(np.asarray(logmel[di], np.float32))
            xb = torch.from_numpy(np.asarray(logmel[bi], np.float32))
            if roll:
                xd, xb = paired_roll(xd, xb, int(rng.integers(0, T_LAT)) * 4)
            if stretch:
                xd, xb = paired_stretch(xd, xb, float(np.exp(rng.uniform(-stretch, stretch))))
            if mask:
                xd, xb = band_mask(xd, rng), band_mask(xb, rng)
            ed, eb = td(xd), tb(xb)
            fd, fb = ed.flatten(1), eb.flatten(1)
            logits = fd @ fb.T / tau
            p = np.array(pk)
            same_pack = torch.from_numpy((p[:, None] == p[None, :]) & ~np.eye(len(p), dtype=bool))
            logits = logits.masked_fill(same_pack, -1e4)
            # shift negatives: the right loop moved off the beat, for each row, both directions
            bpms = [bpm_of[q] for q in pk]
            sh_b, sh_d = [], []
            for _k in range(n_shift):
                s = [shift_frames(bb, rng) * (1 if rng.random() < 0.5 else -1) for bb in bpms]
                sh_b.append(torch.stack([eb[i].roll(s[i], 1) for i in range(len(pk))]).flatten(1))
                sh_d.append(torch.stack([ed[i].roll(s[i], 1) for i in range(len(pk))]).flatten(1))
            if n_shift:
                neg_b = torch.stack([(fd * x).sum(1) for x in sh_b], 1) / tau
                neg_d = torch.stack([(fb * x).sum(1) for x in sh_d], 1) / tau
                l_db = torch.cat([logits, neg_b], 1)
                l_bd = torch.cat([logits.T, neg_d], 1)
            else:
                l_db, l_bd = logits, logits.T
            tgt = torch.arange(len(pk))
            loss = F.cross_entropy(l_db, tgt) + F.cross_entropy(l_bd, tgt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss)
        v = score_split(td, tb, logmel, rows, va_d, va_b)
        vd = v["drum2bass"]
        sel = vd["all"]["R_mn"] + vd["same_bpm"].get("R_mn", 0.5)
        h = dict(epoch=ep + 1, loss=tot / steps_per_epoch, val_all=vd["all"]["R_mn"], val_same=vd["same_bpm"].get("R_mn"),
                 val_b2d_all=v["bass2drum"]["all"]["R_mn"], val_b2d_same=v["bass2drum"]["same_bpm"].get("R_mn"), select=sel)
        hist.append(h)
        log(f"  towers epoch {ep + 1}: loss {h['loss']:.3f} val d2b all {h['val_all']:.4f} same {h['val_same']:.4f} "
            f"b2d all {h['val_b2d_all']:.4f} same {h['val_b2d_same']:.4f} ({time.time() - t0:.0f} s)")
        if best is None or sel < best:
            best, best_state = sel, (copy.deepcopy(td.state_dict()), copy.deepcopy(tb.state_dict()))
    td.load_state_dict(best_state[0])
    tb.load_state_dict(best_state[1])
    td.eval()
    tb.eval()
    info = dict(ce=ce, epochs=epochs, steps_per_epoch=steps_per_epoch, same_tempo=same, random=rand, tau=tau, lr=lr,
                shift_negatives=n_shift, roll=roll, band_mask=mask, paired_stretch=stretch, packs=len(packs), best_select=best, history=hist)
    return td, tb, info
