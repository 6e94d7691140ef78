"""An experiment (not part of `make models`; nothing from it ships): the Neural Loop Combiner
pair model trained as a residual on the shipped first stage, with the first stage's own hard
negatives. For each training seed the candidates are its pack's loop and K loops of other
packs at the seed's exact tempo (two thirds drawn from the first stage's top 30 by cosine,
the rest from the others), plus the right loop reversed, shifted and rearranged; the logit
is g(pair) + a * cosine with a learnt (initialised at the shipped ANN weight 50), trained
listwise. It asks whether a pair model can learn what the bi-encoder gets wrong at the
seed's tempo. Stage 2 as recommend serves it (top 100 by cosine reranked), selected on val.

PYTHONPATH=train python -m loopmatch_train.nlc_hard --ch 32 --steps 3000 --name h32
PYTHONPATH=train python -m loopmatch_train.nlc_hard --ch 64 --init train/out/nlc/cnn.pt --lr 1e-3 --steps 1500 --name h64ft

Needs train/out/nlc/biencoder.npz (run_nlc); computes the train split's first-stage latents
into train/out/nlc5/biencoder_train.npz once.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import corpus as C
from . import nlc as N
from .common import setup
from .features import load_or_compute
from .metrics import candidate_mask, cosine_scores, evaluate
from .sampling import rearrange_negative, reverse_negative, shift_negative

def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


class Res(nn.Module):
    def __init__(self, ch, a0):
        super().__init__()
        self.net = N.CNNPair(ch)
        self.a = nn.Parameter(torch.tensor(float(a0)))

    def features(self, inst, x):
        return self.net.features(inst, x)

    def pair(self, fd, fb):
        return self.net.pair(fd, fb)


def onset_alignment(d: np.ndarray, b: np.ndarray, drum_bands: tuple[int, int]) -> np.ndarray:
    """A hand-made fit score: the drums' spectral flux in low mel bands (the kick) against the
    basses' (bands 0-40), mean-removed, unit-normalised and smoothed over 5 frames; the dot
    product for every (drum, bass) pair."""
    def flux(x, lo, hi):
        e = x[:, lo:hi, :].mean(1)
        f = np.maximum(np.diff(e, axis=-1, prepend=e[:, :1]), 0)
        f = f - f.mean(-1, keepdims=True)
        f = f / (np.linalg.norm(f, axis=-1, keepdims=True) + 1e-9)
        k = np.array([0.25, 0.5, 1, 0.5, 0.25])
        return np.apply_along_axis(lambda r: np.convolve(np.r_[r[-2:], r, r[:2]], k, "valid"), -1, f)
    return flux(d, *drum_bands) @ flux(b, 0, 40).T


def diagnose(logmel, idx, packs_a, bpm_a, ann):
    """Why a pair model gains little: the first stage's R_mn on its own training split, and
    a hand-made onset-alignment score alone and beside the cosine (z-scored per seed),
    Drum2Bass at the same tempo."""
    si, ti = idx[("drum", "train")], idx[("bass", "train")]
    fit = evaluate(ann[("drum", "train")], packs_a[si], bpm_a[si], packs_a[ti], bpm_a[ti], "same_bpm")["R_mn"]
    log(f"first stage on its training split, same tempo: R_mn {fit:.4f}")

    def z(m):
        return (m - m.mean(1, keepdims=True)) / (m.std(1, keepdims=True) + 1e-9)
    for split in ("val", "test", "transfer"):
        si, ti = idx[("drum", split)], idx[("bass", split)]
        d, b = np.asarray(logmel[si], np.float32), np.asarray(logmel[ti], np.float32)
        cos = ann[("drum", split)]
        res = {"cosine": round(evaluate(cos, packs_a[si], bpm_a[si], packs_a[ti], bpm_a[ti], "same_bpm")["R_mn"], 4)}
        for name, bands in {"kick 0-8": (0, 8), "kick 0-16": (0, 16), "all bands": (0, 128)}.items():
            al = onset_alignment(d, b, bands)
            res[name] = {"alone": round(evaluate(al, packs_a[si], bpm_a[si], packs_a[ti], bpm_a[ti], "same_bpm")["R_mn"], 4)} | \
                {f"cosine + {w:g} x": round(evaluate(z(cos) + w * z(al), packs_a[si], bpm_a[si], packs_a[ti], bpm_a[ti], "same_bpm")["R_mn"], 4)
                 for w in (0.25, 0.5, 1.0)}
        log(split, json.dumps(res))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--init", default="")
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--b", type=int, default=16)
    ap.add_argument("--a0", type=float, default=50.0)
    ap.add_argument("--name", default="hard")
    ap.add_argument("--seed", type=int, default=1304)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--diagnose", action="store_true",
                    help="print the first stage's fit on its training split and the onset-alignment score's rankings, then stop")
    args = ap.parse_args(argv)
    work = "train/out/nlc5"


    setup(args.seed, 1)
    rows, logmel, _ = load_or_compute("train/out/corpus", "train/out/features", True)
    logmel = np.ascontiguousarray(np.asarray(logmel, np.float32))
    col, idx = C.columns(rows, ("train", "val", "test", "transfer"))
    packs_a, bpm_a = col["pack"], col["bpm"].astype(float)
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(f"{work}/biencoder_train.npz"):
        from .v1_baseline import v1_latents, v1_mapped
        z = {inst: v1_latents("models/loopmatch-v2", "train/out/corpus", rows, idx[(inst, "train")], inst) for inst in ("drum", "bass")}
        np.savez(f"{work}/biencoder_train.npz", **{f"{i}|train|z": v for i, v in z.items()},
                 **{"drum|train|mapped": v1_mapped("models/loopmatch-v2", z["drum"], "drum", "bass"),
                    "bass|train|mapped": v1_mapped("models/loopmatch-v2", z["bass"], "bass", "drum")})
    bi = {tuple(k.split("|")): v for f in ("train/out/nlc/biencoder.npz", f"{work}/biencoder_train.npz")
          for d in [np.load(f)] for k, v in [(k, d[k]) for k in d.files]}
    DIRS = (("drum", "bass"), ("bass", "drum"))
    ann = {}
    for split in ("train", "val", "test", "transfer"):
        for s, t in DIRS:
            ann[(s, split)] = cosine_scores(bi[(s, split, "mapped")], bi[(t, split, "z")]).astype(np.float32)
    log("ann ready")
    if args.diagnose:
        diagnose(logmel, idx, packs_a, bpm_a, ann)
        return


    model = Res(args.ch, args.a0)
    sample = logmel[np.sort(np.concatenate([idx[("drum", "train")], idx[("bass", "train")]]))[::20]]
    sd = float((sample - sample.mean(axis=2, keepdims=True)).std())
    for m in model.modules():
        if isinstance(m, N.PairFront):
            m.scale.fill_(sd)
    if args.init:
        st = torch.load(args.init)["state"]
        model.net.load_state_dict(st)
        log("init from", args.init)

    rng = np.random.default_rng(args.seed)
    # per direction: seeds of train with a same-pack target, their candidate pools at same tempo
    pools = {}
    for s, t in DIRS:
        si, ti = idx[(s, "train")], idx[(t, "train")]
        sp, tp, sb, tb = packs_a[si], packs_a[ti], bpm_a[si], bpm_a[ti]
        pos, hard = [], []
        for j in range(len(si)):
            own = np.where(tp == sp[j])[0]
            cand = np.where((tb == sb[j]) & (tp != sp[j]))[0]
            if len(own) == 0 or len(cand) < args.k:
                pos.append(None); hard.append(None); continue
            order = cand[np.argsort(-ann[(s, "train")][j, cand])]
            pos.append(own); hard.append(order)
        pools[s] = (si, ti, pos, hard)
        log(s, "seeds usable", sum(p is not None for p in pos), "of", len(si))


    def batch(direction):
        s, t = direction
        si, ti, pos, hard = pools[s]
        ok = [j for j in range(len(si)) if pos[j] is not None]
        js = rng.choice(ok, size=args.b, replace=False)
        xs, xc, cs, bp = [], [], [], []
        for j in js:
            p = int(rng.choice(pos[j]))
            h = hard[j]
            top = h[:args.top]
            nh = args.k * 2 // 3
            pick = list(rng.choice(top, size=min(nh, len(top)), replace=False))
            rest = np.setdiff1d(h, pick)
            pick += list(rng.choice(rest, size=args.k - len(pick), replace=False))
            cands = [p] + [int(c) for c in pick]
            xs.append(logmel[si[j]])
            xc.append(np.stack([logmel[ti[c]] for c in cands]))
            cs.append(np.array([ann[(s, "train")][j, c] for c in cands], np.float32))
            bp.append(bpm_a[si[j]])
        xs, xc, cs = np.stack(xs), np.stack(xc), np.stack(cs)
        sh = int(rng.integers(0, 256))
        xs, xc = np.roll(xs, sh, -1), np.roll(xc, sh, -1)
        # synthetic negatives of the right candidate: first-stage score of the right one
        syn = np.stack([np.stack([reverse_negative(xc[i, 0]), shift_negative(xc[i, 0], bp[i], rng),
                                  rearrange_negative(xc[i, 0], bp[i], rng)]) for i in range(len(xs))])
        xc = np.concatenate([xc, syn], 1)
        cs = np.concatenate([cs, np.repeat(cs[:, :1], 3, 1)], 1)
        return xs, xc, cs


    def score_batch(direction, xs, xc, cs):
        s, t = direction
        B, L = xc.shape[:2]
        fs = model.features(s, torch.from_numpy(N.band_mask(xs, rng)))
        fc = model.features(t, torch.from_numpy(N.band_mask(xc.reshape(B * L, *xc.shape[2:]), rng)))
        fs = fs.repeat_interleave(L, 0)
        g = model.pair(fs, fc) if s == "drum" else model.pair(fc, fs)
        return g.view(B, L) + model.a * torch.from_numpy(cs)


    fcache = {}


    @torch.no_grad()
    def two_stage(split, s, t, setting, weight):
        key = (s, split)
        if key not in fcache:
            fcache[key] = N.features(model, s, logmel, idx[(s, split)])
        if (t, split) not in fcache:
            fcache[(t, split)] = N.features(model, t, logmel, idx[(t, split)])
        fs, fc = fcache[(s, split)], fcache[(t, split)]
        si, ti = idx[(s, split)], idx[(t, split)]
        sc = N.rerank_scores(ann[(s, split)], lambda p: N.pair_scores(model, fs, fc, p, s == "drum"),
                             lambda q: candidate_mask(setting, bpm_a[si][q], bpm_a[ti]), 100, weight)
        return evaluate(sc, packs_a[si], bpm_a[si], packs_a[ti], bpm_a[ti], setting)["R_mn"]


    def val(weight):
        fcache.clear()
        model.eval()
        return float(np.mean([two_stage("val", s, t, st, weight) for s, t in DIRS for st in ("same_bpm", "all")]))


    base = {sp: {f"{s}2{t}": {st: evaluate(ann[(s, sp)], packs_a[idx[(s, sp)]], bpm_a[idx[(s, sp)]], packs_a[idx[(t, sp)]],
                                          bpm_a[idx[(t, sp)]], st)["R_mn"] for st in ("all", "bpm3", "same_bpm")}
                 for s, t in DIRS} for sp in ("val", "test", "transfer")}
    log("bi-encoder", json.dumps(base))
    log("val before", val(float(model.a)))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    best, best_state, tot, t0 = None, None, 0.0, time.time()
    for step in range(1, args.steps + 1):
        model.train()
        d = DIRS[step % 2]
        xs, xc, cs = batch(d)
        logits = score_batch(d, xs, xc, cs)
        loss = F.cross_entropy(logits, torch.zeros(len(xs), dtype=torch.long))
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        tot += float(loss)
        if step % args.eval_every == 0 or step == args.steps:
            v = val(float(model.a))
            log(f"step {step} loss {tot / args.eval_every:.4f} a {float(model.a):.2f} val {v:.4f} ({time.time() - t0:.0f} s)")
            tot = 0.0
            if best is None or v < best:
                best, best_state = v, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    torch.save({"state": model.net.state_dict(), "a": float(model.a), "args": vars(args)}, f"{work}/{args.name}.pt")
    w = float(model.a)
    grid = {x: val(x) for x in sorted({w, w * 0.5, w * 2, 20.0, 50.0, 100.0})}
    w = min(grid, key=grid.get)
    log("val by weight", grid, "->", w)
    res = {}
    for sp in ("test", "transfer"):
        fcache.clear()
        for s, t in DIRS:
            for st in ("all", "bpm3", "same_bpm"):
                res.setdefault(sp, {}).setdefault(f"{s}2{t}", {})[st] = two_stage(sp, s, t, st, w)
    log("RESULT", args.name, json.dumps(res))
    log("BASE  ", json.dumps({k: v for k, v in base.items() if k != "val"}))
    json.dump({"res": res, "base": base, "w": w, "grid": grid, "args": vars(args)}, open(f"{work}/{args.name}.json", "w"), indent=1)


if __name__ == "__main__":
    main()
