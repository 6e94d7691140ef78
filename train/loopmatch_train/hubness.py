"""Hubness correction of the first stage (recommend's `hub`; the manifest's "hubness" block).

A mapper's predictions crowd into one part of the target space, and some target loops
("hubs") sit near many predictions, so they rank high for most seeds whatever the seed. CSLS
(cross-domain similarity local scaling, Conneau et al., "Word translation without parallel
data", 2018), made for the same setting (a mapped query searched among real vectors), scores
a candidate c for a seed s by

    cos(mapped_s, z_c) - beta * r_c,   r_c = the mean of c's k highest cosines to the mapped
                                             seeds of the library (the seed instrument's loops)

(CSLS itself is beta = 1/2; beta and k are chosen here on the validation split). r_c needs no
labels: only the library's own loops, mapped. It is computed per split over that split's seeds
(the library a producer searches); --sample M computes it from M seeds drawn at random instead,
as a library far larger than k would be served, and the seed's own loop is left out of its
candidates' r_c (--leave-out), so the figure does not lean on the seed being in the library.

python -m loopmatch_train.hubness --out train/out [--bundle models/loopmatch-v2]
reads train/out/nlc/biencoder.npz (the shipped bundle's latents and mapped seeds, written by
run_nlc) and writes train/out/nlc/hubness.json: the validation grid, the chosen (k, beta), and
R_mn over all candidates, BPM +-3 % and the same tempo on val, test and transfer, both
directions, against the bi-encoder alone. With --bundle (and neither --sample nor --leave-out)
it writes the manifest's "hubness" block (what recommend serves: k, beta, the depth of the
cosine search it reorders, and default: on only when it wins on the transfer split, see
wins()) and its MODEL_CARD section.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from . import corpus as C
from .metrics import cosine_scores, evaluate
from .run_nlc import DIRECTIONS, SETTINGS, SPLITS
KS = [3, 5, 10, 20]
BETAS = [0.25, 0.5, 0.75, 1.0, 1.25]
DEPTH = 100  # recommend reorders at least this many of the cosine search's best
ALL_SLACK = 0.001  # over all candidates the correction may not be worse than this
CARD_BEGIN = "<!-- hubness: written by train/loopmatch_train/hubness.py -->"
CARD_END = "<!-- /hubness -->"


def wins(table) -> bool:
    """On by default only when, on the transfer split in both directions, the correction
    lowers R_mn at the seed's own tempo and is no worse (within ALL_SLACK) over all candidates."""
    for src, tgt in DIRECTIONS:
        same = table[f"{src}2{tgt}/transfer/same_bpm"]
        every = table[f"{src}2{tgt}/transfer/all"]
        if not (same["corrected"] < same["bi_encoder"] and every["corrected"] <= every["bi_encoder"] + ALL_SLACK):
            return False
    return True


def manifest_block(res) -> dict:
    """The manifest's "hubness" block: what recommend reads (default, k, beta, depth) and
    how it was chosen and scored."""
    return {"default": wins(res["R_mn"]), "k": res["k"], "beta": res["beta"], "depth": DEPTH,
            "chosen_on": "val: the mean over both directions of R_mn at the same tempo and over all candidates",
            "val_bi_encoder": round(res["val_bi_encoder"], 4), "val_grid": {k: round(v, 4) for k, v in res["val_grid"].items()},
            "metrics": res["R_mn"], **({"pair": res["pair"]} if "pair" in res else {})}


def card_section(block) -> str:
    chosen = block["val_grid"][f"{block['k']}/{block['beta']}"]
    out = [CARD_BEGIN, "## First stage: hubness correction (CSLS)", "",
           "A mapper's predictions crowd together, so a few target loops sit near most predictions and "
           "rank high whatever the seed. recommend's first stage can score a candidate by its cosine to the "
           f"mapped seed minus {block['beta']:g} x its hub score, the mean of its {block['k']} highest cosines "
           "to the library's mapped seeds (Conneau et al. 2018). It uses no labels, only the library's own "
           f"loops; k and beta were chosen on val ({block['chosen_on']}: {block['val_bi_encoder']:.4f} -> "
           f"{chosen:.4f}). recommend corrects at least the "
           f"best {block['depth']} of the cosine search; eval corrects the whole ranking.", "",
           f"On by default: **{'yes' if block['default'] else 'no'}** (only when it lowers R_mn at the seed's own "
           f"tempo on the transfer split in both directions and is no worse than {ALL_SLACK:g} over all "
           "candidates). A request turns it off with `hub: false` (CLI `--hub=false`). Trained by "
           "`make models` (`python -m loopmatch_train.hubness --bundle`).", "",
           "| direction | split | all | BPM ±3% | exact tempo |", "|---|---|---|---|---|"]
    for src, tgt in DIRECTIONS:
        for split in ("test", "transfer"):
            cells = []
            for st in SETTINGS:
                r = block["metrics"][f"{src}2{tgt}/{split}/{st}"]
                cells.append(f"{r['bi_encoder']:.4f} -> {r['corrected']:.4f}")
            out.append(f"| {src}2{tgt} | {split} | " + " | ".join(cells) + " |")
    out += ["", "R_mn, bi-encoder -> corrected (random 0.5, lower is better); the hub scores come from each "
            "split's own loops, as a library's come from its own.", CARD_END, ""]
    return "\n".join(out)


def hub_scores(s, k, leave_out=False):
    """r [seeds, cands] (leave_out) or [cands]: each candidate's mean of its k highest cosines
    over the seeds (s [seeds, cands]); with leave_out, for each seed those of the other seeds."""
    order = np.argsort(-s, 0)[:k + 1]  # [k + 1, cands]: the seeds nearest each candidate
    top = np.take_along_axis(s, order, 0)
    r = top[:k].mean(0)
    if not leave_out:
        return r
    # a seed among its candidate's k nearest is replaced by the (k + 1)-th
    out = np.repeat(r[None], len(s), 0)
    for j in range(k):
        seeds = order[j]
        out[seeds, np.arange(s.shape[1])] = (top[:k].sum(0) - top[j] + top[k]) / k
    return out


def corrected(s, k, beta, leave_out=False, sample=0, rng=None):
    """The hubness-corrected scores of s [seeds, cands]."""
    if sample and sample < len(s):
        pick = rng.choice(len(s), sample, replace=False)
        r = hub_scores(s[pick], k)  # the seed itself is in the sample at random, as any other
        return s - beta * r[None]
    r = hub_scores(s, k, leave_out)
    return s - beta * (r if leave_out else r[None])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--sample", type=int, default=0, help="r_c from this many seeds drawn at random (0: all)")
    ap.add_argument("--leave-out", action="store_true", help="leave the seed's own loop out of r_c")
    ap.add_argument("--pair", action="store_true",
                    help="also the shipped pair reranker (train/out/nlc/cnn.pt, top --n) on the corrected score, its ANN weight chosen on val")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--bundle", help="write the manifest's hubness block and MODEL_CARD section into this bundle")
    args = ap.parse_args(argv)
    if args.bundle and (args.sample or args.leave_out):
        ap.error("--bundle writes what recommend serves: leave --sample and --leave-out out")
    from .features import load_or_compute  # torch: the training environment

    rows, _, _ = load_or_compute(os.path.join(args.out, "corpus"), os.path.join(args.out, "features"), False)
    col, idx = C.columns(rows, tuple(["train"] + SPLITS))
    packs, bpm = col["pack"], col["bpm"].astype(float)
    d = np.load(os.path.join(args.out, "nlc", "biencoder.npz"))
    bi = {tuple(k.split("|")): d[k] for k in d.files}
    scores = {(split, src): cosine_scores(bi[(src, split, "mapped")], bi[(tgt, split, "z")])
              for split in SPLITS for src, tgt in DIRECTIONS}

    def rmn(split, src, tgt, s, setting):
        s_i, t_i = idx[(src, split)], idx[(tgt, split)]
        return evaluate(s, packs[s_i], bpm[s_i], packs[t_i], bpm[t_i], setting)["R_mn"]

    def fix(split, src, k, beta):
        return corrected(scores[(split, src)], k, beta, args.leave_out, args.sample, np.random.default_rng(0))

    # selection on val: the mean over both directions of R_mn at the same tempo and over all
    # candidates (as run_nlc selects the reranker)
    grid = {}
    for k in KS:
        for beta in BETAS:
            grid[f"{k}/{beta}"] = float(np.mean([rmn("val", src, tgt, fix("val", src, k, beta), st)
                                                 for src, tgt in DIRECTIONS for st in ("same_bpm", "all")]))
    base_val = float(np.mean([rmn("val", src, tgt, scores[("val", src)], st) for src, tgt in DIRECTIONS for st in ("same_bpm", "all")]))
    best = min(grid, key=grid.get)
    k, beta = int(best.split("/")[0]), float(best.split("/")[1])
    print(f"val mean R_mn: bi-encoder {base_val:.4f}; best k {k} beta {beta}: {grid[best]:.4f}")
    table = {}
    for split in SPLITS:
        for src, tgt in DIRECTIONS:
            for st in SETTINGS:
                b = rmn(split, src, tgt, scores[(split, src)], st)
                h = rmn(split, src, tgt, fix(split, src, k, beta), st)
                table[f"{src}2{tgt}/{split}/{st}"] = {"bi_encoder": round(b, 4), "corrected": round(h, 4)}
                print(f"{src}2{tgt:5s} {split:9s} {st:9s} {b:.4f} -> {h:.4f} ({h - b:+.4f})")
    res = {"k": k, "beta": beta, "leave_out": args.leave_out, "sample": args.sample, "val_grid": grid,
           "val_bi_encoder": base_val, "R_mn": table}
    if args.pair:
        res["pair"] = stacked(args, rows, idx, packs, bpm, scores, fix, k, beta)
    name = "hubness" + ("-leave-out" if args.leave_out else "") + (f"-sample{args.sample}" if args.sample else "") + ".json"
    with open(os.path.join(args.out, "nlc", name), "w") as f:
        json.dump(res, f, indent=2)
    if args.bundle:
        from .bundle_files import add_role
        block = manifest_block(res)
        add_role(args.bundle, "hubness", [], "hubness", block, CARD_BEGIN, CARD_END, card_section(block))
        print(f"{args.bundle}: hubness k {k} beta {beta}, default {block['default']}")


def stacked(args, rows, idx, packs, bpm, scores, fix, k, beta):
    """The shipped pair reranker (its CNN checkpoint) over the top n of the cosine and of the
    corrected score; its ANN weight (the final score is pair logit + w x first-stage score) chosen
    on val for each, from run_nlc's grid."""
    import torch

    from . import nlc as N
    from .features import load_or_compute
    from .metrics import candidate_mask
    torch.set_num_threads(2)
    _, logmel, _ = load_or_compute(os.path.join(args.out, "corpus"), os.path.join(args.out, "features"), True)
    logmel = np.ascontiguousarray(np.asarray(logmel, np.float32))
    st = torch.load(os.path.join(args.out, "nlc", "cnn.pt"))
    model = N.make_model("cnn")
    model.load_state_dict(st["state"])
    model.eval()
    feats = {(inst, split): N.features(model, inst, logmel, idx[(inst, split)]) for inst in ("drum", "bass") for split in SPLITS}

    def two_stage(split, src, tgt, ann, setting, w):
        s_i, t_i = idx[(src, split)], idx[(tgt, split)]
        fs, fc = feats[(src, split)], feats[(tgt, split)]
        sc = N.rerank_scores(ann, lambda p: N.pair_scores(model, fs, fc, p, src == "drum"),
                             lambda s: candidate_mask(setting, bpm[s_i][s], bpm[t_i]), args.n, w)
        return evaluate(sc, packs[s_i], bpm[s_i], packs[t_i], bpm[t_i], setting)["R_mn"]
    out = {}
    for name, first in (("cosine", lambda split, src: scores[(split, src)]), ("corrected", lambda split, src: fix(split, src, k, beta))):
        grid = {w: float(np.mean([two_stage("val", src, tgt, first("val", src), st_, w) for src, tgt in DIRECTIONS
                                  for st_ in ("same_bpm", "all")])) for w in (5.0, 20.0, 50.0, 100.0)}
        w = min(grid, key=grid.get)
        out[name] = {"ann_weight": w, "val_grid": grid}
        print(f"pair reranker on the {name}: val {grid} -> weight {w}")
        for split in ("test", "transfer"):
            for src, tgt in DIRECTIONS:
                for st_ in ("all", "same_bpm"):
                    r = two_stage(split, src, tgt, first(split, src), st_, w)
                    out[name][f"{src}2{tgt}/{split}/{st_}"] = round(r, 4)
                    print(f"  {src}2{tgt:5s} {split:9s} {st_:9s} {r:.4f}", flush=True)
    return out


if __name__ == "__main__":
    main()
