"""Embedders (bundle role "embedder": audio [B, N] -> vector [B, D]) for "more like this" and
taste profiles, compared by similar_eval.py. Everything a representation needs (STFT, mel,
normalisation) is inside the graph, as for the encoders.

- logmel_stats: the front end's log-mel, each band's mean and standard deviation over
  time, standardised with the train split's statistics (a baseline with no learning).
- musicnn_vgg: the MSD-trained VGG-ish tagger of musicnn 0.1.0 (Pons & Serra; weights in
  the PyPI wheel, ISC licence), its pool5 representation averaged over time (128 values).
  musicnn computes a 96-band log-compressed mel spectrogram of 16 kHz audio (FFT 512,
  hop 256); the graph computes the same bands from the 22.05 kHz window with an FFT and hop
  of the same durations (706 and 353 samples, power scaled by (512/706)^2), so nothing is
  resampled. Converting the checkpoint needs TensorFlow (tensorflow-cpu) once, at build
  time; serving needs only the ONNX file.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import SR, FrontEnd, hann

# musicnn's front end, in seconds
MUSICNN_SR, MUSICNN_FFT, MUSICNN_HOP, MUSICNN_MELS = 16000, 512, 256, 96
FFT_22K = int(round(MUSICNN_FFT * SR / MUSICNN_SR))  # 706
HOP_22K = int(round(MUSICNN_HOP * SR / MUSICNN_SR))  # 353


class LogMelStats(nn.Module):
    """audio [B, N] -> [B, 256]: per-band log-mel mean and std over time, standardised."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.front = FrontEnd()
        self.register_buffer("mu", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(std, dtype=torch.float32))

    def forward(self, audio):
        logmel, _ = self.front(audio)
        m = logmel.mean(dim=2)
        s = torch.sqrt(((logmel - m.unsqueeze(2)) ** 2).mean(dim=2) + 1e-12)
        return (torch.cat([m, s], dim=1) - self.mu) / self.sd


def slaney_mel(n_mels: int, n_fft: int, sr: int, fmin: float = 0.0, fmax: float = 8000.0) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) with its defaults (Slaney's mel
    scale, area-normalised triangles): [n_mels, n_fft // 2 + 1]."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0

    def hz2mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel2hz(m):
        m = np.asarray(m, dtype=np.float64)
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)
    fftfreqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    hz = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fdiff = np.diff(hz)
    ramps = hz[:, None] - fftfreqs[None, :]
    w = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[:, None]
    return w.astype(np.float32)


class MusicnnFront(nn.Module):
    """audio [B, N] at 22.05 kHz -> log10(10000 * mel power + 1) [B, T, 96] (musicnn's input)."""

    def __init__(self):
        super().__init__()
        n = FFT_22K
        w = hann(n)
        k = np.arange(n // 2 + 1)[:, None] * np.arange(n)[None, :] * 2 * np.pi / n
        kern = np.concatenate([np.cos(k) * w, -np.sin(k) * w], 0)[:, None, :]
        self.register_buffer("kernel", torch.tensor(kern, dtype=torch.float32))
        self.register_buffer("mel", torch.tensor(slaney_mel(MUSICNN_MELS, n, SR)))
        self.bins = n // 2 + 1
        self.scale = (MUSICNN_FFT / n) ** 2

    def forward(self, audio):
        pad = FFT_22K // 2  # librosa centres frames (reflect padding)
        x = F.pad(audio.unsqueeze(1), (pad, pad), mode="reflect")
        x = F.conv1d(x, self.kernel, stride=HOP_22K)
        re, im = x[:, :self.bins], x[:, self.bins:]
        power = (re * re + im * im) * self.scale
        mel = torch.matmul(self.mel, power)  # [B, 96, T]
        return torch.log10(10000.0 * mel + 1.0).transpose(1, 2)


class MusicnnVGG(nn.Module):
    """musicnn's vgg (models.py) up to pool5, in inference mode: [B, T, 96] -> [B, 128, T5]."""

    def __init__(self, filters: int = 128):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(1, eps=1e-3)
        self.convs = nn.ModuleList([nn.Conv2d(1 if i == 0 else filters, filters, 3, padding=1) for i in range(5)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(filters, eps=1e-3) for _ in range(5)])
        self.pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]

    def forward(self, x):
        h = self.bn0(x.unsqueeze(1))  # [B, 1, T, 96]: NCHW with H = time, W = mel
        for conv, bn, (k, s) in zip(self.convs, self.bns, self.pools):
            h = F.max_pool2d(bn(F.relu(conv(h))), k, s)
        return h.flatten(2)  # [B, 128, T5] (the mel axis is 1 wide after pool5)

    def load_checkpoint(self, tensors: dict[str, np.ndarray]) -> None:
        """Weights from the TensorFlow checkpoint's tensors (name -> array)."""
        def bn(mod, name):
            mod.weight.data = torch.tensor(tensors[f"{name}/gamma"])
            mod.bias.data = torch.tensor(tensors[f"{name}/beta"])
            mod.running_mean.data = torch.tensor(tensors[f"{name}/moving_mean"])
            mod.running_var.data = torch.tensor(tensors[f"{name}/moving_variance"])
        bn(self.bn0, "batch_normalization")
        for i in range(5):
            k = tensors[f"{i + 1}CNN/kernel"]  # [kh, kw, in, out]
            self.convs[i].weight.data = torch.tensor(np.transpose(k, (3, 2, 0, 1)).copy())
            self.convs[i].bias.data = torch.tensor(tensors[f"{i + 1}CNN/bias"])
            bn(self.bns[i], f"batch_normalization_{i + 1}")


class MusicnnEmbedder(nn.Module):
    """audio [B, N] -> [B, 128]: pool5 of musicnn's MSD vgg averaged over time."""

    def __init__(self, vgg: MusicnnVGG):
        super().__init__()
        self.front = MusicnnFront()
        self.vgg = vgg

    def forward(self, audio):
        return self.vgg(self.front(audio)).mean(dim=2)


def read_musicnn_checkpoint(model: str = "MSD_vgg") -> dict[str, np.ndarray]:
    """The tensors of a checkpoint inside the installed musicnn wheel (needs TensorFlow)."""
    import importlib.util
    import tensorflow as tf  # build-time only
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("musicnn is not installed: pip install musicnn==0.1.0 --no-deps (its wheel holds the weights)")
    prefix = os.path.join(list(spec.submodule_search_locations)[0], model) + os.sep
    r = tf.compat.v1.train.NewCheckpointReader(prefix)
    return {k: r.get_tensor(k) for k in r.get_variable_to_shape_map() if "Adam" not in k}


# ---- export -------------------------------------------------------------------------------

NAMES = ("logmel_stats", "musicnn_vgg")


def logmel_norm(features_dir: str, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The train split's mean and deviation of the log-mel statistics (every 4th loop)."""
    logmel = np.load(os.path.join(features_dir, "logmel.npy"), mmap_mode="r")
    idx = [i for i, r in enumerate(rows) if r["split"] == "train"][::4]
    x = np.asarray(logmel[idx], dtype=np.float64)
    st = np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)
    return st.mean(axis=0).astype(np.float32), (st.std(axis=0) + 1e-6).astype(np.float32)


def musicnn_tensors(path: str = "") -> dict[str, np.ndarray]:
    """MSD_vgg's tensors: from an .npz written earlier by read_musicnn_checkpoint, else read
    from the installed musicnn wheel (needs TensorFlow)."""
    if path and os.path.exists(path):
        z = np.load(path)
        return {k.replace("__", "/"): z[k] for k in z.files}
    t = read_musicnn_checkpoint()
    if path:
        np.savez(path, **{k.replace("/", "__"): v for k, v in t.items()})
    return t


def build_module(name: str, features_dir: str, rows: list[dict], work: str) -> nn.Module:
    if name == "logmel_stats":
        mu, sd = logmel_norm(features_dir, rows)
        return LogMelStats(mu, sd).eval()
    if name == "musicnn_vgg":
        vgg = MusicnnVGG()
        vgg.load_checkpoint(musicnn_tensors(os.path.join(work, "musicnn_msd_vgg.npz")))
        return MusicnnEmbedder(vgg).eval()
    raise ValueError(f"unknown embedder {name}")


def export(out_dir: str, names=NAMES, log=print, parity: dict | None = None, dest: str = "") -> dict[str, str]:
    """Exports each embedder it can build to out_dir/similar/embedder_<name>.onnx (audio
    [-1, N] -> embedding [-1, D]) and checks onnxruntime against PyTorch on three corpus
    windows; returns name -> ONNX path. musicnn_vgg is left out, saying why, when neither its
    converted weights (similar/musicnn_msd_vgg.npz) nor musicnn's wheel and TensorFlow are
    there. dest (default out_dir/similar) is where the graphs go. parity, when given, gets each graph's max abs difference from PyTorch.
    add_to_bundle puts them into a bundle (role embedder)."""
    from .audio_io import N, load_mono, window
    from .export import _export, session
    from .similar_eval import read_rows
    features = os.path.join(out_dir, "features")
    work = os.path.join(out_dir, "similar")
    os.makedirs(work, exist_ok=True)
    rows = read_rows(features)
    test = [r for r in rows if r["split"] == "test"][:3]
    check = np.stack([window(load_mono(os.path.join(out_dir, "corpus", r["path"]))) for r in test]).astype(np.float32)
    out = {}
    for name in names:
        try:
            g = build_module(name, features, rows, work)
        except Exception as e:  # musicnn needs its wheel and TensorFlow once
            log(f"embedders: {name} left out: {e}")
            continue
        path = os.path.join(dest or work, f"embedder_{name}.onnx")
        _export(g, torch.zeros(2, N), path, "audio", "embedding")
        with torch.no_grad():
            ref = g(torch.from_numpy(check)).numpy()
        got = session(path).run(["embedding"], {"audio": check})[0]
        d = float(np.max(np.abs(ref - got)))
        log(f"embedders: {path} ({got.shape[1]} values), onnx vs torch max abs diff {d:.3g}")
        if parity is not None:
            parity[name] = d
        out[name] = path
    return out


# ---- the bundle's embedder role ------------------------------------------------------------

CARD_BEGIN, CARD_END = "<!-- embedders -->", "<!-- /embedders -->"
ABOUT = {
    "logmel_stats": ("the shared front end's 128-band log-mel, each band's mean and standard deviation over "
                     "time, standardised with the train split's statistics (no learning)", "this project (MIT)"),
    "musicnn_vgg": ("musicnn 0.1.0's MSD-trained VGG tagger (Pons and Serra; trained on Million Song Dataset "
                    "tags), pool5 averaged over time, ported to PyTorch from the checkpoint in the PyPI wheel",
                    "ISC (musicnn 0.1.0, weights and code)"),
}
GOLDEN = [("c0_drum.wav", "drum"), ("c1_bass.wav", "bass"), ("c2_bass.wav", "bass")]


def _eval_rows(out_dir: str, name: str) -> dict:
    """The embedder's rows of similar_eval.json (both instruments pooled), or {} before it ran."""
    p = os.path.join(out_dir, "similar", "similar_eval.json")
    if not os.path.exists(p):
        return {}
    import json
    res = json.load(open(p))["results"]
    return {split: {task: {k: round(v, 4) for k, v in res[split]["all"][task][name].items()}
                    for task in ("similar", "profile")} for split in ("test", "transfer") if name in res[split]["all"]["similar"]}


def _card(specs: list, info: dict) -> str:
    lines = ["| embedder | values | licence | test similar ndcg@50 | test profile ndcg@50 | transfer similar ndcg@50 | transfer profile ndcg@50 |",
             "|---|---|---|---|---|---|---|"]
    for s in specs:
        e, ev = s["embedder"], info[s["embedder"]].get("eval", {})
        def cell(split, task):
            return f"{ev[split][task]['ndcg@50']:.3f}" if split in ev else "not evaluated"
        lines.append(f"| {e} | {s['outputs'][0]['shape'][1]} | {info[e]['licence']} | {cell('test', 'similar')} | "
                     f"{cell('test', 'profile')} | {cell('transfer', 'similar')} | {cell('transfer', 'profile')} |")
    what = "\n".join(f"- `{s['embedder']}` (`{s['file']}`): {info[s['embedder']]['what']}." for s in specs)
    return f"""{CARD_BEGIN}
## Embedders (role `embedder`: audio -> vector for similar and profile)

Representations other than the encoder's latent that ingest can store beside it
(`loopmatch ingest --embedders NAME,...`) and that similar and profile queries can name
(`embedder`); the default stays `latent`, the winner on the transfer split (the similar-eval table). Each
graph takes `audio [-1, 88200]` (the bundle's window) and returns `embedding [-1, D]`, for
drum and bass loops alike; everything it needs (STFT, mel, normalisation) is inside the graph.

{what}

Produced by `train/loopmatch_train/embedders.py` (`make models` runs it after similar_eval;
alone from an existing train/out: `PYTHONPATH=train .venv-train/bin/python -m
loopmatch_train.embedders --out train/out --bundle models/loopmatch-v2`). Nothing is trained or
selected: logmel_stats' standardisation comes from the train split, musicnn's weights from its
wheel. Parity: onnxruntime against PyTorch on three test-split windows, and golden fixtures
(`golden/embedder.json`) that Go's ONNX Runtime must reproduce. Evaluation (similar_eval,
both instruments pooled, NDCG@50):

{chr(10).join(lines)}
{CARD_END}
"""


def golden_fixtures(bundle_dir: str, paths: dict[str, str], parity: dict[str, float], log=print) -> None:
    """golden/embedder.json and golden/<fixture>_<name>.f32: each embedder's onnxruntime
    output for the classifier's WAVs, windowed by Go's rule."""
    import json
    from .audio_io import N, load_mono, window
    from .export import session
    gd = os.path.join(bundle_dir, "golden")
    sess = {name: session(p) for name, p in paths.items()}
    fixtures = []
    for wav, inst in GOLDEN:
        x = window(load_mono(os.path.join(gd, wav)))[None].astype(np.float32)
        emb = {}
        for name in sorted(sess):
            v = sess[name].run(["embedding"], {"audio": x})[0].astype("<f4")
            f = f"{wav[:-4]}_{name}.f32"
            v.tofile(os.path.join(gd, f))
            emb[name] = {"file": f, "shape": list(v.shape)}
        fixtures.append({"wav": wav, "instrument": inst, "embeddings": emb})
    doc = {"sample_rate": SR, "window_samples": N, "tolerance_max_abs": 1e-3,
           "rule": "decode 16-bit PCM as int/32768, mono, tile from the start to N or take the first N samples",
           "onnx_parity_max_abs_diff": parity, "fixtures": fixtures}
    with open(os.path.join(gd, "embedder.json"), "w") as f:
        json.dump(doc, f, indent=2)
    log(f"embedders: golden fixtures for {len(fixtures)} WAVs")


def add_to_bundle(out_dir: str, bundle_dir: str, names=NAMES, log=print, work: str = "") -> None:
    """Exports the embedders into bundle_dir (embedder_<name>.onnx), with manifest entries
    (role embedder), golden fixtures and a MODEL_CARD section. The bundle's other model files
    stay byte for byte (bundle.add_role). work (default out_dir/embedders) holds the exports."""
    import shutil
    from .audio_io import N
    from .bundle import add_role, sha256
    from .export import session
    parity: dict[str, float] = {}
    work = work or os.path.join(out_dir, "embedders")
    os.makedirs(work, exist_ok=True)
    built = export(out_dir, names, log, parity, work)
    specs, paths, info = [], {}, {}
    for name in names:
        if name not in built:
            raise SystemExit(f"embedders: {name} could not be built (see above); the bundle is left as it was")
        f = f"embedder_{name}.onnx"
        dst = os.path.join(bundle_dir, f)
        shutil.copyfile(built[name], dst)
        dim = int(session(dst).run(["embedding"], {"audio": np.zeros((1, N), np.float32)})[0].shape[1])
        paths[name] = dst
        specs.append({"name": f"embedder_{name}", "file": f, "sha256": sha256(dst), "role": "embedder",
                      "instruments": ["drum", "bass"], "embedder": name,
                      "inputs": [{"name": "audio", "shape": [-1, N], "dtype": "float32"}],
                      "outputs": [{"name": "embedding", "shape": [-1, dim], "dtype": "float32"}]})
        what, licence = ABOUT[name]
        info[name] = {"what": what, "licence": licence, "eval": _eval_rows(out_dir, name),
                      "onnx_parity_max_abs_diff": parity[name]}
    golden_fixtures(bundle_dir, paths, parity, log)
    add_role(bundle_dir, "embedder", specs, "embedders", info, CARD_BEGIN, CARD_END, _card(specs, info))
    log(f"embedders: {', '.join(names)} added to {bundle_dir}")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="Export the embedders to OUT/similar/ as ONNX (and with --bundle, add them to a bundle).")
    ap.add_argument("--out", default="train/out")
    ap.add_argument("--only", default="", help="comma-separated embedder names (default: all)")
    ap.add_argument("--bundle", default="", help="add them to this bundle (role embedder): models/loopmatch-v2")
    ap.add_argument("--work", default="", help="where --bundle's exports go (default OUT/embedders)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    names = tuple(a.only.split(",")) if a.only else NAMES
    if a.bundle:
        add_to_bundle(a.out, a.bundle, names, work=a.work)
    else:
        export(a.out, names)
