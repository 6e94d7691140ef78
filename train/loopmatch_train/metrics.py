"""Retrieval metrics as in the Drum2Bass paper (light: numpy only).

For every same-pack (seed, target) pair, the target is ranked among itself and the
candidates of other packs (the pack's other target loops are left out: they are right
answers too), so a random scorer gets 0.5. Ties count half, as in Go's eval package."""
from __future__ import annotations

import numpy as np


def normalized_rank(target: float, others: np.ndarray) -> float:
    others = np.asarray(others)
    if len(others) == 0:
        return 0.0
    better = int(np.sum(others > target))
    ties = int(np.sum(others == target))
    return (better + 0.5 * ties) / len(others)


def ild(lists: list[list], l: int) -> float:
    """Mean over pairs of lists of 1 - |A ∩ B| / L (lists cut to L)."""
    if len(lists) < 2:
        return float("nan")
    sets = [set(x[:l]) for x in lists]
    tot, pairs = 0.0, 0
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            tot += 1 - len(sets[i] & sets[j]) / l
            pairs += 1
    return tot / pairs


def candidate_mask(setting: str, seed_bpm: float, cand_bpm: np.ndarray) -> np.ndarray:
    if setting == "all":
        return np.ones(len(cand_bpm), bool)
    if setting == "same_bpm":
        return cand_bpm == seed_bpm
    if setting == "bpm3":
        return np.abs(cand_bpm - seed_bpm) <= 0.03 * seed_bpm + 1e-9
    raise ValueError(setting)


def evaluate(scores: np.ndarray, seed_pack, seed_bpm, cand_pack, cand_bpm, setting: str = "all",
             min_candidates: int = 5, ks=(1, 10), ild_ls=(5, 10)) -> dict:
    """scores[s, c]: how well candidate c fits seed s (higher is better)."""
    scores = np.asarray(scores, dtype=np.float64)
    seed_pack, cand_pack = np.asarray(seed_pack), np.asarray(cand_pack)
    seed_bpm, cand_bpm = np.asarray(seed_bpm, float), np.asarray(cand_bpm, float)
    ranks, hits, lists = [], {k: [] for k in ks}, []
    seeds_used = 0
    for s in range(len(scores)):
        mask = candidate_mask(setting, seed_bpm[s], cand_bpm)
        own = cand_pack == seed_pack[s]
        others = mask & ~own
        targets = np.where(own & mask)[0]
        if len(targets) == 0 or (setting != "all" and others.sum() < min_candidates):
            continue
        seeds_used += 1
        oth = scores[s, others]
        for t in targets:
            better = int(np.sum(oth > scores[s, t]))
            ties = int(np.sum(oth == scores[s, t]))
            ranks.append((better + 0.5 * ties) / max(len(oth), 1))
            for k in ks:
                hits[k].append(1.0 if better + 0.5 * ties < k else 0.0)
        idx = np.where(mask)[0]
        order = idx[np.argsort(-scores[s, idx], kind="stable")]
        lists.append([int(i) for i in order[: max(ild_ls)]])
    out = {"seeds": seeds_used, "pairs": len(ranks)}
    if ranks:
        out["R_mn"] = float(np.mean(ranks))
        out["R_md"] = float(np.median(ranks))
        for k in ks:
            out[f"Recall@{k}"] = float(np.mean(hits[k]))
        for l in ild_ls:
            out[f"ILD@{l}"] = ild(lists, l)
    return out


def cosine_scores(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    q = q.reshape(len(q), -1).astype(np.float64)
    c = c.reshape(len(c), -1).astype(np.float64)
    q = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
    c = c / (np.linalg.norm(c, axis=1, keepdims=True) + 1e-12)
    return q @ c.T


def random_scores(n_seeds: int, n_cands: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n_seeds, n_cands))


def metadata_scores(seed_bpm, seed_key, cand_bpm, cand_key) -> np.ndarray:
    """Rule: nearest BPM first, then same key."""
    seed_bpm, cand_bpm = np.asarray(seed_bpm, float), np.asarray(cand_bpm, float)
    same_key = np.asarray(seed_key)[:, None] == np.asarray(cand_key)[None, :]
    return -np.abs(seed_bpm[:, None] - cand_bpm[None, :]) * 10.0 + 0.5 * same_key
