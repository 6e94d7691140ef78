"""Phase 1: one VAE per instrument on cached log-mel (input) / log-magnitude (target)."""
from __future__ import annotations

import time

import numpy as np
import torch

from .common import setup
from .models import VAE


def train_vae(logmel: np.ndarray, logmag: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
              seed: int, epochs: int, beta: float = 1e-3, batch: int = 32, lr: float = 2e-3,
              ch: int = 192, threads: int = 2, log=print) -> tuple[VAE, dict]:
    setup(seed, threads)
    vae = VAE(ch)
    tr_mel = logmel[train_idx].astype(np.float32)
    vae.mel_mu.copy_(torch.tensor(tr_mel.mean(axis=(0, 2))[:, None]))
    vae.mel_sd.copy_(torch.tensor(tr_mel.std(axis=(0, 2))[:, None] + 1e-3))
    mags = logmag[train_idx]
    mu = np.zeros(mags.shape[1]); sq = np.zeros(mags.shape[1])
    for i in range(0, len(mags), 256):
        m = mags[i:i + 256].astype(np.float32)
        mu += m.sum(axis=(0, 2)); sq += (m.astype(np.float64) ** 2).sum(axis=(0, 2))
    cnt = len(mags) * mags.shape[2]
    mu /= cnt
    sd = np.sqrt(np.maximum(sq / cnt - mu ** 2, 0)) + 1e-3
    vae.mag_mu.copy_(torch.tensor(mu[:, None], dtype=torch.float32))
    vae.mag_sd.copy_(torch.tensor(sd[:, None], dtype=torch.float32))
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(train_idx) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 20), pct_start=0.1)
    rng = np.random.default_rng(seed)
    hist = []

    def batch_loss(idx, train=True):
        x = torch.from_numpy(logmel[idx].astype(np.float32))
        y = (torch.from_numpy(logmag[idx].astype(np.float32)) - vae.mag_mu) / vae.mag_sd
        m, lv = vae.encode_feat(x)
        lv = lv.clamp(-10, 5)
        z = m + torch.randn_like(m) * torch.exp(0.5 * lv) if train else m
        rec = torch.mean((vae.dec(z) - y) ** 2)
        kl = -0.5 * torch.mean(torch.sum(1 + lv - m * m - lv.exp(), dim=1))  # per time step
        return rec, kl

    for ep in range(epochs):
        t0 = time.time()
        vae.train()
        perm = rng.permutation(train_idx)
        tot = 0.0
        for i in range(0, len(perm), batch):
            idx = np.sort(perm[i:i + batch])
            rec, kl = batch_loss(idx)
            loss = rec + beta * kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(rec) * len(idx)
        vae.eval()
        with torch.no_grad():
            vr = vk = 0.0
            for i in range(0, len(val_idx), 64):
                r, k = batch_loss(val_idx[i:i + 64], train=False)
                vr += float(r) * len(val_idx[i:i + 64]); vk += float(k) * len(val_idx[i:i + 64])
        h = dict(epoch=ep + 1, train_rec=tot / len(perm), val_rec=vr / len(val_idx), val_kl=vk / len(val_idx),
                 seconds=round(time.time() - t0, 1))
        hist.append(h)
        log(f"  vae epoch {ep + 1}/{epochs}: train rec {h['train_rec']:.4f} val rec {h['val_rec']:.4f} kl {h['val_kl']:.2f} ({h['seconds']} s)")
    vae.eval()
    return vae, {"history": hist, "beta": beta, "epochs": epochs, "batch": batch, "lr": lr, "channels": ch}


@torch.no_grad()
def encode_all(vae: VAE, logmel: np.ndarray, batch: int = 128) -> np.ndarray:
    out = []
    for i in range(0, len(logmel), batch):
        m, _ = vae.encode_feat(torch.from_numpy(logmel[i:i + batch].astype(np.float32)))
        out.append(m.numpy())
    return np.concatenate(out)
