"""SampleMatch (Lattner) on corpus v2: drum one-shots ranked by how well they fit a context
(a mix of a pack's other stems), with two encoders trained contrastively.

- context encoder: the mix's log-mel [128, 256] (4 s) -> a unit vector;
- sample encoder: the one-shot's log-mel [128, 62] (1 s) -> a unit vector in the same space;
- loss: NT-Xent over a batch of queries of one kind (every other kit's one-shot of that
  kind is a negative; packs sharing a kit never meet in a batch), plus VICReg's variance
  and covariance terms on both encoders' projections;
- on-the-fly sparse mixing: each stem of the context kept with probability 1/2 (at least
  one), at random gains; band masks on the context's spectrogram.

Data: oneshots.py (the kits the corpus rendered its drum loops from; contexts re-rendered
from them without the target's role, plus the pack's main bass loop). Train on the train
split, select on val, report on test and transfer (hydrogen kits and FM basses, never seen).

python -m loopmatch_train.samplematch --out train/out
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

from . import corpus2 as C2
from . import oneshots as O
from .common import setup
from .models import EPS, HOP, N_FFT, N_MELS, mel_filterbank
from .train_compat import band_mask


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


class LogMel(nn.Module):
    """audio [B, n] -> log-mel [B, 128, frames] with the codec's STFT (Hann, hop 341, no
    centering) and mel bank, the level removed (each example's mean log-mel subtracted)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True))
        self.register_buffer("mel", torch.tensor(mel_filterbank()))

    def forward(self, audio):
        spec = torch.stft(audio, N_FFT, HOP, N_FFT, self.window, center=False, return_complex=True).abs()
        x = torch.log(torch.matmul(self.mel, spec) + EPS)
        return x - x.mean(dim=(1, 2), keepdim=True)


class Encoder(nn.Module):
    """log-mel -> projection (for VICReg) and its unit vector (for retrieval)."""

    def __init__(self, ch: int = 128, dim: int = 128, stride: int = 4, dilations=(1, 2, 4)):
        super().__init__()
        self.front = LogMel()
        k = 2 * stride if stride > 1 else 3
        self.inp = nn.Conv1d(N_MELS, ch, k, stride=stride, padding=(k - stride) // 2 if stride > 1 else 1)
        self.ctx = nn.ModuleList([nn.Conv1d(ch, ch, 3, padding=d, dilation=d) for d in dilations])
        self.proj = nn.Sequential(nn.Linear(2 * ch, dim), nn.GELU(), nn.Linear(dim, dim))
        self.register_buffer("scale", torch.ones(1))

    def project(self, audio, mask=None):
        return self.from_logmel(self.front(audio), mask)

    def from_logmel(self, x, mask=None):
        """The projection of a log-mel whose level is removed (LogMel's, or graph_logmel's
        in an exported graph)."""
        x = x / self.scale
        if mask is not None:
            x = mask(x)
        h = F.gelu(self.inp(x))
        for c in self.ctx:
            h = h + F.gelu(c(h))
        return self.proj(torch.cat([h.mean(dim=2), h.amax(dim=2)], 1))

    def forward(self, audio):
        return F.normalize(self.project(audio), dim=1)


class SampleMatch(nn.Module):
    def __init__(self, dim: int = 128):
        super().__init__()
        self.context = Encoder(dim=dim, stride=4, dilations=(1, 2, 4, 8))
        self.sample = Encoder(dim=dim, stride=1, dilations=(1, 2, 4))


def vicreg_terms(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg's variance (hinge on each dimension's std at 1) and covariance (squared
    off-diagonal covariances / dim) terms."""
    z = z - z.mean(dim=0)
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    var = F.relu(1 - std).mean()
    n, d = z.shape
    cov = (z.T @ z) / max(n - 1, 1)
    off = cov - torch.diag(torch.diag(cov))
    return var, (off ** 2).sum() / d


class Data:
    """Queries per split, the one-shot bank, contexts (stems cached as float16)."""

    def __init__(self, out: str, seed: int, packs_n: int, corpus_dir: str, splits=("train", "val", "test", "transfer"),
                 real_kits: float = 0.0):
        packs = C2.make_corpus(seed, packs_n)
        split = C2.split_v2(packs, seed)
        self.packs = {p.name: p for p in packs}
        log("kits: synthesising and rendering the one-shots")
        self.kits = O.kits_for(packs, os.path.join(out, "samplematch"))
        kit_of = {}
        if real_kits:
            kit_of, extra = O.real_kit_substitutes(packs, split, real_kits, seed, cache_dir=os.path.join(out, "samplematch"))
            self.kits |= extra
            log(f"{len(extra)} training and validation packs play a processed real kit")
        self.bank = O.oneshot_bank(self.kits)
        self.split_of = split
        qs = O.queries(packs, split, self.kits, kit_of)
        self.queries = {s: [q for q in qs if q.split == s] for s in splits}
        self.corpus_dir = corpus_dir
        self._bass: dict[str, np.ndarray] = {}
        self.ctx = O.Contexts(self.packs, self.kits, self.bass_window, kit_of)
        # the candidates of a split: the one-shots of the kits its packs play
        self.kits_in = {s: sorted({q.kit for q in self.queries[s]}) for s in splits}

    def bass_window(self, p):
        from .audio_io import load_window
        lp = O.main_loop(p, "bass")
        path = os.path.join(self.corpus_dir, p.name, f"{lp.name}_{p.bpm}bpm_{p.key}.wav")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: render corpus v2 first (python -m loopmatch_train.run2)")
        return load_window(path)

    def stems16(self, pack):
        st = self.ctx.stems(pack)
        if st and next(iter(st.values())).dtype != np.float16:
            for k in st:
                st[k] = st[k].astype(np.float16)
        return st


def mix(data: Data, q, rng, sparse: bool, gains_db: float):
    """A query's context as training and evaluation read it: the stems summed, not
    normalised (the encoders remove the level)."""
    return O.mix_stems(data.stems16(q.pack), q.kind, rng, sparse, gains_db, np.float32, q.pack)[0]


def batches(data: Data, rng: np.random.Generator, batch: int):
    """Batches of one kind, one query per kit (no false negatives), kinds in proportion to
    their queries."""
    qs = data.queries["train"]
    by_kind: dict[str, list] = {}
    for q in qs:
        by_kind.setdefault(q.kind, []).append(q)
    kinds = sorted(k for k, v in by_kind.items() if len({q.kit for q in v}) >= 8)
    w = np.array([len(by_kind[k]) for k in kinds], float)
    w /= w.sum()
    while True:
        k = kinds[int(rng.choice(len(kinds), p=w))]
        pool = by_kind[k]
        order = rng.permutation(len(pool))
        seen, out = set(), []
        for i in order:
            q = pool[i]
            if q.kit not in seen:
                seen.add(q.kit)
                out.append(q)
                if len(out) == batch:
                    break
        yield k, out


@torch.no_grad()
def embed_contexts(model, data, qs, sparse: bool, seed: int, bs: int = 64) -> np.ndarray:
    model.eval()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, len(qs), bs):
        x = np.stack([mix(data, q, rng, sparse, 0.0) for q in qs[i:i + bs]])
        out.append(model.context(torch.from_numpy(x)).numpy())
    return np.concatenate(out)


@torch.no_grad()
def embed_bank(model, data, kind: str, kits: list[str]) -> np.ndarray:
    model.eval()
    x = np.stack([data.bank[kind][k] for k in kits])
    return model.sample(torch.from_numpy(x)).numpy()


def rank_metrics(ctx: np.ndarray, qs, cand: dict, min_candidates: int = 5) -> dict:
    """R_mn / R_md of each query's own kit's one-shot among the split's one-shots of its kind
    (cand: kind -> (kit ids, vectors)); ties count half, random is 0.5."""
    ranks, per_kind, per_source = [], {}, {}
    for v, q in zip(ctx, qs):
        kits, vecs = cand[q.kind]
        if len(kits) - 1 < min_candidates or q.kit not in kits:
            continue
        s = vecs @ v
        t = kits.index(q.kit)
        others = np.delete(s, t)
        r = (np.sum(others > s[t]) + 0.5 * np.sum(others == s[t])) / len(others)
        ranks.append(r)
        per_kind.setdefault(q.kind, []).append(r)
        per_source.setdefault(q.kit.split(":")[0], []).append(r)
    return {"R_mn": float(np.mean(ranks)) if ranks else float("nan"), "R_md": float(np.median(ranks)) if ranks else float("nan"),
            "queries": len(ranks), "per_kind": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_kind.items())},
            "per_kit_source": {k: {"R_mn": round(float(np.mean(v)), 4), "queries": len(v)} for k, v in sorted(per_source.items())}}


def evaluate_model(model, data, split: str, seed: int) -> dict:
    qs = data.queries[split]
    cand = {}
    for kind in {q.kind for q in qs}:
        kits = [k for k in data.kits_in[split] if k in data.bank.get(kind, {})]
        cand[kind] = (kits, embed_bank(model, data, kind, kits))
    return {m: rank_metrics(embed_contexts(model, data, qs, m == "sparse", seed), qs, cand) for m in ("full", "sparse")}


def spectral_baseline(data, split: str, seed: int) -> dict:
    """The nearest one-shot to the context by spectral colour: cosine between the mean
    log-mel (level removed) of the context and of each one-shot."""
    fe = LogMel()

    def colour(x):
        with torch.no_grad():
            m = fe(torch.from_numpy(np.stack(x))).mean(dim=2)
        return F.normalize(m - m.mean(dim=1, keepdim=True), dim=1).numpy()
    qs = data.queries[split]
    cand = {}
    for kind in {q.kind for q in qs}:
        kits = [k for k in data.kits_in[split] if k in data.bank.get(kind, {})]
        cand[kind] = (kits, colour([data.bank[kind][k] for k in kits]))
    out = {}
    for m in ("full", "sparse"):
        rng = np.random.default_rng(seed)
        ctx = np.concatenate([colour([mix(data, q, rng, m == "sparse", 0.0) for q in qs[i:i + 64]]) for i in range(0, len(qs), 64)])
        out[m] = rank_metrics(ctx, qs, cand)
    return out


def train(data: Data, seed: int, steps: int, batch: int, lr: float, tau: float, var_w: float, cov_w: float,
          sparse_p: float, gains_db: float, eval_every: int, threads: int = 1):
    setup(seed, threads)
    model = SampleMatch()
    rng = np.random.default_rng(seed)
    # one scale per encoder from training examples' log-mel
    with torch.no_grad():
        qs = data.queries["train"][:: max(1, len(data.queries["train"]) // 64)]
        xc = torch.from_numpy(np.stack([mix(data, q, rng, False, 0.0) for q in qs]))
        model.context.scale.fill_(float(model.context.front(xc).std()))
        xs = torch.from_numpy(np.stack([data.bank[q.kind][q.kit] for q in qs]))
        model.sample.scale.fill_(float(model.sample.front(xs).std()))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = batches(data, rng, batch)
    def mask(x):  # the towers' band masks, drawn from the training rng
        return band_mask(x, rng)
    best, best_state, hist, tot, t0 = None, None, [], 0.0, time.time()
    for step in range(1, steps + 1):
        model.train()
        kind, qs = next(gen)
        xc = np.stack([mix(data, q, rng, rng.random() < sparse_p, gains_db) for q in qs])
        xs = np.stack([data.bank[kind][q.kit] * np.float32(10 ** (rng.uniform(-6, 6) / 20)) for q in qs])
        pc = model.context.project(torch.from_numpy(xc), mask)
        ps = model.sample.project(torch.from_numpy(xs))
        zc, zs = F.normalize(pc, dim=1), F.normalize(ps, dim=1)
        logits = zc @ zs.T / tau
        tgt = torch.arange(len(qs))
        loss = 0.5 * (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.T, tgt))
        if var_w or cov_w:
            vc, cc = vicreg_terms(pc)
            vs, cs = vicreg_terms(ps)
            loss = loss + var_w * (vc + vs) + cov_w * (cc + cs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss)
        if step % eval_every == 0 or step == steps:
            v = evaluate_model(model, data, "val", seed + 1)
            sel = v["full"]["R_mn"] + v["sparse"]["R_mn"]
            hist.append({"step": step, "loss": round(tot / eval_every, 4), "val_full": round(v["full"]["R_mn"], 4),
                         "val_sparse": round(v["sparse"]["R_mn"], 4), "seconds": round(time.time() - t0, 1)})
            log(f"  samplematch step {step}: loss {tot / eval_every:.4f} val full {v['full']['R_mn']:.4f} "
                f"sparse {v['sparse']['R_mn']:.4f} ({time.time() - t0:.0f} s)")
            tot = 0.0
            if best is None or sel < best:
                best, best_state = sel, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model, {"steps": steps, "batch": batch, "lr": lr, "tau": tau, "vicreg_variance": var_w, "vicreg_covariance": cov_w,
                   "sparse_p": sparse_p, "gains_db": gains_db, "seed": seed, "best_val_select": best, "history": hist,
                   "seconds": round(time.time() - t0, 1)}


def graph_logmel(fe, audio):
    """LogMel for an exported graph: the codec's convolution STFT (models.FrontEnd: the same
    Hann window, hop and mel bank, in plain Conv/MatMul/Log ops) in place of torch.stft, the
    level removed."""
    x, _ = fe(audio)
    return x - x.mean(dim=(1, 2), keepdim=True)


class EncoderGraph(nn.Module):
    """An encoder for ONNX (graph_logmel in place of LogMel)."""

    def __init__(self, enc: Encoder):
        super().__init__()
        from .models import FrontEnd
        self.fe, self.enc = FrontEnd(), enc

    def forward(self, audio):
        return F.normalize(self.enc.from_logmel(graph_logmel(self.fe, audio)), dim=1)


def export(model: SampleMatch, data: Data, work: str, seed: int) -> dict:
    """context_encoder.onnx (audio [B, 88200] -> [B, 128]) and oneshot_encoder.onnx (audio
    [B, 22050] -> [B, 128]) in work/, checked against PyTorch on test contexts and one-shots
    with ONNX Runtime: the largest absolute difference of each."""
    from .export import _export, session
    rng = np.random.default_rng(seed)
    qs = data.queries["test"][:16]
    xc = np.stack([mix(data, q, rng, False, 0.0) for q in qs]).astype(np.float32)
    xs = np.stack([data.bank[q.kind][q.kit] for q in qs]).astype(np.float32)
    out = {}
    for name, enc, x in (("context_encoder", model.context, xc), ("oneshot_encoder", model.sample, xs)):
        g = EncoderGraph(enc).eval()
        path = os.path.join(work, f"{name}.onnx")
        _export(g, torch.from_numpy(x[:2]), path, "audio", "embedding")
        with torch.no_grad():
            ref, eager = g(torch.from_numpy(x)).numpy(), enc(torch.from_numpy(x)).numpy()
        got = session(path).run(["embedding"], {"audio": x})[0]
        out[name] = {"onnx_vs_torch": float(np.max(np.abs(ref - got))), "conv_stft_vs_torch_stft": float(np.max(np.abs(ref - eager)))}

    class Graphs(nn.Module):  # the exported encoders, evaluated as the model is
        def __init__(self):
            super().__init__()
            self.context, self.sample = EncoderGraph(model.context).eval(), EncoderGraph(model.sample).eval()
    out["metrics_of_the_exported_graphs"] = {s: evaluate_model(Graphs(), data, s, seed - 1) for s in ("test", "transfer")}
    return out


ROWS = {  # label -> overrides of the main row; the ablation rows train for --ablation-steps,
    # beside the main row's settings trained for as many ("all-ablation-steps")
    "samplematch": {},
    "all-ablation-steps": {},
    "no-vicreg": {"var_w": 0.0, "cov_w": 0.0},
    "no-sparse-mixing": {"sparse_p": 0.0},
}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--packs", type=int, default=2400)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--ablation-steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--var-w", type=float, default=1.0)
    ap.add_argument("--cov-w", type=float, default=0.04)
    ap.add_argument("--sparse-p", type=float, default=0.5)
    ap.add_argument("--gains-db", type=float, default=6.0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--only", default="", help="comma list of rows (samplematch, all-ablation-steps, no-vicreg, no-sparse-mixing)")
    ap.add_argument("--real-kits", type=float, default=0.0,
                    help="fraction of train/val packs with a synthesised kit that play a processed real kit instead")
    ap.add_argument("--label", default="", help="a name for the rows of this run (default: the row's own)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the saved checkpoints again instead of training")
    args = ap.parse_args(argv)
    work = os.path.join(args.out, "samplematch")
    os.makedirs(work, exist_ok=True)
    data = Data(args.out, args.seed, args.packs, os.path.join(args.out, "corpus"), real_kits=args.real_kits)
    log("queries per split", {s: len(v) for s, v in data.queries.items()},
        "kits per split", {s: len(v) for s, v in data.kits_in.items()})
    path = os.path.join(work, "results.json")
    results = json.load(open(path)) if os.path.exists(path) else {"rows": {}, "training": {}}
    results["rows"]["random"] = {"test": {"full": {"R_mn": 0.5, "R_md": 0.5}, "sparse": {"R_mn": 0.5, "R_md": 0.5}}}
    results["rows"]["spectral baseline"] = {s: spectral_baseline(data, s, args.seed + 2) for s in ("test", "transfer")}
    log("spectral baseline", json.dumps({s: {m: round(v[m]["R_mn"], 4) for m in v} for s, v in results["rows"]["spectral baseline"].items()}))
    only = {x for x in args.only.split(",") if x}
    for row, over in ROWS.items():
        if only and row not in only:
            continue
        label = args.label or row
        kw = dict(steps=args.steps if row == "samplematch" else args.ablation_steps, batch=args.batch, lr=args.lr,
                  tau=args.tau, var_w=args.var_w, cov_w=args.cov_w, sparse_p=args.sparse_p, gains_db=args.gains_db) | over
        ck = os.path.join(work, f"{label}.pt")
        if args.eval_only:
            if not os.path.exists(ck):
                continue
            st = torch.load(ck)
            model, info = SampleMatch(), st["info"]
            model.load_state_dict(st["state"])
            model.eval()
        else:
            log(f"training {label}", kw)
            model, info = train(data, args.seed + 90, eval_every=args.eval_every, **kw)
            info["real_kits"] = args.real_kits
            torch.save({"state": model.state_dict(), "info": info}, ck)
        res = {s: evaluate_model(model, data, s, args.seed + 2) for s in ("test", "transfer")}
        results["rows"][label], results["training"][label] = res, info
        log(label, json.dumps({s: {m: (round(v[m]["R_mn"], 4), round(v[m]["R_md"], 4)) for m in v} for s, v in res.items()}))
        results = save(path, results)
    results = save(path, results)
    ck = os.path.join(work, "samplematch.pt")
    if os.path.exists(ck) and (not only or "samplematch" in only) and not args.real_kits and not args.label:
        st = torch.load(ck)
        model = SampleMatch()
        model.load_state_dict(st["state"])
        model.eval()
        results["export"] = export(model, data, work, args.seed + 3)  # seed - 1: the evaluation's seed
        log("exported", json.dumps(results["export"]))
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results)


def save(path, results):
    """Writes results over what the file holds now (rows trained by another run with
    --only are kept), returns the merged results."""
    old = json.load(open(path)) if os.path.exists(path) else {"rows": {}, "training": {}}
    merged = old | {k: old.get(k, {}) | results[k] for k in ("rows", "training")}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(merged, f, indent=1)
    os.replace(tmp, path)
    return merged


def print_table(results):
    print("\none-shot retrieval: R_mn / R_md, full | sparse context (test ; transfer)")
    for label, res in results["rows"].items():
        cells = []
        for s in ("test", "transfer"):
            r = res.get(s)
            if r:
                cells.append(" | ".join(f"{r[m]['R_mn']:.3f} / {r[m]['R_md']:.3f}" for m in ("full", "sparse")))
        print(f"  {label:20s} {' ; '.join(cells)}")


if __name__ == "__main__":
    main()
