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


class ResBlock(nn.Module):
    """x + conv1(gelu(conv3_dilated(gelu(x))))."""

    def __init__(self, ch, dilation):
        super().__init__()
        self.c1 = nn.Conv1d(ch, ch, 3, padding=dilation, dilation=dilation)
        self.c2 = nn.Conv1d(ch, ch, 1)

    def forward(self, x):
        return x + self.c2(F.gelu(self.c1(F.gelu(x))))


class ResDecoder(nn.Module):
    """z [B,C,64] -> normalised log-magnitude [B,513,256], with dilated residual blocks at
    each time resolution (receptive field ~1 s at the output rate)."""

    def __init__(self, ch=192, c=C_LAT):
        super().__init__()
        self.net = nn.Sequential(
            conv(c, ch, 3), ResBlock(ch, 1), ResBlock(ch, 2), ResBlock(ch, 4),
            nn.ConvTranspose1d(ch, ch, 4, 2, 1), ResBlock(ch, 1), ResBlock(ch, 3),
            nn.ConvTranspose1d(ch, ch, 4, 2, 1), ResBlock(ch, 1), ResBlock(ch, 3), ResBlock(ch, 9), nn.GELU(),
            nn.Conv1d(ch, N_BINS, 1),
        )

    def forward(self, z):
        return self.net(z)


def make_decoder(arch: str = "conv", ch: int = 192) -> nn.Module:
    """A magnitude decoder: "conv" (phase 1's VAE decoder) or "res" (ResDecoder)."""
    if arch == "conv":
        return Decoder(ch)
    if arch == "res":
        return ResDecoder(ch)
    raise ValueError(f"unknown decoder architecture {arch!r} (conv, res)")


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


DFT_RADIX = 32  # N_FFT = 32 x 32: the two stages of RealDFT
N_BLOCKS = -(-N // HOP)  # 259 blocks of HOP samples cover the window
BLOCKS_PER_FRAME = -(-N_FFT // HOP)  # a 1024-sample frame spans 4 blocks


class RealDFT(nn.Module):
    """Real DFT of [B, FRAMES, N_FFT] frames as a two-stage (32 x 32) Cooley-Tukey factorisation:
    [..., 1024] -> (re, im) [..., 513], and `adjoint`, its transpose.

    With n = 32 n1 + n2 and k = k1 + 32 k2: X[k] = sum_n2 W32^(n2 k2) W1024^(n2 k1)
    sum_n1 x[n] W32^(n1 k1). Each sum is one matrix product with a fixed 32-point DFT matrix
    and the middle factor a twiddle multiply, so the graph is plain MatMul / Mul / Transpose
    and needs ~135k multiply-adds per frame instead of a dense DFT's 1.05M (the ONNX DFT
    operator measured slower than the dense product in onnxruntime 1.31's CPU kernel).
    Griffin-Lim's synthesis is the adjoint applied to the spectrum times 2/N (1/N at DC and
    Nyquist), the transpose of each step in reverse order."""

    def __init__(self):
        super().__init__()
        r = DFT_RADIX
        n = np.arange(r)
        k2 = N_BINS // r + 1  # 17 columns of stage 2 cover bins 0..543
        self.k2 = k2
        a1 = 2 * np.pi * np.outer(n, n) / r  # [n1, k1]
        self.register_buffer("w1", torch.tensor(np.concatenate([np.cos(a1), -np.sin(a1)], 1), dtype=torch.float32))
        tw = 2 * np.pi * np.outer(n, n) / N_FFT  # [n2, k1]
        self.register_buffer("tw_re", torch.tensor(np.cos(tw), dtype=torch.float32))
        self.register_buffer("tw_im", torch.tensor(-np.sin(tw), dtype=torch.float32))
        a2 = 2 * np.pi * np.outer(n, np.arange(k2)) / r  # [n2, k2]
        c2, s2 = np.cos(a2), -np.sin(a2)
        self.register_buffer("w2", torch.tensor(np.block([[c2, s2], [-s2, c2]]), dtype=torch.float32))  # [64, 34]

    def forward(self, x):
        r, k2 = DFT_RADIX, self.k2
        a = torch.matmul(x.reshape(-1, FRAMES, r, r).transpose(-1, -2), self.w1)  # [.., n2, (k1 re | k1 im)]
        ar, ai = a[..., :r], a[..., r:]
        br = ar * self.tw_re - ai * self.tw_im
        bi = ar * self.tw_im + ai * self.tw_re
        y = torch.matmul(torch.cat([br, bi], -2).transpose(-1, -2), self.w2)  # [.., k1, (k2 re | k2 im)]
        re = y[..., :k2].transpose(-1, -2).reshape(-1, FRAMES, k2 * r)[..., :N_BINS]
        im = y[..., k2:].transpose(-1, -2).reshape(-1, FRAMES, k2 * r)[..., :N_BINS]
        return re, im

    def adjoint(self, re, im):
        r, k2 = DFT_RADIX, self.k2
        pad = k2 * r - N_BINS
        yr = F.pad(re, (0, pad)).reshape(-1, FRAMES, k2, r).transpose(-1, -2)
        yi = F.pad(im, (0, pad)).reshape(-1, FRAMES, k2, r).transpose(-1, -2)
        b = torch.matmul(torch.cat([yr, yi], -1), self.w2.t()).transpose(-1, -2)  # [.., (n2 re | n2 im), k1]
        br, bi = b[..., :r, :], b[..., r:, :]
        ar = br * self.tw_re + bi * self.tw_im
        ai = bi * self.tw_re - br * self.tw_im
        x = torch.matmul(torch.cat([ar, ai], -1), self.w1.t())  # [.., n2, n1]
        return x.transpose(-1, -2).reshape(-1, FRAMES, N_FFT)


class STFTPair(nn.Module):
    """STFTMag's transform (Hann, hop 341, no centering) and its overlap-add inverse on
    [B, frames, bins] spectra, framing and overlap-add by reshapes over blocks of HOP
    samples (1024 = 3 x 341 + 1, so a frame spans 4 blocks)."""

    def __init__(self):
        super().__init__()
        w = hann(N_FFT)
        self.dft = RealDFT()
        self.register_buffer("window", torch.tensor(w, dtype=torch.float32))
        scale = np.full(N_BINS, 2.0 / N_FFT)
        scale[0] = scale[-1] = 1.0 / N_FFT
        self.register_buffer("bin_scale", torch.tensor(scale, dtype=torch.float32))
        wsum = np.zeros(N)
        for f in range(FRAMES):
            wsum[f * HOP: f * HOP + N_FFT] += w * w
        self.register_buffer("inv_wsum", torch.tensor(1.0 / np.maximum(wsum, 1e-3), dtype=torch.float32))

    def frames(self, y):  # [B, N] -> [B, FRAMES, N_FFT]
        b = F.pad(y, (0, N_BLOCKS * HOP - N)).reshape(-1, N_BLOCKS, HOP)
        return torch.cat([b[:, j:j + FRAMES] for j in range(BLOCKS_PER_FRAME)], -1)[..., :N_FFT]

    def overlap_add(self, fr):  # [B, FRAMES, N_FFT] -> [B, N]
        k = BLOCKS_PER_FRAME
        fr = F.pad(fr, (0, k * HOP - N_FFT)).reshape(-1, FRAMES, k, HOP)
        y = sum(F.pad(fr[:, :, j], (0, 0, j, N_BLOCKS - FRAMES - j)) for j in range(k))
        return y.reshape(-1, N_BLOCKS * HOP)[:, :N]

    def stft(self, y):
        return self.dft(self.frames(y) * self.window)

    def istft(self, re, im):
        fr = self.dft.adjoint(re * self.bin_scale, im * self.bin_scale) * self.window
        return self.overlap_add(fr) * self.inv_wsum


class DecoderGraph(nn.Module):
    """Exported decoder: z [B,C,T] -> audio [B, 88200] via in-graph fast Griffin-Lim.

    Fast Griffin-Lim (Perraudin, Balazs and Sondergaard, 2013): each iteration projects the
    spectrum onto the consistent spectrograms (iSTFT then STFT) and onto the predicted
    magnitude, then extrapolates with momentum alpha from the previous projection. With
    alpha = 0.99, 16 iterations reach a lower spectral convergence than 32 plain ones at
    half the cost (momentum 0 is plain Griffin-Lim). The initial phase is fixed and seeded,
    so a latent always decodes to the same audio. `decoder` is the magnitude network
    (default: the VAE's own decoder); the VAE supplies the de-standardisation."""

    def __init__(self, vae: VAE, iters: int = 16, momentum: float = 0.99, decoder: nn.Module | None = None):
        super().__init__()
        self.vae = vae
        self.dec = decoder if decoder is not None else vae.dec
        self.tf = STFTPair()
        self.iters = iters
        self.momentum = momentum
        rng = np.random.default_rng(0)
        ph = rng.uniform(0, 2 * np.pi, size=(1, N_BINS, FRAMES)).transpose(0, 2, 1)  # [1, frames, bins]
        self.register_buffer("ph_re", torch.tensor(np.cos(ph), dtype=torch.float32))
        self.register_buffer("ph_im", torch.tensor(np.sin(ph), dtype=torch.float32))

    def magnitude(self, z):
        """Non-negative |X| [B, frames, bins]."""
        logmag = self.dec(z) * self.vae.mag_sd + self.vae.mag_mu
        return torch.clamp(torch.exp(logmag) - EPS, min=0.0).transpose(1, 2)

    def forward(self, z):
        mag = self.magnitude(z)
        re, im = mag * self.ph_re, mag * self.ph_im
        prev_re, prev_im = re, im
        for _ in range(self.iters):
            xr, xi = self.tf.stft(self.tf.istft(re, im))
            g = mag / torch.sqrt(xr * xr + xi * xi + 1e-12)
            cur_re, cur_im = xr * g, xi * g
            if self.momentum:
                re = cur_re + self.momentum * (cur_re - prev_re)
                im = cur_im + self.momentum * (cur_im - prev_im)
            else:
                re, im = cur_re, cur_im
            prev_re, prev_im = cur_re, cur_im
        y = self.tf.istft(prev_re, prev_im)
        return torch.clamp(y, -1.0, 1.0)


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


# --- loopmatch-v2: latents with compatibility channels ahead of the VAE channels ----------

class EncoderGraphV2(nn.Module):
    """Exported v2 encoder: audio [B, 88200] -> z [B, ce + C, T]: the compatibility tower's
    embedding (unit norm over its ce x T values) times `scale`, then the VAE posterior mean.
    Cosine between two such latents is dominated by the tower's channels (scale is chosen so
    that they carry almost all of a latent's norm); the decoders read the VAE channels."""

    def __init__(self, vae: VAE, tower: nn.Module, scale: float):
        super().__init__()
        self.front = FrontEnd()
        self.vae = vae
        self.tower = tower
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, audio):
        logmel, _ = self.front(audio)
        mu, _ = self.vae.encode_feat(logmel)
        return torch.cat([self.tower(logmel) * self.scale, mu], 1)


class DecoderGraphV2(nn.Module):
    """Exported v2 decoder: z [B, ce + C, T] -> audio; the magnitude comes from the VAE channels."""

    def __init__(self, graph: DecoderGraph, ce: int):
        super().__init__()
        self.graph = graph
        self.ce = ce

    def forward(self, z):
        return self.graph(z[:, self.ce:])


class MapperV2(nn.Module):
    """Exported v2 mapper: z_src [B, ce + C, T] -> z_tgt. The compatibility channels live in one
    space shared by drums and basses, so they pass through unchanged (the right target is the
    nearest one there); the VAE channels are predicted by MLP-Latent (L2), which is what the
    preview decodes."""

    def __init__(self, mlp: Mapper, ce: int):
        super().__init__()
        self.mlp = mlp
        self.ce = ce

    def forward(self, z):
        return torch.cat([z[:, : self.ce], self.mlp(z[:, self.ce:])], 1)
