"""Trains and evaluates the Neural Loop Combiner pair scorer (loopmatch_train.nlc) on corpus
v2, after run2 (it reads train/out: features and the shipped bundle's bi-encoder), and adds
it to the bundle as the reranker (roles `pairfront` and `scorer`).

python -m loopmatch_train.run_nlc --out train/out --bundle models/loopmatch-v2

Rows: the CNN (early fusion) and Siamese pair models with all five negative strategies, and
the CNN with each strategy left out (the ablation); every one evaluated as the second stage
of recommend (top N by the shipped bi-encoder's cosine, reranked by the pair score) on the
test and transfer splits, and as a pair classifier (accuracy, AUC).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import corpus as C

SETTINGS = ["all", "bpm3", "same_bpm"]
SPLITS = ["val", "test", "transfer"]
DIRECTIONS = (("drum", "bass"), ("bass", "drum"))
MAIN = ("tower", "cnn", "siamese")
WIN_MARGIN = 0.01  # exact-tempo R_mn on the transfer split, each direction


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def biencoder(bundle, corpus_dir, rows, idx, cache):
    """The shipped bundle's latents (ONNX Runtime on the loops' windows, as Go encodes them)
    and its mapped seeds, per (instrument, split)."""
    from .v1_baseline import v1_latents, v1_mapped
    if os.path.exists(cache):
        d = np.load(cache)
        return {tuple(k.split("|")): d[k] for k in d.files}
    out = {}
    for split in SPLITS:
        for inst in ("drum", "bass"):
            out[(inst, split, "z")] = v1_latents(bundle, corpus_dir, rows, idx[(inst, split)], inst)
        for src, tgt in DIRECTIONS:
            out[(src, split, "mapped")] = v1_mapped(bundle, out[(src, split, "z")], src, tgt)
    np.savez(cache, **{"|".join(k): v for k, v in out.items()})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--ablation-steps", type=int, default=600, help="steps for the ablation rows")
    ap.add_argument("--n", type=int, default=100, help="candidates reranked per seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma list of rows to train (cnn, siamese, cnn-no-<strategy>)")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--work", default="", help="checkpoints and results (default OUT/nlc)")
    args = ap.parse_args(argv)
    import torch

    from .features import load_or_compute
    from .metrics import candidate_mask, cosine_scores, evaluate
    from . import nlc as N

    corpus_dir = os.path.join(args.out, "corpus")
    work = args.work or os.path.join(args.out, "nlc")
    os.makedirs(work, exist_ok=True)
    rows, logmel, _ = load_or_compute(corpus_dir, os.path.join(args.out, "features"), True)
    log("loading log-mel into memory")
    logmel = np.ascontiguousarray(np.asarray(logmel, np.float32))
    col, idx = C.columns(rows, ("train", "val", "test", "transfer"))
    packs_a, bpm_a = col["pack"], col["bpm"].astype(float)
    t = time.time()
    bi = biencoder(args.bundle, corpus_dir, rows, idx, os.path.join(work, "biencoder.npz"))
    log(f"bi-encoder latents ready ({time.time() - t:.0f} s)")
    ann = {}
    for split in SPLITS:
        for src, tgt in DIRECTIONS:
            ann[(src, split)] = cosine_scores(bi[(src, split, "mapped")], bi[(tgt, split, "z")])

    fcache = {}

    def feats(model, inst, split):
        # one model's features per split, computed once (the model is in eval mode here)
        key = (id(model), inst, split)
        if key not in fcache or fcache[key][0] is not model:
            fcache.clear() if len(fcache) > 8 else None
            fcache[key] = (model, N.features(model, inst, logmel, idx[(inst, split)]))
        return fcache[key][1]

    def two_stage(model, split, src, tgt, setting, n=args.n, weight=0.0):
        s_i, t_i = idx[(src, split)], idx[(tgt, split)]
        fs, fc = feats(model, src, split), feats(model, tgt, split)
        a = ann[(src, split)]
        sc = N.rerank_scores(a, lambda p: N.pair_scores(model, fs, fc, p, src == "drum"),
                             lambda s: candidate_mask(setting, bpm_a[s_i][s], bpm_a[t_i]), n, weight)
        return evaluate(sc, packs_a[s_i], bpm_a[s_i], packs_a[t_i], bpm_a[t_i], setting)

    def val_score(model, weight=0.0):
        # selection: drum2bass and bass2drum on val, at the same tempo and over all candidates
        fcache.clear()  # called while the model trains: its features change between calls
        r = [two_stage(model, "val", s, t_, st, weight=weight)["R_mn"] for s, t_ in DIRECTIONS for st in ("same_bpm", "all")]
        return float(np.mean(r))

    base = {}
    for split in SPLITS:
        for src, tgt in DIRECTIONS:
            s_i, t_i = idx[(src, split)], idx[(tgt, split)]
            for setting in SETTINGS:
                base[(f"{src}2{tgt}", split, setting)] = evaluate(ann[(src, split)], packs_a[s_i], bpm_a[s_i],
                                                                   packs_a[t_i], bpm_a[t_i], setting)
    log("bi-encoder val/test/transfer d2b same_bpm R_mn",
        [round(base[("drum2bass", s, "same_bpm")]["R_mn"], 4) for s in SPLITS])

    towers = N.load_towers(os.path.join(args.out, "towers.pt"))
    # the ablation: the CNN with each strategy left out, beside the CNN with all five trained
    # for as many steps ("cnn-all-ablation-steps")
    rows_to_train = [("tower", N.STRATEGIES), ("cnn", N.STRATEGIES), ("siamese", N.STRATEGIES)] + \
        [("cnn", tuple(s for s in N.STRATEGIES if s != left)) for left in N.STRATEGIES] + [("cnn", N.STRATEGIES, "ref")]
    results = {"bi-encoder": {}}
    for k, v in base.items():
        results["bi-encoder"].setdefault(k[0], {}).setdefault(k[1], {})[k[2]] = v
    models, infos = {}, {}
    # rows already evaluated by an earlier run with the same checkpoint are not evaluated again
    path = os.path.join(work, "results.json")
    done_results = json.load(open(path))["results"] if os.path.exists(path) else {}
    done = set()
    only = set(x for x in args.only.split(",") if x)
    for kind, strategies, *ref in rows_to_train:
        label = kind if len(strategies) == len(N.STRATEGIES) else \
            f"{kind}-no-{next(s for s in N.STRATEGIES if s not in strategies)}"
        if ref:
            label = f"{kind}-all-ablation-steps"
        if only and label not in only:
            continue
        ck = os.path.join(work, f"{label}.pt")
        steps = args.steps if label in MAIN else (args.ablation_steps or args.steps)
        if os.path.exists(ck):
            st = torch.load(ck)
            model = N.make_model(kind, towers=towers)
            model.load_state_dict(st["state"])
            model.eval()
            info = st["info"]
            done.add(label)
        else:
            log(f"training {label} ({steps} steps)")
            model, info = N.train_pair(kind, logmel, rows, idx[("drum", "train")], idx[("bass", "train")], val_score,
                                       args.seed + 70, strategies, steps=steps, threads=args.threads, towers=towers,
                                       log=log)
            torch.save({"state": model.state_dict(), "info": info}, ck)
        if label in MAIN and "ann_weight" not in info:
            # the final score is pair logit + w * ANN cosine; w chosen on val
            grid = {w: val_score(model, w) for w in (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)}
            info["ann_weight_val"] = {str(k): round(v, 4) for k, v in grid.items()}
            info["ann_weight"] = min(grid, key=grid.get)
            log(f"{label}: val by ANN weight {info['ann_weight_val']} -> {info['ann_weight']}")
            torch.save({"state": model.state_dict(), "info": info}, ck)
        models[label], infos[label] = model, info
        if label in done and label in done_results:
            results[label] = done_results[label]
            for k, v in done_results.items():
                if k.startswith(label + " + "):
                    results[k] = v
            continue
        res = {}
        for split in ("test", "transfer"):
            for src, tgt in DIRECTIONS:
                d = f"{src}2{tgt}"
                for setting in SETTINGS:
                    res.setdefault(d, {}).setdefault(split, {})[setting] = two_stage(model, split, src, tgt, setting)
                    if info.get("ann_weight"):
                        w = info["ann_weight"]
                        results.setdefault(f"{label} + {w:g} x cosine", {}).setdefault(d, {}).setdefault(split, {})[setting] = \
                            two_stage(model, split, src, tgt, setting, weight=w)
            res.setdefault("pairs", {})[split] = N.pair_classification(
                model, rows, idx[("drum", split)], idx[("bass", split)], logmel, args.seed + 5)
        results[label] = res
        log(f"{label}: d2b test same/all {res['drum2bass']['test']['same_bpm']['R_mn']:.4f}/"
            f"{res['drum2bass']['test']['all']['R_mn']:.4f} transfer same/all "
            f"{res['drum2bass']['transfer']['same_bpm']['R_mn']:.4f}/{res['drum2bass']['transfer']['all']['R_mn']:.4f}; "
            f"pair AUC test {res['pairs']['test']['auc']:.3f} transfer {res['pairs']['transfer']['auc']:.3f}")
    path = os.path.join(work, "results.json")
    if os.path.exists(path):  # rows evaluated by an earlier run (--only) are kept
        old = json.load(open(path))
        results, infos = old["results"] | results, old["training"] | infos
    with open(path, "w") as f:
        json.dump({"results": results, "training": infos, "n": args.n}, f, indent=1)
    print_table(results)
    if args.no_export:
        return
    # the shipped reranker: the main row whose two-stage score (with its ANN weight) is best on val
    label = min((k for k in MAIN if k in models), key=lambda k: infos[k]["ann_weight_val"][str(infos[k]["ann_weight"])])
    w = float(infos[label]["ann_weight"])
    shipped = f"{label} + {w:g} x cosine" if w else label
    # on by default only when it wins on the transfer split: lower R_mn in both directions and
    # every tempo setting, and by at least WIN_MARGIN at the seed's own tempo (a gain smaller
    # than that is not worth a second model's latency and cold cache)
    gain = {d: results["bi-encoder"][d]["transfer"]["same_bpm"]["R_mn"] - results[shipped][d]["transfer"]["same_bpm"]["R_mn"]
            for d in ("drum2bass", "bass2drum")}
    wins = all(results[shipped][d]["transfer"][st]["R_mn"] < results["bi-encoder"][d]["transfer"][st]["R_mn"]
               for d in ("drum2bass", "bass2drum") for st in SETTINGS) and min(gain.values()) >= WIN_MARGIN
    log(f"shipping {shipped}: {'wins' if wins else 'does not win'} on the transfer split -> rerank default {wins}")
    from .bundle_nlc import add_reranker
    from .nlc_card import card_section
    info = infos[label]
    rerank = {"default": wins, "n": args.n, "ann_weight": w, "model": shipped,
              "training": {k: v for k, v in info.items() if k != "history"} | {"final": info["history"][-1]},
              "metrics": {d: results[shipped][d]["test"] for d in ("drum2bass", "bass2drum")},
              "metrics_transfer": {d: results[shipped][d]["transfer"] for d in ("drum2bass", "bass2drum")},
              "pairs": results[label]["pairs"]}
    rerank["transfer_gain_same_tempo"] = gain
    add_reranker(args.bundle, models[label], rerank, card_section(results, infos, shipped, wins, args.n, WIN_MARGIN),
                 corpus_dir, rows, list(idx[("drum", "test")]) + list(idx[("bass", "test")]), log=log)


def print_table(results):
    for d in ("drum2bass", "bass2drum"):
        print(f"\n{d}: R_mn all / bpm3 / same_bpm (test | transfer)")
        for label, res in results.items():
            if d not in res:
                continue
            cells = []
            for split in ("test", "transfer"):
                r = res[d].get(split)
                if r:
                    cells.append(" / ".join(f"{r[s]['R_mn']:.3f}" for s in SETTINGS))
            print(f"  {label:22s} {' | '.join(cells)}")


if __name__ == "__main__":
    main()
