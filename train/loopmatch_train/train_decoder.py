"""Phase 1b: each instrument's shipped magnitude decoder, retrained on its frozen encoder.

The VAE of phase 1 fixes the latent space (the encoder, so every z and every mapper stays
as it is). Its own decoder was trained with a plain MSE on the standardised log-magnitude,
which blurs note starts: a bass note's attack spread over two or three STFT frames no
longer reads as an onset. This phase trains a fresh decoder on the same training-split
loops, z drawn from the frozen encoder's posterior (reparameterised, `noise` x sigma), with
three terms on the predicted log-magnitude P against the true one Y:

- MSE on the standardised log-magnitude (phase 1's reconstruction term);
- `w_level` x mean |C(P) - C(Y)|, with C = ln(1 + |X| / 51.2) the compressed magnitude an
  onset detector looks at (|X| / sum(window) x 10, so loud bins count, the noise floor not);
- `w_flux` x the spectral-flux error: per frame, the sum over bins of
  |relu(C_t - C_(t-1)) of P - the same of Y| / 10 — it asks for the same rises in the same
  frames, i.e. attacks where the loop has them, and no rises where it has none.

The checkpoint is the last epoch (one-cycle schedule); validation loss and the validation
onset-free reconstruction MSE are logged per epoch for the record, not used to pick.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .common import setup
from .models import VAE, make_decoder

COMPRESS = 51.2  # |X| / sum(Hann 1024) x 10 = |X| / 51.2


def decoder_loss(pred, y_raw, vae: VAE, w_level: float, w_flux: float):
    """(total, mse, level, flux) for standardised prediction `pred` and raw log-magnitude y_raw."""
    y = (y_raw - vae.mag_mu) / vae.mag_sd
    mse = torch.mean((pred - y) ** 2)
    cp = torch.log1p(torch.exp(pred * vae.mag_sd + vae.mag_mu) / COMPRESS)
    cy = torch.log1p(torch.exp(y_raw) / COMPRESS)
    level = torch.mean(torch.abs(cp - cy))
    fp = F.relu(cp[..., 1:] - cp[..., :-1])
    fy = F.relu(cy[..., 1:] - cy[..., :-1])
    flux = torch.mean(torch.abs(fp - fy).sum(1)) / 10
    return mse + w_level * level + w_flux * flux, mse, level, flux


@torch.no_grad()
def posterior(vae: VAE, logmel: np.ndarray, idx: np.ndarray, batch: int = 128):
    mus, lvs = [], []
    for i in range(0, len(idx), batch):
        m, lv = vae.encode_feat(torch.from_numpy(logmel[idx[i:i + batch]].astype(np.float32)))
        mus.append(m)
        lvs.append(lv.clamp(-10, 5))
    return torch.cat(mus), torch.cat(lvs)


def train_decoder(vae: VAE, logmel: np.ndarray, logmag: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
                  seed: int, epochs: int = 12, arch: str = "conv", ch: int = 192, w_level: float = 10.0,
                  w_flux: float = 10.0, noise: float = 1.0, batch: int = 32, lr: float = 2e-3, threads: int = 2, log=print):
    setup(seed, threads)
    t0 = time.time()
    vae.eval()
    dec = make_decoder(arch, ch)
    mu_tr, lv_tr = posterior(vae, logmel, train_idx)
    mu_va, _ = posterior(vae, logmel, val_idx)
    y_tr = torch.from_numpy(np.asarray(logmag[train_idx], dtype=np.float32))
    y_va = torch.from_numpy(np.asarray(logmag[val_idx], dtype=np.float32))
    opt = torch.optim.AdamW(dec.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(train_idx) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 20), pct_start=0.1)
    rng = np.random.default_rng(seed)
    hist = []
    for ep in range(epochs):
        t = time.time()
        dec.train()
        perm = rng.permutation(len(train_idx))
        tot = np.zeros(4)
        for i in range(0, len(perm), batch):
            j = torch.from_numpy(np.sort(perm[i:i + batch]))
            z = mu_tr[j] + noise * torch.randn_like(mu_tr[j]) * torch.exp(0.5 * lv_tr[j])
            loss, mse, level, flux = decoder_loss(dec(z), y_tr[j], vae, w_level, w_flux)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += np.array([float(loss), float(mse), float(level), float(flux)]) * len(j)
        dec.eval()
        with torch.no_grad():
            v = np.zeros(4)
            for i in range(0, len(val_idx), 64):
                out = decoder_loss(dec(mu_va[i:i + 64]), y_va[i:i + 64], vae, w_level, w_flux)
                v += np.array([float(o) for o in out]) * len(mu_va[i:i + 64])
        tot /= len(perm)
        v /= len(val_idx)
        h = dict(epoch=ep + 1, train_loss=tot[0], train_mse=tot[1], train_level=tot[2], train_flux=tot[3],
                 val_loss=v[0], val_mse=v[1], val_level=v[2], val_flux=v[3], seconds=round(time.time() - t, 1))
        hist.append(h)
        log(f"  decoder epoch {ep + 1}/{epochs}: train {h['train_loss']:.4f} (mse {h['train_mse']:.4f}) "
            f"val {h['val_loss']:.4f} (mse {h['val_mse']:.4f} level {h['val_level']:.4f} flux {h['val_flux']:.4f}) ({h['seconds']} s)")
    dec.eval()
    for p in dec.parameters():
        p.requires_grad_(False)
    return dec, {"history": hist, "arch": arch, "channels": ch, "epochs": epochs, "batch": batch, "lr": lr,
                 "w_level": w_level, "w_flux": w_flux, "posterior_noise": noise, "seed": seed,
                 "params": int(sum(p.numel() for p in dec.parameters())), "seconds": round(time.time() - t0, 1)}
