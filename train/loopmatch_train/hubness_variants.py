"""Variants of the first stage's hubness correction, compared with the CSLS recommend serves
(an experiment: nothing here ships; the README's "Variants tried" figures come from it).

python -m loopmatch_train.hubness_variants --out train/out [--only NAME ...]
reads train/out/nlc/biencoder.npz (as hubness.py does) and prints, per variant, the validation
score hubness.py selects by (the mean over both directions of R_mn at the same tempo and over
all candidates), then R_mn at the same tempo / over all candidates on test and transfer, both
directions; writes train/out/nlc/hubness-variants.json.

The variants (q: mapped seeds, z: candidates, unit length; s = q z^T):
- csls: hubness.corrected (k 5, beta 1), what recommend serves;
- isf: the inverted softmax, tau s minus each candidate's log-sum-exp over the seeds (tau 20);
- tempo_local: CSLS with each candidate's hub score from the seeds of its own tempo;
- revrank: minus the seed's rank among the candidate's mapped seeds (a fraction); csls_rev adds
  a tenth of it to CSLS;
- two_way: the two mappers' CSLS scores added (seed -> candidate and candidate -> seed);
- qe: query expansion: each mapped seed plus its n nearest candidates weighted by cosine^alpha
  (n 3, alpha 3), scored with CSLS hub scores from the plain mapped seeds;
- dba: database-side augmentation: each candidate averaged with its n nearest candidates
  (itself included, weights cosine^alpha), then CSLS;
- qe_dba: both.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from . import corpus as C
from .hubness import corrected, hub_scores
from .metrics import evaluate
from .run_nlc import DIRECTIONS, SPLITS


def unit(x):
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def inverted_softmax(s, tau):
    a = tau * s
    m = a.max(0, keepdims=True)
    return a - (m + np.log(np.exp(a - m).sum(0, keepdims=True)))


def tempo_local(s, seed_bpm, cand_bpm, k=5, beta=1.0):
    """CSLS with each candidate's hub score from the seeds of its own tempo (all seeds when
    fewer than k share it)."""
    r = hub_scores(s, k)
    for b in np.unique(cand_bpm):
        m = seed_bpm == b
        if m.sum() >= k:
            r[cand_bpm == b] = hub_scores(s[m][:, cand_bpm == b], k)
    return s - beta * r[None]


def reverse_rank(s):
    """For each (seed, candidate): the fraction of seeds nearer the candidate than this one."""
    return np.argsort(np.argsort(-s, 0, kind="stable"), 0) / s.shape[0]


def expand(q, z, n, alpha):
    """Each row of q plus its n nearest rows of z, weighted by cosine^alpha (negatives 0)."""
    s = q @ z.T
    top = np.argsort(-s, 1)[:, :n]
    w = np.take_along_axis(np.clip(s, 0, None), top, 1) ** alpha
    return unit(q + np.einsum("sn,snd->sd", w, z[top]))


def augment(z, n, alpha):
    """Each row of z averaged with its n nearest other rows (itself included), cosine^alpha."""
    g = z @ z.T
    top = np.argsort(-g, 1)[:, :n + 1]
    w = np.take_along_axis(np.clip(g, 0, None), top, 1) ** alpha
    return unit(np.einsum("cn,cnd->cd", w, z[top]))


def variant(name, q, z, q_back, z_back, seed_bpm, cand_bpm):
    """The scores [seeds, cands] of a variant; q_back/z_back: the other direction's mapped
    candidates and its targets (the seeds' own latents), for two_way."""
    s = q @ z.T
    if name == "csls":
        return corrected(s, 5, 1.0)
    if name == "isf":
        return inverted_softmax(s, 20.0)
    if name == "tempo_local":
        return tempo_local(s, seed_bpm, cand_bpm)
    if name == "revrank":
        return -reverse_rank(s)
    if name == "csls_rev":
        return corrected(s, 5, 1.0) - 0.1 * reverse_rank(s)
    if name == "two_way":
        return corrected(s, 5, 1.0) + corrected(q_back @ z_back.T, 5, 1.0).T
    if name == "qe":
        return expand(q, z, 3, 3.0) @ z.T - hub_scores(s, 5)[None]
    if name == "dba":
        return corrected(q @ augment(z, 3, 3.0).T, 5, 1.0)
    if name == "qe_dba":
        z2 = augment(z, 3, 3.0)
        s2 = q @ z2.T
        return expand(q, z2, 3, 3.0) @ z2.T - hub_scores(s2, 5)[None]
    raise ValueError(f"unknown variant {name!r}")


VARIANTS = ("csls", "isf", "tempo_local", "revrank", "csls_rev", "two_way", "qe", "dba", "qe_dba")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--only", nargs="*", choices=VARIANTS, help="these variants (default: all)")
    args = ap.parse_args(argv)
    from .features import load_or_compute  # torch: the training environment

    rows, _, _ = load_or_compute(os.path.join(args.out, "corpus"), os.path.join(args.out, "features"), False)
    col, idx = C.columns(rows, tuple(["train"] + SPLITS))
    packs, bpm = col["pack"], col["bpm"].astype(float)
    d = np.load(os.path.join(args.out, "nlc", "biencoder.npz"))
    lat = {tuple(k.split("|")): unit(d[k]) for k in d.files}

    def rmn(name, split, src, tgt, setting):
        s_i, t_i = idx[(src, split)], idx[(tgt, split)]
        sc = variant(name, lat[(src, split, "mapped")], lat[(tgt, split, "z")], lat[(tgt, split, "mapped")],
                     lat[(src, split, "z")], bpm[s_i], bpm[t_i])
        return evaluate(sc, packs[s_i], bpm[s_i], packs[t_i], bpm[t_i], setting)["R_mn"]

    out = {}
    for name in args.only or VARIANTS:
        res = {"val": float(np.mean([rmn(name, "val", a, b, st) for a, b in DIRECTIONS for st in ("same_bpm", "all")]))}
        line = [f"{name:12s} val {res['val']:.4f}"]
        for split in ("test", "transfer"):
            for a, b in DIRECTIONS:
                same, every = rmn(name, split, a, b, "same_bpm"), rmn(name, split, a, b, "all")
                res[f"{a}2{b}/{split}"] = {"same_bpm": round(same, 4), "all": round(every, 4)}
                line.append(f"{a[0]}{b[0]}/{split[:4]} {same:.4f}/{every:.4f}")
        out[name] = res
        print("  ".join(line), flush=True)
    with open(os.path.join(args.out, "nlc", "hubness-variants.json"), "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
