"""Embedders compared for "more like this" and taste profiles (issue 19), as the fourth seed
paper compares pretrained audio representations inside recommenders: k nearest neighbours on
the mean of a user's liked items, HitRate@K, Recall@K and NDCG@K.

Simulated producers come from the corpus packs (a pack's loops share a groove, a sound set,
a tempo and a key):

- similar: every loop of a split is a seed once; the relevant items are the other loops of
  its pack and instrument; the seed itself is not a candidate.
- profile: a producer likes loops of one to three packs (of one instrument): for each pack
  about half of its loops (at least one, leaving at least one back); the held-back loops of
  those packs are the relevant items; the liked loops are not candidates. The query is the
  mean of the liked loops' unit vectors (what POST /v1/profile ranks by).

Candidates are every loop of the instrument in the split. Every embedder is scored on the
same producers, on the test split (in distribution) and the transfer split (generator
families and sound sources left out of training), beside two baselines that use no audio:
random, and metadata (same tempo and key as the seed; for a profile, the share of liked
loops with the candidate's tempo and key), ties broken at random.

Embedders, all computed from the shipped ONNX graphs or the cached log-mel front end:

- latent: the encoder's z, flattened (what ingest stores today: the compatibility towers'
  channels scaled, then the VAE's mu);
- tower: the towers' channels of z alone (the per-loop embedding of train_compat.py);
- vae: the VAE's mu channels of z alone;
- logmel_stats: the mean and standard deviation over time of each log-mel band, each of the
  256 values standardised with the train split's mean and deviation (the log-mel statistics
  baseline; its graph is train/loopmatch_train/embedders.py);
- musicnn_vgg: musicnn's MSD-trained VGG tagger (weights from the musicnn 0.1.0 wheel), pool5
  averaged over time (embedders.py), through its exported ONNX graph; left out, saying why,
  when its weights cannot be read.

Run: PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.similar_eval --out train/out
(writes train/out/similar/similar_eval.json and similar_eval.md; z is cached there).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time

import numpy as np

from .audio_io import load_window

KS = (10, 50)
SPLITS = ("test", "transfer")
INSTRUMENTS = ("drum", "bass")


def read_rows(features_dir: str) -> list[dict]:
    with open(os.path.join(features_dir, "rows.csv"), newline="") as f:
        return list(csv.DictReader(f))


def onnx_windows(onnx_path: str, out_name: str, corpus: str, rows: list[dict], idx: list[int], cache: str, what: str,
                 log=print) -> np.ndarray:
    """An ONNX graph's output for the loops idx (first window, tiled as Go does), cached."""
    if os.path.exists(cache):
        v = np.load(cache)
        if v.shape[0] == len(idx):
            return v
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    out = []
    t0 = time.time()
    for i in range(0, len(idx), 16):
        x = np.stack([load_window(os.path.join(corpus, rows[j]["path"])) for j in idx[i:i + 16]]).astype(np.float32)
        out.append(sess.run([out_name], {"audio": x})[0])
    v = np.concatenate(out)
    np.save(cache, v)
    log(f"  {what}: {len(idx)} loops in {time.time() - t0:.0f} s")
    return v


def encoder_z(bundle: str, corpus: str, rows: list[dict], idx: list[int], inst: str, cache: str) -> np.ndarray:
    """The shipped encoder's z of the loops idx."""
    return onnx_windows(os.path.join(bundle, f"{inst}_encoder.onnx"), "z", corpus, rows, idx, cache, f"{inst} encoder")


def embedder_vectors(onnx_path: str, corpus: str, rows: list[dict], idx: list[int], name: str, cache: str) -> np.ndarray:
    """An exported embedder (embedders.py) on the loops idx."""
    return onnx_windows(onnx_path, "embedding", corpus, rows, idx, cache, name)


def logmel_stats(logmel: np.ndarray) -> np.ndarray:
    """[n, 128, 256] log-mel -> [n, 256]: each band's mean and standard deviation over time."""
    x = np.asarray(logmel, dtype=np.float64)
    return np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(len(v), -1)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def ranking_metrics(order: np.ndarray, relevant: set[int]) -> dict[str, float]:
    """HitRate, Recall and NDCG at each K of one ranked list (candidate indices, best first)."""
    out = {}
    for k in KS:
        top = order[:k]
        hits = [1.0 if int(c) in relevant else 0.0 for c in top]
        n = sum(hits)
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(relevant), k)))
        out[f"hitrate@{k}"] = 1.0 if n > 0 else 0.0
        out[f"recall@{k}"] = n / len(relevant)
        out[f"ndcg@{k}"] = dcg / idcg
    return out


def producers(packs: dict[str, list[int]], n: int, rng: np.random.Generator) -> list[tuple[list[int], list[int]]]:
    """n simulated producers over packs (pack -> candidate positions, 2+ each): (liked, held back)."""
    names = sorted(p for p, v in packs.items() if len(v) >= 2)
    out = []
    for _ in range(n):
        m = int(rng.integers(1, 4))
        liked, held = [], []
        for p in rng.choice(names, size=min(m, len(names)), replace=False):
            loops = list(packs[p])
            rng.shuffle(loops)
            cut = max(1, len(loops) // 2)
            liked += loops[:cut]
            held += loops[cut:]
        out.append((liked, held))
    return out


def evaluate(vecs: dict[str, np.ndarray], meta: list[tuple[str, str]], packs: list[str], n_producers: int,
             seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """task -> embedder (and the baselines) -> mean metrics, on one split and instrument.
    meta[i] is candidate i's (tempo, key), packs[i] its pack."""
    n = len(packs)
    by_pack: dict[str, list[int]] = {}
    for i, p in enumerate(packs):
        by_pack.setdefault(p, []).append(i)
    rng = np.random.default_rng(seed)
    noise = rng.random((n,))  # tie-breaks for the metadata baseline
    codes = {m: i for i, m in enumerate(sorted(set(meta)))}
    meta_code = np.array([codes[m] for m in meta])
    units = {name: unit(v) for name, v in vecs.items()}
    results: dict[str, dict[str, list[dict]]] = {"similar": {}, "profile": {}}

    def score_all(task, query_ids, exclude, relevant, rrng):
        scores = {}
        for name, u in units.items():
            q = u[query_ids].mean(axis=0)
            scores[name] = u @ q
        scores["random"] = rrng.random((n,))
        same = np.zeros(n)
        for j in query_ids:
            same += (meta_code == meta_code[j])
        scores["metadata"] = same / len(query_ids) + 1e-6 * noise
        for name, s in scores.items():
            s = s.astype(np.float64).copy()
            s[list(exclude)] = -np.inf
            order = np.argsort(-s, kind="stable")[: n - len(exclude)]
            results[task].setdefault(name, []).append(ranking_metrics(order, relevant))

    rrng = np.random.default_rng(seed + 1)
    for i in range(n):
        rel = set(by_pack[packs[i]]) - {i}
        if rel:
            score_all("similar", [i], {i}, rel, rrng)
    for liked, held in producers(by_pack, n_producers, np.random.default_rng(seed + 2)):
        score_all("profile", liked, set(liked), set(held), rrng)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task, by in results.items():
        out[task] = {}
        for name, ms in by.items():
            out[task][name] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} | {"queries": len(ms)}
    return out


def pooled(per_inst: dict[str, dict]) -> dict:
    """Both instruments' figures pooled, weighted by their number of queries."""
    out = {}
    for task in ("similar", "profile"):
        out[task] = {}
        for name in per_inst["drum"][task]:
            a, b = per_inst["drum"][task][name], per_inst["bass"][task][name]
            na, nb = a["queries"], b["queries"]
            out[task][name] = {k: (a[k] * na + b[k] * nb) / (na + nb) for k in a if k != "queries"} | {"queries": na + nb}
    return out


EMBEDDER_ORDER = ("latent", "tower", "vae", "logmel_stats", "musicnn_vgg", "metadata", "random")


def table(res: dict) -> str:
    """The Markdown table: one row per embedder and task, test and transfer side by side."""
    cols = [f"{m}@{k}" for k in KS for m in ("hitrate", "recall", "ndcg")]
    head = "| task | embedder | " + " | ".join(f"test {c}" for c in cols) + " | " + " | ".join(f"transfer {c}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(cols))]
    for task in ("similar", "profile"):
        for name in EMBEDDER_ORDER:
            if name not in res["test"]["all"][task]:
                continue
            t, x = res["test"]["all"][task][name], res["transfer"]["all"][task][name]
            lines.append(f"| {task} | {name} | " + " | ".join(f"{t[c]:.3f}" for c in cols) + " | " + " | ".join(f"{x[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--producers", type=int, default=1000, help="simulated producers per split and instrument")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--card", default="", help="a MODEL_CARD.md whose embedder section is (re)written")
    args = ap.parse_args(argv)
    features = os.path.join(args.out, "features")
    corpus = os.path.join(args.out, "corpus")
    work = os.path.join(args.out, "similar")
    os.makedirs(work, exist_ok=True)
    rows = read_rows(features)
    logmel = np.load(os.path.join(features, "logmel.npy"), mmap_mode="r")
    with open(os.path.join(args.bundle, "manifest.json")) as f:
        manifest = json.load(f)
    ce = int(manifest["training"]["towers"]["ce"])
    train_idx = [i for i, r in enumerate(rows) if r["split"] == "train"]
    # the log-mel statistics' standardisation, from the train split only (every 4th loop)
    st = logmel_stats(logmel[train_idx[::4]])
    mu, sd = st.mean(axis=0), st.std(axis=0) + 1e-6
    np.savez(os.path.join(work, "logmel_stats_norm.npz"), mean=mu.astype(np.float32), std=sd.astype(np.float32))
    from .embedders import export
    # pretrained embedders (musicnn), through their ONNX graphs; logmel_stats is computed
    # above from the cached front end, which its graph reproduces
    pretrained = {k: v for k, v in export(args.out, ("musicnn_vgg",)).items()}
    res: dict = {}
    for split in SPLITS:
        res[split] = {}
        for inst in INSTRUMENTS:
            idx = [i for i, r in enumerate(rows) if r["split"] == split and r["instrument"] == inst]
            z = encoder_z(args.bundle, corpus, rows, idx, inst, os.path.join(work, f"z_{split}_{inst}.npy"))
            vecs = {"latent": z, "tower": z[:, :ce], "vae": z[:, ce:],
                    "logmel_stats": (logmel_stats(logmel[idx]) - mu) / sd}
            for name, path in pretrained.items():
                vecs[name] = embedder_vectors(path, corpus, rows, idx, name, os.path.join(work, f"{name}_{split}_{inst}.npy"))
            meta = [(rows[i]["bpm"], rows[i]["key"]) for i in idx]
            packs = [rows[i]["pack"] for i in idx]
            res[split][inst] = evaluate(vecs, meta, packs, args.producers, args.seed)
            print(f"{split} {inst}: {len(idx)} loops", flush=True)
        res[split]["all"] = pooled(res[split])
    doc = {"protocol": __doc__.split("\n\n")[1:4], "ks": list(KS), "producers_per_split_instrument": args.producers,
           "seed": args.seed, "bundle": manifest["name"], "results": res}
    ranks = {name: res["transfer"]["all"]["profile"][name]["ndcg@50"] for name in ("latent", "tower", "vae", "logmel_stats", *pretrained)}
    best = max(ranks, key=ranks.get)
    doc["winner_transfer_profile_ndcg50"] = best
    with open(os.path.join(work, "similar_eval.json"), "w") as f:
        json.dump(doc, f, indent=1)
    md = table(res)
    with open(os.path.join(work, "similar_eval.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    print("winner on transfer (profile NDCG@50):", best, json.dumps(ranks))
    if args.card:
        write_card(args.card, md, best, ranks)


CARD_BEGIN, CARD_END = "<!-- similar-eval -->", "<!-- /similar-eval -->"


def write_card(path: str, md: str, best: str, ranks: dict[str, float]) -> None:
    """(Re)writes the model card's section on "more like this" and taste profiles."""
    others = sorted((v, k) for k, v in ranks.items() if k != best)
    runner = others[-1]
    section = f"""{CARD_BEGIN}
## More like this and taste profiles (embedders compared)

`train/loopmatch_train/similar_eval.py` (run by `make models`): simulated producers from the
packs; *similar* takes every loop of a split as a seed (relevant: the other loops of its pack),
*profile* 1000 producers per split and instrument who liked about half the loops of one to three
packs (relevant: the held-back loops; query: the mean of the liked unit vectors). Both
instruments pooled. `latent` is the encoder's z as ingest stores it; `tower` and `vae` its
compatibility-tower and VAE channels alone; `logmel_stats` the log-mel bands' mean and deviation
over time (standardised on the train split); `musicnn_vgg` (when its weights could be read) the
MSD-trained VGG tagger of musicnn 0.1.0 (Pons and Serra; code and weights from the PyPI wheel,
ISC licence; trained on Million Song Dataset tags), pool5 averaged over time, ported to PyTorch
and exported to ONNX by embedders.py; `metadata` ranks by same tempo and key, `random` at
random. Selected on nothing: every representation is scored once, with fixed settings.

{md}

Winner on the transfer split (profile NDCG@50): **{best}** ({ranks[best]:.3f}), ahead of
{runner[1]} by {ranks[best] - runner[0]:.4f}; similar and profile use it.
{CARD_END}
"""
    text = open(path).read()
    if CARD_BEGIN in text and CARD_END in text:
        a, b = text.index(CARD_BEGIN), text.index(CARD_END) + len(CARD_END)
        text = text[:a] + section.strip() + text[b:]
    else:
        text = text.rstrip() + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
