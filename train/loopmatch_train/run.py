"""The whole pipeline: corpus -> features -> VAEs -> mappers -> baselines -> eval -> export
-> golden fixtures -> bundle -> demo library.

python -m loopmatch_train.run --out train/out --bundle models/loopmatch-v1 --demo demo
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import corpus as C

SETTINGS = ["all", "same_bpm", "bpm3"]


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--packs", type=int, default=700)
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v1")
    ap.add_argument("--demo", default="demo")
    ap.add_argument("--vae-epochs", type=int, default=12)
    ap.add_argument("--mapper-epochs", type=int, default=60)
    ap.add_argument("--beta", type=float, default=1e-3)
    ap.add_argument("--skip-render", action="store_true", help="reuse an existing corpus")
    ap.add_argument("--skip-features", action="store_true")
    ap.add_argument("--gl-iters", type=int, default=16, help="fast Griffin-Lim iterations in the decoder graphs")
    ap.add_argument("--gl-momentum", type=float, default=0.99, help="fast Griffin-Lim momentum (0: plain Griffin-Lim)")
    ap.add_argument("--reuse-vae", action="store_true", help="load train/out/vae_*.pt instead of training (development)")
    ap.add_argument("--dec-arch", default="conv", help="shipped magnitude decoder: conv or res (train_decoder.py)")
    ap.add_argument("--dec-epochs", type=int, default=12)
    ap.add_argument("--dec-w-level", type=float, default=10.0)
    ap.add_argument("--dec-w-flux", type=float, default=10.0)
    ap.add_argument("--dec-noise", type=float, default=1.0, help="posterior sampling scale when training the decoder")
    ap.add_argument("--reuse-decoder", action="store_true", help="load train/out/decoder_*.pt instead of training (development)")
    args = ap.parse_args(argv)
    t_start = time.time()
    durations = {}
    os.makedirs(args.out, exist_ok=True)
    corpus_dir = os.path.join(args.out, "corpus")
    feat_dir = os.path.join(args.out, "features")

    # 1. corpus
    t = time.time()
    packs = C.make_corpus(args.seed, args.packs)
    split = C.split_packs([p.name for p in packs], args.seed)
    if not (args.skip_render and os.path.exists(os.path.join(corpus_dir, "metadata.csv"))):
        from .render import render_corpus
        log(f"rendering {len(packs)} packs")
        render_corpus(packs, split, corpus_dir)
        with open(os.path.join(corpus_dir, "packs.json"), "w") as f:
            json.dump([p.meta() for p in packs], f, indent=0)
    durations["corpus_s"] = round(time.time() - t, 1)
    log(f"corpus ready ({durations['corpus_s']} s)")

    # 2. features
    import torch  # noqa: E402  (heavy imports after the light corpus step)
    from .features import load_or_compute
    t = time.time()
    rows, logmel, logmag = load_or_compute(corpus_dir, feat_dir, args.skip_features)
    durations["features_s"] = round(time.time() - t, 1)
    log(f"features ready: {len(rows)} loops ({durations['features_s']} s)")

    col, idx = C.columns(rows)
    inst, spl, packs_a, bpm_a, key_a = (col[k] for k in ("instrument", "split", "pack", "bpm", "key"))
    stats = corpus_stats(packs, rows, split)
    log("corpus stats", json.dumps(stats))

    # 3. VAEs
    from .train_vae import train_vae, encode_all
    vaes, vae_info, z = {}, {}, np.zeros((len(rows), 16, 64), np.float32)
    for k, name in enumerate(("drum", "bass")):
        t = time.time()
        all_i = np.where(inst == name)[0]
        ckpt = os.path.join(args.out, f"vae_{name}.pt")
        if args.reuse_vae and os.path.exists(ckpt):
            from .models import VAE
            vae = VAE()
            vae.load_state_dict(torch.load(ckpt))
            vae.eval()
            info = (json.load(open(ckpt + ".json")) if os.path.exists(ckpt + ".json") else
                    {"beta": args.beta, "epochs": args.vae_epochs, "history": [{"note": "reused checkpoint"}]})
        else:
            log(f"training {name} VAE on {len(idx[(name, 'train')])} loops")
            vae, info = train_vae(logmel, logmag, idx[(name, "train")], idx[(name, "val")], args.seed + k,
                                  args.vae_epochs, beta=args.beta, log=log)
        z[all_i] = encode_all(vae, logmel[all_i])
        info["seconds"] = round(time.time() - t, 1)
        vaes[name], vae_info[name] = vae, info
        torch.save(vae.state_dict(), ckpt)
        json.dump(info, open(ckpt + ".json", "w"))
        durations[f"vae_{name}_s"] = info["seconds"]
    np.save(os.path.join(args.out, "z.npy"), z)

    # 3b. the shipped magnitude decoders, retrained on the frozen encoders (z unchanged)
    from .models import make_decoder
    from .train_decoder import train_decoder
    decoders, decoder_info = {}, {}
    for k, name in enumerate(("drum", "bass")):
        t = time.time()
        ckpt = os.path.join(args.out, f"decoder_{name}.pt")
        if args.reuse_decoder and os.path.exists(ckpt) and os.path.exists(ckpt + ".json"):
            info = json.load(open(ckpt + ".json"))
            dec = make_decoder(info["arch"], info["channels"])
            dec.load_state_dict(torch.load(ckpt))
            dec.eval()
        else:
            log(f"training the {name} decoder on the frozen encoder ({args.dec_arch}, {args.dec_epochs} epochs)")
            dec, info = train_decoder(vaes[name], logmel, logmag, idx[(name, "train")], idx[(name, "val")],
                                      args.seed + 20 + k, args.dec_epochs, arch=args.dec_arch, w_level=args.dec_w_level,
                                      w_flux=args.dec_w_flux, noise=args.dec_noise, log=log)
            torch.save(dec.state_dict(), ckpt)
            json.dump(info, open(ckpt + ".json", "w"))
        decoders[name], decoder_info[name] = dec, info
        durations[f"decoder_{name}_s"] = round(time.time() - t, 1)

    # 4. mappers
    from .train_mapper import train_mapper, map_all
    mappers, mapper_info = {}, {}
    for src, tgt in (("drum", "bass"), ("bass", "drum")):
        for kind in ("l2", "contrastive"):
            t = time.time()
            name = f"{src}2{tgt}_{kind}"
            log(f"training {name}")
            m, info = train_mapper(z, z, rows, idx[(src, "train")], idx[(tgt, "train")], idx[(src, "val")],
                                   idx[(tgt, "val")], args.seed + 10, kind, epochs=args.mapper_epochs, log=log)
            info["seconds"] = round(time.time() - t, 1)
            mappers[name], mapper_info[name] = m, info
            torch.save(m.state_dict(), os.path.join(args.out, f"mapper_{name}.pt"))
            durations[f"mapper_{name}_s"] = info["seconds"]

    # 5. baselines and evaluation on the test packs (reported once)
    from .baselines import Ridge, pooled
    from .metrics import cosine_scores, evaluate, metadata_scores, random_scores
    from .train_mapper import pairs_of
    pm = pooled(np.asarray(logmel))
    results, chosen = {}, {}
    for src, tgt in (("drum", "bass"), ("bass", "drum")):
        direction = f"{src}2{tgt}"
        tr_pairs = pairs_of(rows, idx[(src, "train")], idx[(tgt, "train")])
        # ridge alpha chosen on the validation packs
        best = None
        for alpha in (1e1, 1e2, 1e3, 1e4):
            r = Ridge(alpha).fit(pm[tr_pairs[:, 0]], pm[tr_pairs[:, 1]])
            v = evaluate(cosine_scores(r.predict(pm[idx[(src, "val")]]), pm[idx[(tgt, "val")]]),
                         packs_a[idx[(src, "val")]], bpm_a[idx[(src, "val")]], packs_a[idx[(tgt, "val")]],
                         bpm_a[idx[(tgt, "val")]])["R_mn"]
            if best is None or v < best[0]:
                best = (v, alpha, r)
        log(f"{direction} ridge alpha {best[1]} val R_mn {best[0]:.4f}")
        s_i, t_i = idx[(src, "test")], idx[(tgt, "test")]
        scorers = {
            "random": random_scores(len(s_i), len(t_i), args.seed),
            "metadata (bpm, key)": metadata_scores(bpm_a[s_i], key_a[s_i], bpm_a[t_i], key_a[t_i]),
            f"linear (ridge log-mel, alpha={best[1]:g})": cosine_scores(best[2].predict(pm[s_i]), pm[t_i]),
        }
        for kind in ("l2", "contrastive"):
            m = mappers[f"{direction}_{kind}"]
            label = "MLP-Latent (L2)" if kind == "l2" else "MLP-Latent + InfoNCE"
            scorers[label] = cosine_scores(map_all(m, z[s_i]), z[t_i])
        results[direction] = {}
        for setting in SETTINGS:
            results[direction][setting] = {}
            for label, sc in scorers.items():
                results[direction][setting][label] = evaluate(sc, packs_a[s_i], bpm_a[s_i], packs_a[t_i], bpm_a[t_i], setting)
        # ship the variant that ranks better on the validation packs
        vals = {k: mapper_info[f"{direction}_{k}"]["best_val_R_mn"] for k in ("l2", "contrastive")}
        chosen[direction] = min(vals, key=vals.get)
        log(f"{direction}: shipping {chosen[direction]} (val R_mn {vals})")
        print_table(direction, results[direction])
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    # 6. export, golden fixtures, bundle, demo
    from .bundle import write_bundle
    from .demo import write_demo
    t = time.time()
    training = {
        "seed": args.seed, "command": "make models", "corpus": stats,
        "vae": {k: {kk: vv for kk, vv in v.items() if kk != "history"} | {"final": v["history"][-1]} for k, v in vae_info.items()},
        "decoders": {k: {kk: vv for kk, vv in v.items() if kk != "history"} | {"final": v["history"][-1]} for k, v in decoder_info.items()},
        "mappers": {k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in mapper_info.items()},
        "shipped_mappers": chosen, "durations_s": durations, "threads": 2,
        "gl_iters": args.gl_iters, "gl_momentum": args.gl_momentum,
    }
    write_bundle(args.bundle, args.out, vaes, decoders, {d: mappers[f"{d}_{k}"] for d, k in chosen.items()},
                 results, training, corpus_dir, rows, spl, gl_iters=args.gl_iters, gl_momentum=args.gl_momentum, log=log)
    # decoder evaluation (issue 6): reconstruction, onsets, tempo following, docs/decoder figures,
    # and the bundle card's "Decoder" section
    from .decoder_eval import evaluate_bundle
    evaluate_bundle(args.bundle, corpus_dir, os.path.join(args.out, "decoder_eval.json"), "docs/decoder", log=log)
    durations["export_s"] = round(time.time() - t, 1)
    write_demo(args.demo, corpus_dir, rows, spl, log=log)
    total = time.time() - t_start
    log(f"done in {total / 60:.1f} min")


def corpus_stats(packs, rows, split):
    from collections import Counter
    return {
        "packs": len(packs),
        "loops": len(rows),
        "drum_loops": sum(r["instrument"] == "drum" for r in rows),
        "bass_loops": sum(r["instrument"] == "bass" for r in rows),
        "genres": dict(sorted(Counter(p.genre for p in packs).items())),
        "tempos": dict(sorted(Counter(p.bpm for p in packs).items())),
        "bars": dict(sorted(Counter(r["bars"] for r in rows).items())),
        "drum_sources": dict(Counter(p.drum_source for p in packs)),
        "split_packs": dict(Counter(split.values())),
    }


def print_table(direction, res):
    for setting, rows in res.items():
        print(f"\n{direction} / {setting}")
        print(f"{'model':44s} {'seeds':>5s} {'pairs':>5s} {'R_mn':>6s} {'R_md':>6s} {'R@1':>6s} {'R@10':>6s} {'ILD@5':>6s} {'ILD@10':>6s}")
        for label, r in rows.items():
            if "R_mn" not in r:
                print(f"{label:44s} {r['seeds']:5d} (no seeds)")
                continue
            print(f"{label:44s} {r['seeds']:5d} {r['pairs']:5d} {r['R_mn']:6.3f} {r['R_md']:6.3f} {r['Recall@1']:6.3f} "
                  f"{r['Recall@10']:6.3f} {r['ILD@5']:6.3f} {r['ILD@10']:6.3f}")
    print(flush=True)


if __name__ == "__main__":
    main()
