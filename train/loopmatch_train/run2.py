"""The loopmatch-v2 pipeline: corpus v2 -> features -> VAEs (the codec) -> decoders ->
compatibility towers -> MLP-Latent mappers -> baselines (random, metadata, ridge, v1, L2,
InfoNCE on VAE latents) -> evaluation on the test and transfer splits -> export -> golden
fixtures -> bundle + model card -> instrument classifier -> decoder evaluation -> demo library.

python -m loopmatch_train.run2 --out train/out --bundle models/loopmatch-v2 --demo demo
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import corpus as C
from . import corpus2 as C2

SETTINGS = ["all", "bpm3", "same_bpm"]
SPLITS = ["test", "transfer"]
DIRECTIONS = (("drum", "bass"), ("bass", "drum"))


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--packs", type=int, default=2400)
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--demo", default="demo")
    ap.add_argument("--v1-bundle", default="models/loopmatch-v1", help="v1's shipped bundle, evaluated as a baseline row")
    ap.add_argument("--vae-loops", type=int, default=2400, help="training loops per instrument for the VAE codec")
    ap.add_argument("--vae-epochs", type=int, default=12)
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--dec-epochs", type=int, default=12)
    ap.add_argument("--tower-epochs", type=int, default=24)
    ap.add_argument("--tower-steps", type=int, default=120)
    ap.add_argument("--tower-ce", type=int, default=8)
    ap.add_argument("--mapper-epochs", type=int, default=20)
    ap.add_argument("--gl-iters", type=int, default=16)
    ap.add_argument("--gl-momentum", type=float, default=0.99)
    ap.add_argument("--skip-render", action="store_true", help="reuse an existing corpus")
    ap.add_argument("--skip-features", action="store_true")
    ap.add_argument("--reuse-vae", action="store_true", help="load OUT/vae_*.pt instead of training (development)")
    ap.add_argument("--reuse-decoder", action="store_true")
    ap.add_argument("--reuse-towers", action="store_true")
    ap.add_argument("--skip-decoder-eval", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (the codecs of the two instruments train in two processes at once)")
    args = ap.parse_args(argv)
    t_start = time.time()
    durations = {}
    os.makedirs(args.out, exist_ok=True)
    corpus_dir = os.path.join(args.out, "corpus")
    feat_dir = os.path.join(args.out, "features")

    # 1. corpus v2
    t = time.time()
    packs = C2.make_corpus(args.seed, args.packs)
    split = C2.split_v2(packs, args.seed)
    if not (args.skip_render and os.path.exists(os.path.join(corpus_dir, "metadata.csv"))):
        from .render2 import render_corpus
        log(f"rendering {len(packs)} packs")
        render_corpus(packs, split, corpus_dir, args.seed)
        with open(os.path.join(corpus_dir, "packs.json"), "w") as f:
            json.dump([p.meta() for p in packs], f)
    durations["corpus_s"] = round(time.time() - t, 1)
    log(f"corpus ready ({durations['corpus_s']} s)")

    # 2. features
    import torch
    from .features import load_or_compute
    t = time.time()
    rows, logmel, logmag = load_or_compute(corpus_dir, feat_dir, args.skip_features)
    durations["features_s"] = round(time.time() - t, 1)
    log(f"features ready: {len(rows)} loops ({durations['features_s']} s)")

    col, idx = C.columns(rows, ("train", "val", "test", "transfer"))
    inst, spl, packs_a, bpm_a, key_a = (col[k] for k in ("instrument", "split", "pack", "bpm", "key"))
    stats = corpus_stats(packs, rows, split)
    log("corpus stats", json.dumps(stats))

    # 3. VAE codecs (previews, interpolation, transfer) and their decoders retrained on the
    #    frozen encoders (onset-aware loss, as v1): one process per instrument, one thread
    #    each, on a fixed-size random subset of the training loops (the 2-core budget)
    from .models import VAE, make_decoder
    from .train_vae import encode_all
    t = time.time()
    jobs = [(name, k) for k, name in enumerate(("drum", "bass"))
            if not (args.reuse_vae and args.reuse_decoder and all(
                os.path.exists(os.path.join(args.out, f"{w}_{name}.pt.json")) for w in ("vae", "decoder")))]
    if jobs:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(len(jobs), mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(train_codec, vars(args), name, k, feat_dir, [int(i) for i in idx[(name, "train")]],
                              [int(i) for i in idx[(name, "val")]]) for name, k in jobs]
            for f in futs:
                log(f.result())
    durations["codecs_s"] = round(time.time() - t, 1)
    vaes, vae_info, decoders, decoder_info = {}, {}, {}, {}
    zv = np.zeros((len(rows), 16, 64), np.float32)
    for name in ("drum", "bass"):
        ckpt = os.path.join(args.out, f"vae_{name}.pt")
        vae = VAE()
        vae.load_state_dict(torch.load(ckpt))
        vae.eval()
        vaes[name], vae_info[name] = vae, json.load(open(ckpt + ".json"))
        dck = os.path.join(args.out, f"decoder_{name}.pt")
        info = json.load(open(dck + ".json"))
        dec = make_decoder(info["arch"], info["channels"])
        dec.load_state_dict(torch.load(dck))
        dec.eval()
        decoders[name], decoder_info[name] = dec, info
        all_i = np.where(inst == name)[0]
        zv[all_i] = encode_all(vae, logmel[all_i])
    from .common import setup
    setup(args.seed, args.threads)

    # 4. compatibility towers (the v2 retrieval model)
    from .train_compat import CompatTower, embed, train_towers
    t = time.time()
    ckpt = os.path.join(args.out, "towers.pt")
    if args.reuse_towers and os.path.exists(ckpt):
        st = torch.load(ckpt)
        towers = {"drum": CompatTower(st["info"]["ce"]), "bass": CompatTower(st["info"]["ce"])}
        towers["drum"].load_state_dict(st["drum"])
        towers["bass"].load_state_dict(st["bass"])
        tower_info = st["info"]
    else:
        log("training the compatibility towers")
        td, tb, tower_info = train_towers(logmel, rows, idx[("drum", "train")], idx[("bass", "train")], idx[("drum", "val")],
                                          idx[("bass", "val")], args.seed + 40, epochs=args.tower_epochs,
                                          steps_per_epoch=args.tower_steps, ce=args.tower_ce, threads=args.threads, log=log)
        towers = {"drum": td, "bass": tb}
        tower_info["seconds"] = round(time.time() - t, 1)
        torch.save({"drum": td.state_dict(), "bass": tb.state_dict(), "info": tower_info}, ckpt)
    for tw in towers.values():
        tw.eval()
    durations["towers_s"] = round(time.time() - t, 1)
    ce = int(tower_info["ce"])
    # the compatibility channels carry almost all of a latent's norm
    vae_norm = float(np.median(np.linalg.norm(zv[np.concatenate([idx[("drum", "train")], idx[("bass", "train")]])].reshape(-1, 16 * 64), axis=1)))
    scale = 8.0 * vae_norm
    tower_info["scale"] = scale
    log(f"towers ready: ce {ce}, latent scale {scale:.3f} (median VAE latent norm {vae_norm:.3f})")

    # 5. MLP-Latent mappers on the VAE latents: L2 (the paper's model; the VAE part of the
    #    shipped mapper, which the preview decodes) and InfoNCE (v1's retrieval model) as rows
    from .train_mapper import train_mapper
    mappers, mapper_info = {}, {}
    for src, tgt in DIRECTIONS:
        for kind in ("l2", "contrastive"):
            t = time.time()
            name = f"{src}2{tgt}_{kind}"
            log(f"training {name} on the VAE latents")
            m, info = train_mapper(zv, zv, rows, idx[(src, "train")], idx[(tgt, "train")], idx[(src, "val")],
                                   idx[(tgt, "val")], args.seed + 10, kind, epochs=args.mapper_epochs, threads=args.threads,
                                   log=log)
            info["seconds"] = round(time.time() - t, 1)
            mappers[name], mapper_info[name] = m, info
            torch.save(m.state_dict(), os.path.join(args.out, f"mapper_{name}.pt"))
            durations[f"mapper_{name}_s"] = info["seconds"]

    # 6. evaluation: every model on the test and transfer splits
    t = time.time()
    z2 = np.zeros((len(rows), ce + 16, 64), np.float32)
    for name in ("drum", "bass"):
        all_i = np.where(inst == name)[0]
        z2[all_i, :ce] = embed(towers[name], logmel, all_i) * scale
        z2[all_i, ce:] = zv[all_i]
    results = evaluate_all(args, rows, idx, logmel, zv, z2, ce, mappers, packs_a, bpm_a, key_a, corpus_dir)
    durations["evaluation_s"] = round(time.time() - t, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print_tables(results)

    # 7. export, golden fixtures, bundle, decoder evaluation, demo
    from .bundle2 import write_bundle_v2
    from .demo import write_demo
    t = time.time()
    training = {
        "seed": args.seed, "command": "make models", "corpus": stats,
        "vae": {k: {kk: vv for kk, vv in v.items() if kk != "history"} | {"final": v["history"][-1]} for k, v in vae_info.items()},
        "decoders": {k: {kk: vv for kk, vv in v.items() if kk != "history"} | {"final": v["history"][-1]} for k, v in decoder_info.items()},
        "towers": {k: v for k, v in tower_info.items() if k != "history"} | {"final": tower_info["history"][-1]},
        "mappers": {k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in mapper_info.items()},
        "durations_s": durations, "threads": args.threads, "processes": 2, "gl_iters": args.gl_iters, "gl_momentum": args.gl_momentum,
    }
    write_bundle_v2(args.bundle, args.out, vaes, decoders, towers, scale,
                    {f"{s}2{t_}": mappers[f"{s}2{t_}_l2"] for s, t_ in DIRECTIONS}, results, training, corpus_dir, rows,
                    spl, gl_iters=args.gl_iters, gl_momentum=args.gl_momentum, log=log)
    durations["export_s"] = round(time.time() - t, 1)
    # 8. the instrument classifier (drum / bass / other), added to the bundle beside the rest
    from .instrument import build as build_classifier
    build_classifier(args.out, args.bundle, log=log)
    if not args.skip_decoder_eval:
        from .decoder_eval import evaluate_bundle
        evaluate_bundle(args.bundle, corpus_dir, os.path.join(args.out, "decoder_eval.json"), "docs/decoder", log=log,
                        corpus_module="corpus2", test_sample=250)
    write_demo(args.demo, corpus_dir, rows, spl, log=log)
    log(f"done in {(time.time() - t_start) / 60:.1f} min")


def train_codec(a: dict, name: str, k: int, feat_dir: str, train_idx: list, val_idx: list) -> str:
    """One instrument's VAE codec and its retrained decoder, in a process of its own."""
    import torch
    from .models import VAE
    from .train_decoder import train_decoder
    from .train_vae import train_vae
    t = time.time()
    logmel = np.load(os.path.join(feat_dir, "logmel.npy"), mmap_mode="r")
    logmag = np.load(os.path.join(feat_dir, "logmag.npy"), mmap_mode="r")
    sub = np.sort(np.random.default_rng([a["seed"], 5, k]).permutation(np.array(train_idx))[: a["vae_loops"]])
    val = np.array(val_idx)
    ckpt = os.path.join(a["out"], f"vae_{name}.pt")
    say = lambda *m: log(f"[{name}]", *m)  # noqa: E731
    if a["reuse_vae"] and os.path.exists(ckpt + ".json"):
        vae = VAE()
        vae.load_state_dict(torch.load(ckpt))
        vae.eval()
    else:
        vae, info = train_vae(logmel, logmag, sub, val, a["seed"] + k, a["vae_epochs"], beta=a["beta"],
                              threads=a["threads"], log=say)
        info["train_loops"] = int(len(sub))
        info["seconds"] = round(time.time() - t, 1)
        torch.save(vae.state_dict(), ckpt)
        json.dump(info, open(ckpt + ".json", "w"))
    dck = os.path.join(a["out"], f"decoder_{name}.pt")
    if not (a["reuse_decoder"] and os.path.exists(dck + ".json")):
        t2 = time.time()
        dec, info = train_decoder(vae, logmel, logmag, sub, val, a["seed"] + 20 + k, a["dec_epochs"],
                                  threads=a["threads"], log=say)
        info["seconds"] = round(time.time() - t2, 1)
        torch.save(dec.state_dict(), dck)
        json.dump(info, open(dck + ".json", "w"))
    return f"{name} codec ready ({time.time() - t:.0f} s)"


def evaluate_all(args, rows, idx, logmel, zv, z2, ce, mappers, packs_a, bpm_a, key_a, corpus_dir):
    from .baselines import Ridge, pooled
    from .bundle2 import SHIPPED_LABEL
    from .metrics import cosine_scores, evaluate, metadata_scores, random_scores
    from .train_mapper import map_all, pairs_of
    from .v1_baseline import v1_latents, v1_mapped
    pm = pooled(np.asarray(logmel))
    results = {}
    v1_cache = {}

    def v1_z(instrument, split):
        if (instrument, split) not in v1_cache:
            v1_cache[(instrument, split)] = v1_latents(args.v1_bundle, corpus_dir, rows, idx[(instrument, split)], instrument)
        return v1_cache[(instrument, split)]
    for src, tgt in DIRECTIONS:
        direction = f"{src}2{tgt}"
        tr = pairs_of(rows, idx[(src, "train")], idx[(tgt, "train")])
        best = None
        for alpha in (1e1, 1e2, 1e3, 1e4):
            r = Ridge(alpha).fit(pm[tr[:, 0]], pm[tr[:, 1]])
            v = evaluate(cosine_scores(r.predict(pm[idx[(src, "val")]]), pm[idx[(tgt, "val")]]),
                         packs_a[idx[(src, "val")]], bpm_a[idx[(src, "val")]], packs_a[idx[(tgt, "val")]],
                         bpm_a[idx[(tgt, "val")]])["R_mn"]
            if best is None or v < best[0]:
                best = (v, alpha, r)
        log(f"{direction} ridge alpha {best[1]:g} (val R_mn {best[0]:.4f})")
        for split in SPLITS:
            s_i, t_i = idx[(src, split)], idx[(tgt, split)]
            scorers = {
                "random": random_scores(len(s_i), len(t_i), args.seed),
                "metadata (bpm, key)": metadata_scores(bpm_a[s_i], key_a[s_i], bpm_a[t_i], key_a[t_i]),
                f"ridge log-mel (alpha={best[1]:g})": cosine_scores(best[2].predict(pm[s_i]), pm[t_i]),
            }
            if args.v1_bundle and os.path.isdir(args.v1_bundle):
                zs, zt = v1_z(src, split), v1_z(tgt, split)
                scorers["loopmatch-v1 (shipped bundle)"] = cosine_scores(v1_mapped(args.v1_bundle, zs, src, tgt), zt)
            scorers["MLP-Latent (L2), v2 VAE latents"] = cosine_scores(map_all(mappers[f"{direction}_l2"], zv[s_i]), zv[t_i])
            scorers["MLP-Latent + InfoNCE (v1's method), v2 VAE latents"] = cosine_scores(
                map_all(mappers[f"{direction}_contrastive"], zv[s_i]), zv[t_i])
            # the shipped v2 latents as Go stores and searches them: compatibility channels
            # pass through the mapper, the VAE channels are MLP-Latent (L2)'s prediction
            mapped = z2[s_i].copy()
            mapped[:, ce:] = map_all(mappers[f"{direction}_l2"], zv[s_i])
            scorers[SHIPPED_LABEL] = cosine_scores(mapped, z2[t_i])
            res = results.setdefault(direction, {}).setdefault(split, {})
            for setting in SETTINGS:
                res[setting] = {label: evaluate(sc, packs_a[s_i], bpm_a[s_i], packs_a[t_i], bpm_a[t_i], setting)
                                for label, sc in scorers.items()}
    return results


def corpus_stats(packs, rows, split):
    from collections import Counter
    return {
        "corpus": "v2 (train/loopmatch_train/corpus2.py)",
        "packs": len(packs),
        "loops": len(rows),
        "drum_loops": sum(r["instrument"] == "drum" for r in rows),
        "bass_loops": sum(r["instrument"] == "bass" for r in rows),
        "styles": dict(sorted(Counter(p.genre for p in packs).items())),
        "groove_families": dict(sorted(Counter(p.family for p in packs).items())),
        "bass_idioms": dict(sorted(Counter(p.idiom for p in packs).items())),
        "drum_sources": dict(sorted(Counter(p.drum_source for p in packs).items())),
        "bass_sources": dict(sorted(Counter(p.bass_source for p in packs).items())),
        "tempos": {str(k): v for k, v in sorted(Counter(p.bpm for p in packs).items())},
        "bars": {str(k): v for k, v in sorted(Counter(r["bars"] for r in rows).items())},
        "split_packs": dict(sorted(Counter(split.values()).items())),
        "transfer_split": "packs drawn with the held-out factors only: the euclid groove family, the hydrogen kits, "
                          "the FM bass family; no train or validation pack uses any of them",
    }


def print_tables(results):
    for direction, by_split in results.items():
        for split, by_setting in by_split.items():
            for setting, rows in by_setting.items():
                print(f"\n{direction} / {split} / {setting}")
                print(f"{'model':56s} {'seeds':>5s} {'pairs':>5s} {'R_mn':>6s} {'R_md':>6s} {'R@1':>6s} {'R@10':>6s}")
                for label, r in rows.items():
                    if "R_mn" not in r:
                        print(f"{label:56s} {r['seeds']:5d} (no seeds)")
                        continue
                    print(f"{label:56s} {r['seeds']:5d} {r['pairs']:5d} {r['R_mn']:6.3f} {r['R_md']:6.3f} "
                          f"{r['Recall@1']:6.3f} {r['Recall@10']:6.3f}")
    print(flush=True)


if __name__ == "__main__":
    main()
