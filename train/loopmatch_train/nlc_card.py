"""The reranker's section of MODEL_CARD.md (written by run_nlc)."""
from __future__ import annotations

SETTINGS = (("all", "all"), ("bpm3", "BPM ±3%"), ("same_bpm", "exact tempo"))
STRATS = ("random", "selected", "reverse", "shift", "rearrange")


def _rmn(res, d, split):
    r = res.get(d, {}).get(split)
    if not r:
        return " | ".join("-" for _ in SETTINGS)
    return " | ".join(f"{r[s]['R_mn']:.3f}" for s, _ in SETTINGS)


def card_section(results: dict, infos: dict, shipped: str, wins: bool, n: int, margin: float) -> str:
    out = ["## Reranker: Neural Loop Combiner pair scorer (second stage)", ""]
    out.append(
        "A pair model scores (drum loop, bass loop) from both loops' log-mel spectrograms (Chen et al., "
        "*Neural Loop Combiner*), trained on corpus v2's train split with the paper's five negative "
        "strategies (random, selected = another pack at the same tempo, reverse, shift = off the grid, "
        "rearrange = beats reordered), selected on val, and served as the second stage of recommend: the "
        f"top {n} candidates by the bi-encoder's cosine are reordered by `logit + ann_weight x cosine`. "
        "`cnn` is the paper's early-fusion CNN over the stacked pair (its first layer split per loop, "
        "`pairfront`, so a stored loop's features are computed once; the rest is `scorer`); `siamese` "
        "its late-fusion variant; `tower` the CNN on top of the compatibility towers' own cosine "
        "(a residual that starts from the first stage). Trained by `make models` "
        "(`python -m loopmatch_train.run_nlc`).")
    out.append("")
    out.append(f"Shipped: **{shipped}**; recommend reranks by default: **{'yes' if wins else 'no'}** "
               "(on by default only when it beats the bi-encoder on the transfer split in both directions "
               f"and every tempo setting, by at least {margin:g} R_mn at the seed's own tempo). A request turns "
               "it on with `rerank: true` (CLI `--rerank`).")
    for d in ("drum2bass", "bass2drum"):
        out += ["", f"### {d}: R_mn with the second stage (random 0.5; lower is better)", "",
                "| ranking | test: all | ±3% | exact | transfer: all | ±3% | exact |",
                "|---|---|---|---|---|---|---|"]
        for label, res in results.items():
            if d in res:
                name = "bi-encoder alone (first stage)" if label == "bi-encoder" else f"{label}, top {n} reranked"
                out.append(f"| {name} | {_rmn(res, d, 'test')} | {_rmn(res, d, 'transfer')} |")
    out += ["", "### Pair classification (positive vs one negative of each strategy, per test pack)", "",
            "| model | split | accuracy | AUC | " + " | ".join(f"AUC {s}" for s in STRATS) + " |",
            "|---|---|---|---|" + "---|" * len(STRATS)]
    for label, res in results.items():
        for split in ("test", "transfer"):
            p = res.get("pairs", {}).get(split)
            if p:
                out.append(f"| {label} | {split} | {p['accuracy']:.3f} | {p['auc']:.3f} | " +
                           " | ".join(f"{p[f'auc_{s}']:.3f}" for s in STRATS) + " |")
    out += ["", "Ablation: rows `cnn-no-X` leave strategy X out of training (a batch without `selected` "
            "draws every pack at random; without `random`, every pack from one tempo). They train for fewer "
            "steps than the shipped rows; `cnn-all-ablation-steps` is the CNN with all five strategies trained "
            "for as many, the row to compare them with.", "",
            "### Training", ""]
    for label, info in infos.items():
        h = info.get("history", [{}])[-1]
        out.append(f"- {label}: {info.get('steps')} steps, lr {info.get('lr')}, strategies "
                   f"{'+'.join(info.get('strategies', []))}, best val {info.get('best_val', 0):.4f}, "
                   f"{info.get('seconds')} s" + (f", ANN weight {info['ann_weight']:g} (val by weight: "
                                                 f"{info['ann_weight_val']})" if "ann_weight" in info else "")
                   + (f", last loss {h.get('loss')}" if h else ""))
    return "\n".join(out)
