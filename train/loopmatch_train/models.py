"""Front end (STFT as a fixed Conv1d, mel, log), per-instrument VAE, mappers, in-graph
Griffin-Lim. Everything here exports to ONNX opset 17 with plain Conv/MatMul/Log ops."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

SR = 22050
N = 88200
N_FFT = 1024
HOP = 341  # 1 + (88200 - 1024) // 341 = 256 frames -> T = 64 after two stride-2 convs
FRAMES = 1 + (N - N_FFT) // HOP
N_BINS = N_FFT // 2 + 1
N_MELS = 128
C_LAT = 16
T_LAT = 64
EPS = 1e-4


def hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float64)


def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, sr=SR, fmin=20.0, fmax=11025.0) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[i] = np.maximum(0, np.minimum(up, down))
        if fb[i].sum() == 0:  # narrow low bands: nearest bin
            fb[i, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return fb.astype(np.float32)


class STFTMag(nn.Module):
    """|STFT| with a Hann window, no centering: [B, N] -> [B, 513, 256]."""

    def __init__(self):
        super().__init__()
        w = hann(N_FFT)
        k = np.arange(N_BINS)[:, None] * np.arange(N_FFT)[None, :] * 2 * np.pi / N_FFT
        kern = np.concatenate([np.cos(k) * w, -np.sin(k) * w], 0)[:, None, :]
        self.register_buffer("kernel", torch.tensor(kern, dtype=torch.float32))

    def forward(self, audio):
        x = F.conv1d(audio.unsqueeze(1), self.kernel, stride=HOP)
        re, im = x[:, :N_BINS], x[:, N_BINS:]
        return torch.sqrt(re * re + im * im + 1e-12)


class FrontEnd(nn.Module):
    """audio -> (log-mel [B,128,256], log-magnitude [B,513,256])."""

    def __init__(self):
        super().__init__()
        self.stft = STFTMag()
        self.register_buffer("mel", torch.tensor(mel_filterbank()))

    def forward(self, audio):
        mag = self.stft(audio)
        logmag = torch.log(mag + EPS)
        logmel = torch.log(torch.matmul(self.mel, mag) + EPS)
        return logmel, logmag


def conv(ci, co, k, s=1):
    return nn.Conv1d(ci, co, k, stride=s, padding=(k - 1) // 2 if s == 1 else (k - s) // 2)


class Encoder(nn.Module):
    """normalised log-mel [B,128,256] -> (mu, logvar) [B,C,64]."""

    def __init__(self, ch=192, c=C_LAT):
        super().__init__()
        self.net = nn.Sequential(
            conv(N_MELS, ch, 3), nn.GELU(),
            conv(ch, ch, 4, 2), nn.GELU(),
            conv(ch, ch, 4, 2), nn.GELU(),
            conv(ch, ch, 3), nn.GELU(),
            nn.Conv1d(ch, 2 * c, 1),
        )
        self.c = c

    def forward(self, x):
        h = self.net(x)
        return h[:, : self.c], h[:, self.c:]


class Decoder(nn.Module):
    """z [B,C,64] -> normalised log-magnitude [B,513,256]."""

    def __init__(self, ch=192, c=C_LAT):
        super().__init__()
        self.net = nn.Sequential(
            conv(c, ch, 3), nn.GELU(),
            nn.ConvTranspose1d(ch, ch, 4, 2, 1), nn.GELU(),
            nn.ConvTranspose1d(ch, ch, 4, 2, 1), nn.GELU(),
            conv(ch, ch, 3), nn.GELU(),
            nn.Conv1d(ch, N_BINS, 1),
        )

    def forward(self, z):
        return self.net(z)


class VAE(nn.Module):
    def __init__(self, ch=192):
        super().__init__()
        self.enc = Encoder(ch)
        self.dec = Decoder(ch)
        # feature normalisation (per band), set from the training split
        self.register_buffer("mel_mu", torch.zeros(N_MELS, 1))
        self.register_buffer("mel_sd", torch.ones(N_MELS, 1))
        self.register_buffer("mag_mu", torch.zeros(N_BINS, 1))
        self.register_buffer("mag_sd", torch.ones(N_BINS, 1))

    def encode_feat(self, logmel):
        return self.enc((logmel - self.mel_mu) / self.mel_sd)


class EncoderGraph(nn.Module):
    """Exported encoder: audio [B, 88200] -> z [B, C, T] (posterior mean)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.front = FrontEnd()
        self.vae = vae

    def forward(self, audio):
        logmel, _ = self.front(audio)
        mu, _ = self.vae.encode_feat(logmel)
        return mu


class ISTFT(nn.Module):
    """Overlap-add inverse of STFTMag's transform (complex spectrum -> audio [B, N]).

    It reuses the analysis kernel (Hann-windowed cos / -sin) with a per-bin scale, so a
    decoder graph stores the 4 MB DFT kernel once."""

    def __init__(self):
        super().__init__()
        w = hann(N_FFT)
        scale = np.full(N_BINS, 2.0)
        scale[0] = scale[-1] = 1.0
        self.register_buffer("chan_scale", torch.tensor(np.concatenate([scale, scale])[None, :, None] / N_FFT, dtype=torch.float32))
        wsum = np.zeros(N)
        for f in range(FRAMES):
            wsum[f * HOP: f * HOP + N_FFT] += w * w
        self.register_buffer("inv_wsum", torch.tensor(1.0 / np.maximum(wsum, 1e-3), dtype=torch.float32))

    def forward(self, re, im, kernel):
        spec = torch.cat([re, im], 1) * self.chan_scale
        y = F.conv_transpose1d(spec, kernel, stride=HOP).squeeze(1)
        y = F.pad(y, (0, N - y.shape[-1]))
        return y * self.inv_wsum


class DecoderGraph(nn.Module):
    """Exported decoder: z [B,C,T] -> audio [B, 88200] via in-graph fast Griffin-Lim.

    Fast Griffin-Lim (Perraudin, Balazs and Sondergaard, 2013): each iteration projects the
    spectrum onto the consistent spectrograms (iSTFT then STFT) and onto the predicted
    magnitude, then extrapolates with momentum alpha from the previous projection. With
    alpha = 0.99, 16 iterations reach a lower spectral convergence than 32 plain ones at
    half the cost (momentum 0 is plain Griffin-Lim). The initial phase is fixed and seeded,
    so a latent always decodes to the same audio."""

    def __init__(self, vae: VAE, iters: int = 16, momentum: float = 0.99):
        super().__init__()
        self.vae = vae
        self.register_buffer("stft_kernel", STFTMag().kernel.clone())
        self.istft = ISTFT()
        self.iters = iters
        self.momentum = momentum
        rng = np.random.default_rng(0)
        ph = rng.uniform(0, 2 * np.pi, size=(1, N_BINS, FRAMES))
        self.register_buffer("ph_re", torch.tensor(np.cos(ph), dtype=torch.float32))
        self.register_buffer("ph_im", torch.tensor(np.sin(ph), dtype=torch.float32))

    def magnitude(self, z):
        logmag = self.vae.dec(z) * self.vae.mag_sd + self.vae.mag_mu
        return torch.clamp(torch.exp(logmag) - EPS, min=0.0)

    def project(self, mag, re, im):
        """The consistent spectrum nearest (re, im), with its magnitude replaced by mag."""
        y = self.istft(re, im, self.stft_kernel)
        x = F.conv1d(y.unsqueeze(1), self.stft_kernel, stride=HOP)
        xr, xi = x[:, :N_BINS], x[:, N_BINS:]
        norm = torch.sqrt(xr * xr + xi * xi + 1e-12)
        return mag * xr / norm, mag * xi / norm

    def forward(self, z):
        mag = self.magnitude(z)
        re, im = mag * self.ph_re, mag * self.ph_im
        prev_re, prev_im = re, im
        for _ in range(self.iters):
            cur_re, cur_im = self.project(mag, re, im)
            if self.momentum:
                re = cur_re + self.momentum * (cur_re - prev_re)
                im = cur_im + self.momentum * (cur_im - prev_im)
            else:
                re, im = cur_re, cur_im
            prev_re, prev_im = cur_re, cur_im
        y = self.istft(prev_re, prev_im, self.stft_kernel)
        return torch.clamp(y, -1.0, 1.0)


class DecoderMagGraph(nn.Module):
    """z -> log-magnitude [B, 513, 256] (the decoder without phase reconstruction)."""

    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.dec(z) * self.vae.mag_sd + self.vae.mag_mu


class Mapper(nn.Module):
    """MLP-Latent: 4 fully connected layers on the flattened latent, standardised in and out."""

    def __init__(self, dim=C_LAT * T_LAT, hidden=512, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )
        self.register_buffer("in_mu", torch.zeros(dim))
        self.register_buffer("in_sd", torch.ones(dim))
        self.register_buffer("out_mu", torch.zeros(dim))
        self.register_buffer("out_sd", torch.ones(dim))

    def forward_std(self, zs):  # standardised flat in -> standardised flat out
        return self.net(zs)

    def forward(self, z):  # [B, C, T] -> [B, C, T] in the target VAE's latent space
        b = z.shape[0]
        x = (z.reshape(b, -1) - self.in_mu) / self.in_sd
        y = self.net(x) * self.out_sd + self.out_mu
        return y.reshape(b, C_LAT, T_LAT)
