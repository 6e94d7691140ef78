"""Phase 2: latent mappers (source z -> target z) on every same-pack pair.

"l2": MLP-Latent as in the paper (MSE in the standardised latent space).
"contrastive": the same network and pairs, plus a symmetric in-batch InfoNCE term on the
cosine between the mapped z and the true target z (other packs in the batch are negatives;
same-pack loops are neither; mapped seed -> its target, plus half weight target -> its
mapped seed), which is what the retrieval metric measures, trained with time-roll
augmentation (source and target rolled together by one random shift per batch)."""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from .common import setup
from .metrics import cosine_scores, evaluate
from .models import C_LAT, T_LAT, Mapper


def pairs_of(rows, idx_src, idx_tgt):
    """All (source, target) pairs of the same pack among the given row indices."""
    by_pack = {}
    for i in idx_tgt:
        by_pack.setdefault(rows[i]["pack"], []).append(i)
    out = [(s, t) for s in idx_src for t in by_pack.get(rows[s]["pack"], [])]
    return np.array(out, dtype=np.int64)


def rolled(flat: torch.Tensor, shift: int) -> torch.Tensor:
    """Flattened latents [B, C*T] rolled by shift steps along T."""
    return flat.reshape(len(flat), C_LAT, T_LAT).roll(shift, 2).reshape(len(flat), -1)


@torch.no_grad()
def map_all(m: Mapper, z: np.ndarray) -> np.ndarray:
    m.eval()
    return m(torch.from_numpy(z.astype(np.float32))).numpy()


def val_score(m, z_src, z_tgt, rows, src_idx, tgt_idx):
    pred = map_all(m, z_src[src_idx])
    s = cosine_scores(pred, z_tgt[tgt_idx])
    packs = np.array([r["pack"] for r in rows])
    bpm = np.array([r["bpm"] for r in rows])
    return evaluate(s, packs[src_idx], bpm[src_idx], packs[tgt_idx], bpm[tgt_idx], "all")


def train_mapper(z_src, z_tgt, rows, tr_src, tr_tgt, va_src, va_tgt, seed: int, kind: str,
                 epochs: int = 60, batch: int = 128, lr: float = 1e-3, lam: float = 1.0,
                 tau: float = 0.07, sym: bool = True, roll: bool | None = None, threads: int = 2, log=print):
    """roll (default: on for "contrastive", off for "l2", the paper's model): each batch's
    source and target latents are rolled in time by one random shift, the same for both.
    A pack's drum and bass loops are aligned and periodic, so a shifted pair is still a
    pair; the mapper learns the groove's timing relation rather than absolute positions,
    which halves the validation R_mn (see the model card)."""
    if roll is None:
        roll = kind == "contrastive"
    setup(seed, threads)
    d = z_src[0].size
    m = Mapper(d)
    xs = z_src.reshape(len(z_src), -1).astype(np.float32)
    xt = z_tgt.reshape(len(z_tgt), -1).astype(np.float32)
    m.in_mu.copy_(torch.tensor(xs[tr_src].mean(0))); m.in_sd.copy_(torch.tensor(xs[tr_src].std(0) + 1e-3))
    m.out_mu.copy_(torch.tensor(xt[tr_tgt].mean(0))); m.out_sd.copy_(torch.tensor(xt[tr_tgt].std(0) + 1e-3))
    pairs = pairs_of(rows, tr_src, tr_tgt)
    pack_id = {p: i for i, p in enumerate(sorted({r["pack"] for r in rows}))}
    pk = np.array([pack_id[r["pack"]] for r in rows])
    XS = (torch.from_numpy(xs) - m.in_mu) / m.in_sd
    XT = torch.from_numpy(xt)
    XTs = (XT - m.out_mu) / m.out_sd
    opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(pairs) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 20), pct_start=0.1)
    rng = np.random.default_rng(seed)
    best, best_state, hist = None, None, []
    t0 = time.time()
    for ep in range(epochs):
        m.train()
        perm = rng.permutation(len(pairs))
        for i in range(0, len(perm), batch):
            b = pairs[perm[i:i + batch]]
            s, t = torch.from_numpy(b[:, 0]), torch.from_numpy(b[:, 1])
            x_in, x_tgt, x_tgt_std = XS[s], XT[t], XTs[t]
            if roll:
                rng.random()  # kept: the recorded runs drew it (roll probability 1)
                shift = int(rng.integers(0, T_LAT))
                if shift:
                    x_in, x_tgt, x_tgt_std = (rolled(a, shift) for a in (x_in, x_tgt, x_tgt_std))
            out = m.forward_std(x_in)
            loss = F.mse_loss(out, x_tgt_std)
            if kind == "contrastive":
                pred = out * m.out_sd + m.out_mu
                logits = F.normalize(pred, dim=1) @ F.normalize(x_tgt, dim=1).T / tau
                p = torch.from_numpy(pk[b[:, 0]])
                same = (p[:, None] == p[None, :]) & ~torch.eye(len(b), dtype=torch.bool)
                logits = logits.masked_fill(same, -1e4)
                ce = F.cross_entropy(logits, torch.arange(len(b)))
                if sym:
                    # the target side too: each true target picks its mapped source among the
                    # batch's mapped seeds (half weight)
                    ce = ce + 0.5 * F.cross_entropy(logits.T, torch.arange(len(b)))
                loss = loss + lam * ce
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (ep + 1) % 5 == 0 or ep + 1 == epochs:
            v = val_score(m, z_src, z_tgt, rows, va_src, va_tgt)
            hist.append(dict(epoch=ep + 1, val_R_mn=v["R_mn"], val_R_md=v["R_md"]))
            log(f"  {kind} epoch {ep + 1}: val R_mn {v['R_mn']:.4f} R_md {v['R_md']:.4f} ({time.time() - t0:.0f} s)")
            if best is None or v["R_mn"] < best:
                best, best_state = v["R_mn"], copy.deepcopy(m.state_dict())
    m.load_state_dict(best_state)
    m.eval()
    return m, {"kind": kind, "epochs": epochs, "batch": batch, "lr": lr, "lambda": lam, "tau": tau, "symmetric": bool(sym and kind == "contrastive"),
                   "time_roll_augmentation": bool(roll),
               "pairs": int(len(pairs)), "best_val_R_mn": best, "history": hist}
