"""Context -> bass loop retrieval (issue 20: "the same context encoder with the loop encoders
gives context -> loop retrieval ... reported beside single-seed Drum2Bass on the same pairs").

A query is a pack of a split; its context is the pack's main drum loop split into one stem per
drum role, re-rendered from the kit the corpus rendered it from (corpus v2's own synthesised
kit, the FluidR3_GM kit's one-shots, the hydrogen kit), without the corpus's processing chain;
a full context holds every stem, a sparse one a random non-empty subset (SampleMatch's sparse
mixing). The candidates are every bass loop of the split, as the shipped bi-encoder stores them
(its latents); the right answers are the pack's own bass loops, as in Drum2Bass's evaluation
(metrics.evaluate: R_mn over all candidates, within 3 % of the tempo, at the same tempo).

Rankers, each scored on the same queries and candidates:
- `drum2bass (single seed)`: the pack's main drum loop, the corpus file, through the shipped
  drum encoder and Drum2Bass mapper (what recommend does today);
- `context via drum encoder`: the context mix through the same drum encoder and mapper (the
  loop encoders as the context encoder: a mix of drum stems is a drum loop);
- `context encoder (trained)`: SampleMatch's context-encoder shape trained on the train split's
  contexts to predict the pack's bass latents (InfoNCE against the split's stored bass
  latents), selected on val; only with --train.

python -m loopmatch_train.context_bass --out train/out [--train]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from . import corpus as C
from . import corpus2 as C2
from . import oneshots as O
from . import render as R
from .metrics import cosine_scores, evaluate

SETTINGS = ("all", "bpm3", "same_bpm")
SPLITS = ("val", "test", "transfer")


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


def corpus_kit(p, cache_dir: str) -> dict:
    """The kit the corpus rendered a pack's drums from."""
    from . import synth as S
    if p.drum_source == "synth":
        return S.drum_kit(np.random.default_rng([int(p.drum_kit), 10]))
    if p.drum_source == "hydrogen":
        return R.hydrogen_kit(str(p.drum_kit))
    return O.gm_kit(int(p.drum_kit), cache_dir)


class Stems:
    """Per pack: its main drum loop's stems (role -> window), cached as float16."""

    def __init__(self, packs: dict, cache_dir: str):
        self.packs, self.cache_dir = packs, cache_dir
        self._kits: dict[str, dict] = {}
        self._stems: dict[str, dict] = {}

    def __call__(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._stems:
            p = self.packs[name]
            kid = O.kit_id(p)
            if kid not in self._kits:
                self._kits[kid] = corpus_kit(p, self.cache_dir)
            kit = self._kits[kid]
            lp = O.main_loop(p, "drum")
            self._stems[name] = {r: O.stem(kit, p, lp, r).astype(np.float16) for r in O.roles_played(lp) if r in kit}
        return self._stems[name]


def context(stems: dict, rng: np.random.Generator | None, sparse: bool) -> np.ndarray:
    """The mix of the stems (a random non-empty subset when sparse), normalised as the corpus is."""
    x, _ = O.mix_stems(stems, "", rng, sparse, 0.0)
    return R.normalise(x)


def run_onnx(path: str, x: np.ndarray, batch: int = 32) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + batch].astype(np.float32)})[0] for i in range(0, len(x), batch)])


def build_net():
    import torch
    from torch import nn

    from .samplematch import Encoder

    class ContextToBass(nn.Module):
        """A context mix [B, 88200] -> a vector in the bass collection's space [B, 24, 64]
        (SampleMatch's context-encoder shape with a wider projection)."""

        def __init__(self):
            super().__init__()
            self.enc = Encoder(ch=128, dim=256, stride=4, dilations=(1, 2, 4, 8))
            self.head = nn.Linear(256, 24 * 64)

        def forward(self, audio, mask=None):
            return self.head(torch.nn.functional.gelu(self.enc.project(audio, mask))).view(-1, 24, 64)
    return ContextToBass()


def graph_of(net):
    """The trained model for ONNX (samplematch.graph_logmel in place of LogMel)."""
    import torch.nn.functional as F
    from torch import nn

    from .models import FrontEnd
    from .samplematch import graph_logmel

    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.fe, self.net = FrontEnd(), net

        def forward(self, audio):
            return self.net.head(F.gelu(self.net.enc.from_logmel(graph_logmel(self.fe, audio)))).view(-1, 24, 64)
    return G().eval()


def train_model(args, col, idx, variant, stems, teacher_fn, val_eval, work):
    """InfoNCE of the predicted vector against every stored bass latent of the train split
    (the pack's own bass loops are the positives) plus a distillation term toward the shipped
    mapper's output for the pack's full context; sparse mixing and gains as SampleMatch."""
    import copy

    import torch
    import torch.nn.functional as F

    from .common import setup
    from .train_compat import band_mask
    setup(args.seed, 1)
    d = np.load(os.path.join(args.out, "nlc5", "biencoder_train.npz"))
    zb = torch.from_numpy(np.asarray(d["bass|train|z"], np.float32)).reshape(len(d["bass|train|z"]), -1)
    zb = F.normalize(zb, dim=1)
    bpacks = col["pack"][idx[("bass", "train")]]
    di = idx[("drum", "train")]
    qpacks = [p for p in col["pack"][di][variant[di] == "main"] if p in set(bpacks)]
    pos = {p: torch.from_numpy(bpacks == p) for p in qpacks}
    log("train queries", len(qpacks), "bass latents", len(zb), "teacher vectors...")
    teach = {p: t for p, t in zip(qpacks, teacher_fn(qpacks))}
    net = build_net()
    rng = np.random.default_rng([args.seed, 60])
    with torch.no_grad():
        x = torch.from_numpy(np.stack([context(stems(p), rng, False) for p in qpacks[:64]]))
        net.enc.scale.fill_(float(net.enc.front(x).std()))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    best, best_state, hist, tot, t0 = None, None, [], 0.0, time.time()
    for step in range(1, args.steps + 1):
        net.train()
        js = rng.choice(len(qpacks), size=args.batch, replace=False)
        xs = []
        for j in js:
            st = stems(qpacks[j])
            x, _ = O.mix_stems(st, "", rng, rng.random() < args.sparse_p, 6.0)
            xs.append(R.normalise(x))
        pred = net(torch.from_numpy(np.stack(xs)), lambda m: band_mask(m, rng)).reshape(len(js), -1)
        p = F.normalize(pred, dim=1)
        logits = p @ zb.T / args.tau
        pm = torch.stack([pos[qpacks[j]] for j in js])
        nce = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~pm, -1e9), 1)).mean()
        t = torch.from_numpy(np.stack([teach[qpacks[j]] for j in js]))
        distil = (1 - (p * F.normalize(t, dim=1)).sum(1)).mean()
        loss = nce + args.distil * distil
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss)
        if step % args.eval_every == 0 or step == args.steps:
            v = val_eval(net)
            sel = float(np.mean([v[m][s] for m in ("full", "sparse") for s in ("all", "same_bpm")]))
            hist.append({"step": step, "loss": round(tot / args.eval_every, 4), "val": v, "select": round(sel, 4),
                         "seconds": round(time.time() - t0, 1)})
            log(f"step {step}: loss {tot / args.eval_every:.4f} val {json.dumps(v)} select {sel:.4f} ({time.time() - t0:.0f} s)")
            tot = 0.0
            if best is None or sel < best:
                best, best_state = sel, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    net.eval()
    info = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "tau": args.tau, "distil": args.distil,
            "sparse_p": args.sparse_p, "seed": args.seed, "best_val_select": best, "history": hist}
    torch.save({"state": net.state_dict(), "info": info}, os.path.join(work, "context_bass.pt"))
    return net, info


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", action="store_true", help="train the context encoder too")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--distil", type=float, default=1.0)
    ap.add_argument("--sparse-p", type=float, default=0.6)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--bundle", default="models/loopmatch-v2")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--packs", type=int, default=2400)
    args = ap.parse_args(argv)
    work = os.path.join(args.out, "samplematch")
    os.makedirs(work, exist_ok=True)
    from .features import load_or_compute
    rows, _, _ = load_or_compute(os.path.join(args.out, "corpus"), os.path.join(args.out, "features"), True)
    col, idx = C.columns(rows, ("train",) + SPLITS)
    variant = np.array([r["variant"] for r in rows])
    bi = {tuple(k.split("|")): v for d in [np.load(os.path.join(args.out, "nlc", "biencoder.npz"))] for k, v in
          [(k, d[k]) for k in d.files]}
    packs = C2.make_corpus(args.seed, args.packs)
    by_name = {p.name: p for p in packs}
    stems = Stems(by_name, work)
    man = json.load(open(os.path.join(args.bundle, "manifest.json")))
    f_enc = next(m["file"] for m in man["models"] if m["role"] == "encoder" and m["instruments"] == ["drum"])
    f_map = next(m["file"] for m in man["models"] if m["role"] == "mapper" and m["instruments"] == ["drum", "bass"])
    enc_path, map_path = os.path.join(args.bundle, f_enc), os.path.join(args.bundle, f_map)

    def via_encoder(x):
        return run_onnx(map_path, run_onnx(enc_path, x))

    splits = {}
    for split in ("train",) + SPLITS:
        di, b_rows = idx[("drum", split)], idx[("bass", split)]
        main_at = np.where(variant[di] == "main")[0]  # positions within the split's drum rows
        splits[split] = dict(main_at=main_at, qpacks=col["pack"][di][main_at], qbpm=col["bpm"][di][main_at].astype(float),
                             cpacks=col["pack"][b_rows], cbpm=col["bpm"][b_rows].astype(float))

    def contexts(split, mode):
        rng = np.random.default_rng([args.seed, 50])
        return np.stack([context(stems(p), rng, mode == "sparse") for p in splits[split]["qpacks"]])

    def score(split, vecs):
        q = splits[split]
        sc = cosine_scores(vecs, bi[("bass", split, "z")])
        return {s: round(evaluate(sc, q["qpacks"], q["qbpm"], q["cpacks"], q["cbpm"], s)["R_mn"], 4) for s in SETTINGS}

    def run_net(net, x, bs=64):
        import torch
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(x[i:i + bs])).numpy() for i in range(0, len(x), bs)])

    results = {"queries": {}, "rows": {}}
    rows_out = results["rows"]
    for split in SPLITS:
        q = splits[split]
        results["queries"][split] = {"packs": int(len(q["qpacks"])), "bass_candidates": int(len(q["cpacks"]))}
        rows_out.setdefault("drum2bass (single seed)", {})[split] = score(split, bi[("drum", split, "mapped")][q["main_at"]])
        for mode in ("full", "sparse"):
            rows_out.setdefault(f"context via drum encoder ({mode})", {})[split] = score(split, via_encoder(contexts(split, mode)))
        log(split, json.dumps({k: v[split] for k, v in rows_out.items()}))
    if args.train:
        val_x = {m: contexts("val", m) for m in ("full", "sparse")}

        def val_eval(net):
            net.eval()
            return {m: score("val", run_net(net, val_x[m])) for m in ("full", "sparse")}

        def teacher(qp):
            rng = np.random.default_rng([args.seed, 51])
            return via_encoder(np.stack([context(stems(p), rng, False) for p in qp])).reshape(len(qp), -1)
        net, info = train_model(args, col, idx, variant, stems, teacher, val_eval, work)
        results["training"] = info
        for split in SPLITS:
            for mode in ("full", "sparse"):
                rows_out.setdefault(f"context encoder, trained ({mode})", {})[split] = score(split, run_net(net, contexts(split, mode)))
        # ONNX: audio [B, 88200] -> [B, 24, 64], checked against PyTorch
        import torch

        from .export import _export, session
        g = graph_of(net)
        path = os.path.join(work, "context2bass.onnx")
        x = contexts("test", "sparse")[:16].astype(np.float32)
        _export(g, torch.from_numpy(x[:2]), path, "audio", "z_out")
        with torch.no_grad():
            ref, eager = g(torch.from_numpy(x)).numpy(), net(torch.from_numpy(x)).numpy()
        got = session(path).run(["z_out"], {"audio": x})[0]
        results["export"] = {"onnx_vs_torch": float(np.max(np.abs(ref - got))),
                             "conv_stft_vs_torch_stft": float(np.max(np.abs(ref - eager)))}
        for split in SPLITS:
            for mode in ("full", "sparse"):
                results["export"][f"{split} {mode}"] = score(split, run_onnx(path, contexts(split, mode)))
        log("export", json.dumps(results["export"]))
    with open(os.path.join(work, "context_bass.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\ncontext -> bass loop: R_mn over all candidates / BPM +-3% / same tempo (random 0.5)")
    for label, res in results["rows"].items():
        print(f"  {label:36s} " + " ; ".join(f"{s} " + " / ".join(f"{res[s][t]:.3f}" for t in SETTINGS) for s in SPLITS if s in res))


if __name__ == "__main__":
    main()
