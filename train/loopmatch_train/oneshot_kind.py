"""What kind of drum one-shot a short hit is (kick, snare, clap, rim, hat, open_hat, ride,
crash, tom, perc), from its first second of audio: for ingest, when a one-shot's name does not
say (issue 20: "by the audio when names do not say").

Data: the one-shots of corpus v2's kits (oneshots.kits_for: coherent synthesised kits in place
of the corpus's synth kits, the FluidR3_GM kits; hydrogen kits for the transfer split only),
plus processed copies of the real kits training may use (oneshots.REAL_TRAIN_KITS: the
FluidR3_GM presets and the three hydrogen kits the transfer split never plays). A kit belongs to
the split of the packs that play it; FluidR3_GM kits that training also plays are reported
apart on test ("seen kits"). Augmentation: varispeed, gain, onset delay, a shortened decay,
filters, a little noise, polarity; batches draw half their one-shots from the processed real
kits. Trained on the train split; selected on the mean accuracy over the val split's kits and
over processed copies of two real training kits held out of training (--val-real: a FluidR3_GM
preset and a hydrogen kit the transfer split never plays); reported on test and transfer (the
transfer split's 11 hydrogen kits: never heard, never used to choose).

Model: the SampleMatch sample encoder's shape (log-mel of the 1 s one-shot -> dilated 1-d
convolutions -> mean and max over time) with a linear head: logits over KIND_CLASSES.
Exported to ONNX (audio [B, 22050] at 22.05 kHz -> logits [B, 10]).

python -m loopmatch_train.oneshot_kind --out train/out
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
from . import render as R
from .common import setup

KIND_CLASSES = ("kick", "snare", "clap", "rim", "hat", "open_hat", "ride", "crash", "tom", "perc")
# the corpus's drum roles -> the classes ingest stores
ROLE_TO_KIND = {"kick": "kick", "snare": "snare", "clap": "clap", "rim": "rim", "hat_c": "hat", "hat_o": "open_hat",
                "ride": "ride", "crash": "crash", "tom_l": "tom", "tom_h": "tom", "perc": "perc"}


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


# FluidR3_GM's other notes of each kind, beside render.GM_DRUM_NOTES' one (real training
# kits only: more real sounds of each kind)
GM_MORE_NOTES = {"kick": [35], "snare": [40], "hat_c": [44], "ride": [59, 53], "crash": [57], "tom_l": [41, 43],
                 "tom_h": [47, 48], "perc": [54, 60, 61, 62, 63, 64, 69, 70, 75, 76]}


def gm_more(program: int, cache_dir: str) -> dict[str, list[np.ndarray]]:
    """Role -> the kit's one-shots of GM_MORE_NOTES (rendered by fluidsynth once, cached)."""
    path = os.path.join(cache_dir, f"gm_more_{program}.npz")
    if os.path.exists(path):
        d = np.load(path)
        out: dict[str, list[np.ndarray]] = {}
        for k in d.files:
            out.setdefault(k.split("|")[0], []).append(d[k])
        return out
    n = int(2.5 * O.SR)
    jobs = [(f"{role}|{note}", 9, int(program), [(0.0, 0.1, note, 100)], n)
            for role, notes in GM_MORE_NOTES.items() for note in notes]
    audio = R.render_fluid_chunk(jobs)
    keep = {}
    for name, x in audio.items():
        x = x[: int(1.5 * O.SR)]
        peak = float(np.max(np.abs(x)))
        if peak > 1e-4:  # a note the preset does not play is silence
            keep[name] = (x / peak).astype(np.float32)
    np.savez(path, **keep)
    return gm_more(program, cache_dir)


def examples(kits: dict[str, dict], kit_ids) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """Every one-shot of the kits (not a borrowed role, not silence): audio (ONESHOT
    samples), class index, kit id."""
    xs, ys, ks = [], [], []
    for kid in kit_ids:
        for role, x in kits[kid].items():
            if role in ROLE_TO_KIND and not O.borrowed(kits[kid], role) and float(np.max(np.abs(x))) > 1e-4:
                xs.append(O.fit(x, O.ONESHOT))
                ys.append(KIND_CLASSES.index(ROLE_TO_KIND[role]))
                ks.append(kid)
    return xs, np.array(ys), ks


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random variant of a one-shot, as libraries hold them: tuned, delayed, shortened,
    filtered, at any level, with a little noise."""
    from . import synth as S
    x = np.asarray(x, np.float64)
    r = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    m = max(8, int(round(len(x) / r)))
    y = np.interp(np.arange(m) * r, np.arange(len(x)), x)
    if rng.random() < 0.3:  # a shortened decay
        n = len(y)
        cut = int(n * rng.uniform(0.1, 0.6))
        fade = np.ones(n)
        fade[cut:] = np.exp(-np.arange(n - cut) / (0.02 * O.SR))
        y = y * fade
    if rng.random() < 0.4:
        y = S._lp(y, float(rng.uniform(3000, 10000)))
    if rng.random() < 0.3:
        y = S._hp(y, float(rng.uniform(30, 300)))
    d = int(rng.uniform(0, 0.02) * O.SR) if rng.random() < 0.5 else 0
    y = np.concatenate([np.zeros(d), y])
    peak = np.max(np.abs(y)) + 1e-12
    y = y / peak * 10 ** (rng.uniform(-24, 0) / 20)
    if rng.random() < 0.3:
        y = y + rng.normal(0, 1, len(y)) * 10 ** (rng.uniform(-80, -50) / 20)
    if rng.random() < 0.5:
        y = -y
    return O.fit(y.astype(np.float32), O.ONESHOT)


class KindNet(nn.Module):
    def __init__(self, ch: int = 64):
        super().__init__()
        from .samplematch import Encoder
        self.enc = Encoder(ch=ch, dim=64, stride=1, dilations=(1, 2, 4))
        self.head = nn.Linear(64, len(KIND_CLASSES))

    def forward(self, audio):
        return self.head(F.gelu(self.enc.project(audio)))


class KindGraph(nn.Module):
    """KindNet for ONNX: the codec's convolution STFT in place of torch.stft (as
    samplematch.EncoderGraph)."""

    def __init__(self, net: KindNet):
        super().__init__()
        from .models import FrontEnd
        self.fe, self.net = FrontEnd(), net

    def forward(self, audio):
        from .samplematch import graph_logmel
        return self.net.head(F.gelu(self.net.enc.from_logmel(graph_logmel(self.fe, audio))))


@torch.no_grad()
def predict(model, xs: list[np.ndarray], bs: int = 256) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(np.stack(xs[i:i + bs]))).numpy() for i in range(0, len(xs), bs)])


def scores(logits: np.ndarray, ys: np.ndarray) -> dict:
    pred = logits.argmax(1)
    conf = np.zeros((len(KIND_CLASSES), len(KIND_CLASSES)), int)
    for t, p in zip(ys, pred):
        conf[t, p] += 1
    per = {KIND_CLASSES[i]: round(float(conf[i, i] / conf[i].sum()), 3) for i in range(len(KIND_CLASSES)) if conf[i].sum()}
    return {"accuracy": round(float(np.mean(pred == ys)), 4), "n": int(len(ys)), "per_kind_recall": per,
            "confusion": conf.tolist()}


# kind words in real one-shots' file names (for reporting on held-out real sounds only)
NAME_KIND = [("kick", ("kick", "bassdrum", "bd_", "drum_bass_")), ("clap", ("clap",)), ("rim", ("rim", "sidestick")),
             ("snare", ("snare", "sn_", "sd_")), ("open_hat", ("hihat_open", "cymbal_open", "hat_open", "hh_open")),
             ("hat", ("hihat_closed", "cymbal_closed", "hat_closed", "hh_closed", "hihat_foot", "cymbal_pedal")),
             ("ride", ("ride",)), ("crash", ("crash", "splash")), ("tom", ("tom",)),
             ("perc", ("shaker", "cowbell", "clav", "conga", "bongo", "tamb", "perc_"))]


def name_kind(name: str) -> str | None:
    n = name.lower()
    for kind, words in NAME_KIND:
        if any(w in n for w in words):
            return kind
    return None


def report_real(onnx_path: str, dirs: list[str]) -> dict:
    """Accuracy on real one-shots whose names say their kind (held out: reported, never
    used to train or choose): the first second at the bundle rate, as ingest reads it."""
    import soundfile as sf
    from math import gcd

    from scipy.signal import resample_poly

    from .export import session
    files = sorted(os.path.join(d, f) for d in dirs if os.path.isdir(d) for f in os.listdir(d)
                   if f.lower().endswith((".wav", ".ogg", ".flac")) and name_kind(f))
    xs, ys, names, unreadable = [], [], [], []
    for f in files:
        try:
            x, sr = sf.read(f, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as e:
            unreadable.append(f"{os.path.basename(f)}: {e}")
            continue
        x = x.mean(axis=1)[: 2 * sr]
        if sr != O.SR:
            g = gcd(sr, O.SR)
            x = resample_poly(x, O.SR // g, sr // g).astype(np.float32)
        xs.append(O.fit(x, O.ONESHOT))
        ys.append(KIND_CLASSES.index(name_kind(os.path.basename(f))))
        names.append(os.path.basename(f))
    if not xs:
        return {"n": 0}
    logits = session(onnx_path).run(["logits"], {"audio": np.stack(xs).astype(np.float32)})[0]
    res = scores(logits, np.array(ys))
    res["wrong"] = [f"{n}: {KIND_CLASSES[int(p)]}" for n, y, p in zip(names, ys, logits.argmax(1)) if int(p) != y]
    res["unreadable"] = unreadable
    return res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--report-real", default="",
                    help="only report the exported model's accuracy on real one-shots named by kind in these folders (comma list)")
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--packs", type=int, default=2400)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--real-copies", type=int, default=24, help="processed copies of each real training kit")
    ap.add_argument("--real-share", type=float, default=0.5, help="share of each batch drawn from the processed real kits")
    ap.add_argument("--corpus-kits", action=argparse.BooleanOptionalAction, default=True,
                    help="also train on corpus v2's own synthesised kits (every role drawn on its own)")
    ap.add_argument("--val-real", default="gm:48,hydrogen:Millo_MultiLayered3",
                    help="real training kits held out of training: their processed copies validate (with the val split's kits)")
    ap.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args(argv)
    setup(args.seed, 1)
    work = os.path.join(args.out, "samplematch")
    if args.report_real:
        res = report_real(os.path.join(work, "oneshot_kind.onnx"), args.report_real.split(","))
        print(json.dumps({k: v for k, v in res.items() if k != "confusion"}, indent=1))
        return
    os.makedirs(work, exist_ok=True)
    packs = C2.make_corpus(args.seed, args.packs)
    split = C2.split_v2(packs, args.seed)
    log("kits")
    kits = O.kits_for(packs, work)
    kit_splits: dict[str, set] = {}
    for p in packs:
        kit_splits.setdefault(O.kit_id(p), set()).add(split[p.name])
    by_split = {s: sorted(k for k, ss in kit_splits.items() if s in ss) for s in ("train", "val", "test", "transfer")}
    # a kit training plays is not a held-out kit of another split
    for s in ("val", "test", "transfer"):
        by_split[s + "_unseen"] = [k for k in by_split[s] if "train" not in kit_splits[k]]
    rng = np.random.default_rng([args.seed, 40])
    real, val_real = {}, []
    held = {tuple(x.split(":", 1)) for x in args.val_real.split(",") if x}
    for src, name in O.REAL_TRAIN_KITS:
        base = O.gm_kit(int(name), work) if src == "gm" else R.hydrogen_kit(str(name))
        base = {r: x for r, x in base.items() if not O.borrowed(base, r)}
        more = gm_more(int(name), work) if src == "gm" else {}
        for c in range(args.real_copies):
            kid = f"real:{src}:{name}:{c}"
            # each copy plays one of the preset's sounds of each kind
            pick = {r: (x if not more.get(r) else [x, *more[r]][int(rng.integers(0, 1 + len(more[r])))])
                    for r, x in base.items()}
            real[kid] = O.processed_kit(pick, rng)
            if (src, str(name)) in held:
                val_real.append(kid)
    kits |= real
    train_ids = by_split["train"] + sorted(set(real) - set(val_real))
    if args.corpus_kits:  # the kits corpus v2 rendered its synthesised drums from
        from . import synth as S
        for p in packs:
            if p.drum_source == "synth" and split[p.name] == "train":
                kid = f"corpus:{p.drum_kit}"
                if kid not in kits:
                    kits[kid] = S.drum_kit(np.random.default_rng([int(p.drum_kit), 10]))
                    train_ids.append(kid)
    data = {s: examples(kits, ids) for s, ids in (("train", train_ids), ("val", by_split["val_unseen"]),
                                                  ("val_real", sorted(val_real)),
                                                  ("test", by_split["test"]), ("test_unseen", by_split["test_unseen"]),
                                                  ("transfer", by_split["transfer"]))}
    log("one-shots per split", {s: len(v[0]) for s, v in data.items()},
        "kits", {s: len(by_split[s]) for s in by_split})
    xtr, ytr, ktr = data["train"]
    model = KindNet()
    with torch.no_grad():
        model.enc.scale.fill_(float(model.enc.front(torch.from_numpy(np.stack(xtr[::20]))).std()))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    # classes in equal proportion (toms and hats come twice per kit, rims and claps rarer)
    # and the processed real kits as real_share of the draws
    is_real = np.array([k.startswith("real:") for k in ktr])
    p = np.zeros(len(ytr))
    for part, share in ((is_real, args.real_share), (~is_real, 1 - args.real_share)):
        w = np.bincount(ytr[part], minlength=len(KIND_CLASSES)).astype(float)
        p[part] = share / np.maximum(w[ytr[part]], 1) / max(1, int(np.sum(w > 0)))
    p /= p.sum()
    best, best_state, hist, t0, tot = None, None, [], time.time(), 0.0
    for step in range(1, args.steps + 1):
        model.train()
        js = rng.choice(len(xtr), size=args.batch, p=p)
        x = torch.from_numpy(np.stack([augment(xtr[j], rng) for j in js]))
        loss = F.cross_entropy(model(x), torch.from_numpy(ytr[js]), label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss)
        if step % args.eval_every == 0 or step == args.steps:
            v = scores(predict(model, data["val"][0]), data["val"][1])["accuracy"]
            vr = scores(predict(model, data["val_real"][0]), data["val_real"][1])["accuracy"] if data["val_real"][0] else v
            sel = (v + vr) / 2  # the val split's synthesised kits and the held-out real kits alike
            hist.append({"step": step, "loss": round(tot / args.eval_every, 4), "val_accuracy": v,
                         "val_real_accuracy": vr, "seconds": round(time.time() - t0, 1)})
            log(f"step {step}: loss {tot / args.eval_every:.4f} val accuracy {v:.4f} held-out real kits {vr:.4f} ({time.time() - t0:.0f} s)")
            tot = 0.0
            if best is None or sel >= best:
                best, best_state = sel, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    res = {"classes": list(KIND_CLASSES), "training": {"steps": args.steps, "batch": args.batch, "lr": args.lr,
           "seed": args.seed, "real_copies": args.real_copies,
           "real_share": args.real_share, "corpus_kits": args.corpus_kits, "val_real": args.val_real,
           "best_val_select": best, "history": hist,
           "kits": {s: len(v) for s, v in by_split.items()}, "train_kits_with_real": len(train_ids)}}
    for s in ("val", "val_real", "test", "test_unseen", "transfer"):
        res[s] = scores(predict(model, data[s][0]), data[s][1])
        log(s, res[s]["accuracy"], res[s]["per_kind_recall"])
    torch.save({"state": model.state_dict(), "info": res["training"]}, os.path.join(work, "oneshot_kind.pt"))
    # ONNX: audio [B, 22050] -> logits [B, 10], checked against PyTorch
    from .export import _export, session
    g = KindGraph(model).eval()
    path = os.path.join(work, "oneshot_kind.onnx")
    xt = np.stack(data["test"][0][:32]).astype(np.float32)
    _export(g, torch.from_numpy(xt[:2]), path, "audio", "logits")
    with torch.no_grad():
        ref, eager = g(torch.from_numpy(xt)).numpy(), model(torch.from_numpy(xt)).numpy()
    got = session(path).run(["logits"], {"audio": xt})[0]
    res["export"] = {"onnx_vs_torch": float(np.max(np.abs(ref - got))), "conv_stft_vs_torch_stft": float(np.max(np.abs(ref - eager)))}
    res["export"]["test_accuracy_onnx"] = scores(np.concatenate(
        [session(path).run(["logits"], {"audio": np.stack(data["test"][0][i:i + 256]).astype(np.float32)})[0]
         for i in range(0, len(data["test"][0]), 256)]), data["test"][1])["accuracy"]
    res["export"]["transfer_accuracy_onnx"] = scores(np.concatenate(
        [session(path).run(["logits"], {"audio": np.stack(data["transfer"][0][i:i + 256]).astype(np.float32)})[0]
         for i in range(0, len(data["transfer"][0]), 256)]), data["transfer"][1])["accuracy"]
    log("export", res["export"])
    with open(os.path.join(work, "oneshot_kind.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
