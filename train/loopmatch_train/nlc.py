"""Neural Loop Combiner (Chen et al.) as loopmatch's second stage: a pair model that scores a
(drum loop, bass loop) pair from both loops' spectrograms, trained as a binary classifier
with the paper's five negative-sampling strategies:

- random:    a bass loop of a random other pack;
- selected:  a bass loop of another pack at the same tempo (and the same key when one exists);
- reverse:   the right bass loop played backwards;
- shift:     the right bass loop moved off the grid (a quarter to three quarters of a beat,
             plus any whole number of beats, circularly within the window);
- rearrange: the right bass loop cut into beats and the beats put in another order.

Two architectures, as the paper compares:

- "cnn" (early fusion, the paper's CNN over the stacked pair): the first layer is a strided
  convolution over both loops' mean-removed log-mel stacked as channels. A convolution over
  stacked channels is the sum of one convolution per loop, so it is split into a per-loop
  front end (`PairFront`, exported as role `pairfront`; its output can be computed once per
  stored loop and cached) and the pair head (`PairHead`, role `scorer`) that adds the two,
  and runs the rest: GELU, dilated residual convolutions over time, mean and max pooling, a
  linear logit. Exactly the stacked-channel network; only the first layer's work is shared.
- "siamese": one tower per instrument pools its loop to a vector; an MLP on
  [a, b, a*b, |a-b|] gives the logit (late fusion: no access to where onsets fall).

Both train on log-mel features of corpus v2 (train split; selected on val), with pairs rolled
in time together (the grid stays aligned) as augmentation.
"""
from __future__ import annotations

import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .common import setup
from .models import N_MELS
from .sampling import FRAMES, rearrange_negative, reverse_negative, shift_negative

STRATEGIES = ("random", "selected", "reverse", "shift", "rearrange")


class PairFront(nn.Module):
    """log-mel [B, 128, 256] -> features [B, ch, 64]: the per-loop half of the first layer."""

    def __init__(self, ch: int = 64, bias: bool = True):
        super().__init__()
        self.register_buffer("scale", torch.ones(1))
        self.proj = nn.Conv1d(N_MELS, ch, 8, stride=4, padding=2, bias=bias)

    def forward(self, logmel):
        return self.proj((logmel - logmel.mean(dim=2, keepdim=True)) / self.scale)


class PairHead(nn.Module):
    """(drum features, bass features) [B, ch, 64] each -> logit [B]."""

    def __init__(self, ch: int = 64, dilations=(1, 2, 4)):
        super().__init__()
        self.ctx = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=d, dilation=d) for d in dilations])
        self.out = nn.Linear(2 * ch, 1)

    def forward(self, fd, fb):
        h = F.gelu(fd + fb)  # the stacked-channel first layer: one convolution per loop, summed
        for c in self.ctx:
            h = h + F.gelu(c(h))
        return self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], 1)).squeeze(1)


class CNNPair(nn.Module):
    kind = "cnn"

    def __init__(self, ch: int = 64):
        super().__init__()
        self.front = nn.ModuleDict({"drum": PairFront(ch), "bass": PairFront(ch, bias=False)})
        self.head = PairHead(ch)

    def features(self, instrument, logmel):
        return self.front[instrument](logmel)

    def pair(self, fd, fb):
        return self.head(fd, fb)


class SiamTower(nn.Module):
    def __init__(self, ch: int = 64):
        super().__init__()
        self.front = PairFront(ch)
        self.ctx = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=d, dilation=d) for d in (1, 2, 4)])

    def forward(self, logmel):
        h = F.gelu(self.front(logmel))
        for c in self.ctx:
            h = h + F.gelu(c(h))
        return torch.cat([h.mean(dim=2), h.amax(dim=2)], 1)


class SiamesePair(nn.Module):
    kind = "siamese"

    def __init__(self, ch: int = 64):
        super().__init__()
        self.front = nn.ModuleDict({"drum": SiamTower(ch), "bass": SiamTower(ch)})
        self.mlp = nn.Sequential(nn.Linear(8 * ch, 128), nn.GELU(), nn.Linear(128, 1))

    def features(self, instrument, logmel):
        return self.front[instrument](logmel)

    def pair(self, a, b):
        return self.mlp(torch.cat([a, b, a * b, (a - b).abs()], 1)).squeeze(1)


class TowerFront(nn.Module):
    """log-mel -> [the frozen compatibility tower's embedding (ce x 64); PairFront (ch x 64)]."""

    def __init__(self, tower: nn.Module, ch: int = 64, bias: bool = True):
        super().__init__()
        self.tower = tower
        for p in self.tower.parameters():
            p.requires_grad_(False)
        self.front = PairFront(ch, bias)

    def forward(self, logmel):
        return torch.cat([self.tower(logmel), self.front(logmel)], 1)


class TowerPairHead(nn.Module):
    """The bi-encoder's own judgement, alpha * <e_drum, e_bass> (the towers' cosine), plus a
    pair CNN over both loops' spectrogram features that corrects it. The correction's output
    layer starts at zero, so training starts from the first stage's ranking."""

    def __init__(self, ce: int, ch: int = 64, dilations=(1, 2, 4)):
        super().__init__()
        self.ce, self.ch = ce, ch
        self.alpha = nn.Parameter(torch.tensor(1.0 / 0.07))
        self.bias = nn.Parameter(torch.zeros(1))
        self.mix = nn.Conv1d(2 * ch + ce, ch, 1)
        self.ctx = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=d, dilation=d) for d in dilations])
        self.out = nn.Linear(2 * ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, fd, fb):
        ce = self.ce
        ed, pd, eb, pb = fd[:, :ce], fd[:, ce:], fb[:, :ce], fb[:, ce:]
        pe = ed * eb  # unit-norm embeddings: the sum is the towers' cosine
        base = self.alpha * pe.sum(dim=(1, 2)) + self.bias
        h = self.mix(torch.cat([F.gelu(pd + pb), pd * pb / self.ch ** 0.5, pe * pe.shape[-1]], 1))
        for c in self.ctx:
            h = h + F.gelu(c(h))
        return base + self.out(torch.cat([h.mean(dim=2), h.amax(dim=2)], 1)).squeeze(1)


class TowerPair(CNNPair):
    kind = "tower"

    def __init__(self, ch: int = 64, towers: dict | None = None):
        nn.Module.__init__(self)
        self.front = nn.ModuleDict({"drum": TowerFront(towers["drum"], ch), "bass": TowerFront(towers["bass"], ch, bias=False)})
        self.head = TowerPairHead(towers["drum"].ce, ch)

    def train(self, mode: bool = True):
        super().train(mode)
        for f in self.front.values():
            f.tower.eval()
        return self


def make_model(kind: str, ch: int = 64, towers: dict | None = None):
    if kind == "tower":
        return TowerPair(ch, towers)
    return {"cnn": CNNPair, "siamese": SiamesePair}[kind](ch)


def load_towers(path: str) -> dict:
    from .train_compat import CompatTower
    if not os.path.exists(path):  # enough to load a saved TowerPair (its state holds the towers)
        return {inst: CompatTower(8).eval() for inst in ("drum", "bass")}
    st = torch.load(path)
    out = {}
    for inst in ("drum", "bass"):
        t = CompatTower(st["info"]["ce"])
        t.load_state_dict(st[inst])
        out[inst] = t.eval()
    return out


class PairSampler:
    """Batches for listwise training: B packs, one (drum, bass) pair each, most of them at one
    tempo. Every other pack's bass in the batch is a negative for a drum (a `selected` one when
    it shares the tempo, a `random` one when it does not), plus the drum's own bass reversed,
    shifted and rearranged. Leaving `selected` out draws every pack of a batch at random;
    leaving `random` out draws them all from one tempo."""

    def __init__(self, rows, logmel, idx_d, idx_b, rng: np.random.Generator, strategies=STRATEGIES, batch: int = 32):
        from .sampling import TempoBatches, pairs_by_pack
        self.rows, self.logmel, self.rng = rows, logmel, rng
        self.packs = pairs_by_pack(rows, idx_d, idx_b)
        self.bpm_of = {r["pack"]: float(r["bpm"]) for r in rows}
        self.strategies = tuple(strategies)
        same = 0 if "selected" not in self.strategies else (batch if "random" not in self.strategies else batch * 3 // 4)
        self.batches = TempoBatches(self.packs, self.bpm_of, same, batch - same, rng)
        self.hard = tuple(s for s in ("reverse", "shift", "rearrange") if s in self.strategies)

    def batch(self):
        """-> drum log-mel [B], their basses [B] (in-batch candidates), hard negatives [B] per
        strategy of reverse / shift / rearrange that is on (numpy)."""
        rng = self.rng
        trip = self.batches.batch()
        xd = np.stack([self.logmel[d] for d, _, _ in trip]).astype(np.float32)
        xb = np.stack([self.logmel[b] for _, b, _ in trip]).astype(np.float32)
        # paired roll: both loops of every pair move together (the grid stays aligned)
        s = int(rng.integers(0, FRAMES))
        xd, xb = np.roll(xd, s, -1), np.roll(xb, s, -1)
        negs = {}
        for st in self.hard:
            if st == "reverse":
                negs[st] = np.stack([reverse_negative(x) for x in xb])
            elif st == "shift":
                negs[st] = np.stack([shift_negative(x, self.bpm_of[p], rng) for x, (_, _, p) in zip(xb, trip)])
            else:
                negs[st] = np.stack([rearrange_negative(x, self.bpm_of[p], rng) for x, (_, _, p) in zip(xb, trip)])
        return xd, xb, negs


def band_mask(x: np.ndarray, rng: np.random.Generator, max_bands: int = 16) -> np.ndarray:
    x = x.copy()
    for i in range(len(x)):
        w = int(rng.integers(0, max_bands + 1))
        if w:
            s = int(rng.integers(0, N_MELS - w))
            x[i, s:s + w] = x[i].mean()
    return x


def train_pair(kind, logmel, rows, tr_d, tr_b, va, seed: int, strategies=STRATEGIES, steps: int = 1200,
               lr: float = 2e-3, eval_every: int = 200, threads: int = 1, towers=None, log=print):
    """Trains one pair model; selects the checkpoint with the best validation score (mean
    normalised rank of the right bass among the seed's same-tempo candidates' top list, see
    `val_score`). `va` is a callable model -> float (lower is better)."""
    setup(seed, threads)
    model = make_model(kind, towers=towers)
    sample = np.asarray(logmel[np.sort(np.concatenate([tr_d, tr_b]))[:: max(1, (len(tr_d) + len(tr_b)) // 500)]], np.float32)
    sd = float((sample - sample.mean(axis=2, keepdims=True)).std())
    for m in model.modules():
        if isinstance(m, PairFront):
            m.scale.fill_(sd)
    rng = np.random.default_rng(seed)
    sampler = PairSampler(rows, logmel, tr_d, tr_b, rng, strategies)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    best, best_state, hist = None, None, []
    t0, tot = time.time(), 0.0
    for step in range(1, steps + 1):
        model.train()
        xd, xb, negs = sampler.batch()
        xd, xb = band_mask(xd, rng), band_mask(xb, rng)
        bsz = len(xd)
        fd = model.features("drum", torch.from_numpy(xd))
        fb = model.features("bass", torch.from_numpy(np.concatenate([xb] + [negs[s] for s in sampler.hard])))
        rep = (1,) * (fd.dim() - 1)
        # every drum against every bass of the batch: [B, B], the diagonal are the pairs
        grid = model.pair(fd.repeat_interleave(bsz, 0), fb[:bsz].repeat(bsz, *rep)).view(bsz, bsz)
        hard = [model.pair(fd, fb[(k + 1) * bsz:(k + 2) * bsz]) for k in range(len(sampler.hard))]
        hard = torch.stack(hard, 1) if hard else grid.new_zeros(bsz, 0)
        target = torch.arange(bsz)
        # listwise: each drum's bass among the batch's basses and its hard negatives, and each
        # bass's drum among the batch's drums; plus a balanced binary term so that logit > 0
        # means "fits" (pair accuracy)
        loss = F.cross_entropy(torch.cat([grid, hard], 1), target) + F.cross_entropy(grid.t(), target)
        pos = grid.diagonal()
        neg = torch.cat([grid[~torch.eye(bsz, dtype=torch.bool)], hard.reshape(-1)])
        loss = loss + 0.5 * (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) +
                             F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss)
        if step % eval_every == 0 or step == steps:
            v = va(model)
            hist.append({"step": step, "loss": round(tot / eval_every, 4), "val": round(v, 4),
                         "seconds": round(time.time() - t0, 1)})
            log(f"  nlc {kind} [{'+'.join(sampler.strategies)}] step {step}: loss {tot / eval_every:.4f} val {v:.4f} "
                f"({time.time() - t0:.0f} s)")
            tot = 0.0
            if best is None or v < best:
                best, best_state = v, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model, {"kind": kind, "strategies": list(sampler.strategies), "steps": steps, "lr": lr, "seed": seed,
                   "best_val": best, "history": hist, "seconds": round(time.time() - t0, 1), "log_mel_scale": sd}


# ---------------------------------------------------------------- scoring

@torch.no_grad()
def features(model, instrument, logmel, idx, batch: int = 256) -> torch.Tensor:
    model.eval()
    out = [model.features(instrument, torch.from_numpy(np.asarray(logmel[np.asarray(idx[i:i + batch])], np.float32)))
           for i in range(0, len(idx), batch)]
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def pair_scores(model, fs: torch.Tensor, fc: torch.Tensor, pairs: np.ndarray, seed_is_drum: bool,
                batch: int = 2048) -> np.ndarray:
    """Logits for (seed row, candidate row) index pairs into the feature tensors."""
    out = []
    for i in range(0, len(pairs), batch):
        p = pairs[i:i + batch]
        a, b = fs[p[:, 0]], fc[p[:, 1]]
        out.append((model.pair(a, b) if seed_is_drum else model.pair(b, a)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def rerank_scores(ann: np.ndarray, pair_fn, mask_fn, n: int, weight: float = 0.0) -> np.ndarray:
    """The two-stage ranking as recommend serves it: per seed, the top n candidates by the ANN
    score among those the setting allows are reordered by the pair score (plus `weight` times
    the ANN cosine, standardised per list when weight > 0) and ranked above everything else;
    the rest keep their ANN order. Returns a score matrix for metrics.evaluate."""
    out = ann.astype(np.float64).copy()
    ns, nc = ann.shape
    rows, cols = [], []
    for s in range(ns):
        allowed = np.where(mask_fn(s))[0]
        top = allowed[np.argsort(-ann[s, allowed], kind="stable")[:n]]
        rows.append(np.full(len(top), s))
        cols.append(top)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    pair = pair_fn(np.stack([rows, cols], 1))
    final = pair.astype(np.float64)
    if weight:
        a = ann[rows, cols].astype(np.float64)
        final = final + weight * a
    out[rows, cols] = 1e6 + final
    return out


def pair_classification(model, rows, drum_idx, bass_idx, logmel, rng_seed: int):
    """Pair accuracy and AUC on a split: every same-pack (seed, candidate) positive against one
    negative of each strategy built the way training builds them (from the split's own loops)."""
    from .sampling import pairs_by_pack
    rng = np.random.default_rng(rng_seed)
    packs = pairs_by_pack(rows, drum_idx, bass_idx)
    pos_d, pos_b, neg = [], [], {s: [] for s in STRATEGIES}
    names = sorted(packs)
    bpm_of = {r["pack"]: float(r["bpm"]) for r in rows}
    by_bpm = {}
    for p in names:
        by_bpm.setdefault(bpm_of[p], []).append(p)
    for p in names:
        d = packs[p][0][int(rng.integers(0, len(packs[p][0])))]
        b = packs[p][1][int(rng.integers(0, len(packs[p][1])))]
        xb = np.asarray(logmel[b], np.float32)
        same = [q for q in by_bpm[bpm_of[p]] if q != p]
        other = names[int(rng.integers(0, len(names)))]
        while other == p:
            other = names[int(rng.integers(0, len(names)))]
        sel = same[int(rng.integers(0, len(same)))] if same else other
        pos_d.append(np.asarray(logmel[d], np.float32))
        pos_b.append(xb)
        neg["random"].append(np.asarray(logmel[packs[other][1][0]], np.float32))
        neg["selected"].append(np.asarray(logmel[packs[sel][1][0]], np.float32))
        neg["reverse"].append(reverse_negative(xb))
        neg["shift"].append(shift_negative(xb, bpm_of[p], rng))
        neg["rearrange"].append(rearrange_negative(xb, bpm_of[p], rng))
    with torch.no_grad():
        fd = model.features("drum", torch.from_numpy(np.stack(pos_d)))

        def score(xs):
            return model.pair(fd, model.features("bass", torch.from_numpy(np.stack(xs)))).numpy()
        sp = score(pos_b)
        sn = {s: score(v) for s, v in neg.items()}
    res = {"pairs": len(sp), "accuracy_pos": float(np.mean(sp > 0))}
    all_neg = np.concatenate(list(sn.values()))
    res["accuracy"] = float((np.sum(sp > 0) + np.sum(all_neg <= 0)) / (len(sp) + len(all_neg)))
    res["auc"] = auc(sp, all_neg)
    for s, v in sn.items():
        res[f"auc_{s}"] = auc(sp, v)
        res[f"accuracy_{s}"] = float(np.mean(v <= 0))
    return res


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (len(pos) * len(neg)))
