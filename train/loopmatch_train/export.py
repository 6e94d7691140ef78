"""ONNX export (opset 17, dynamic batch) and an onnxruntime check against PyTorch."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from .models import N, C_LAT, T_LAT, EncoderGraph, DecoderGraph, Mapper


def _export(module, example, path, in_name, out_name, custom_opsets=None):
    """example and in_name: one tensor and its name, or a tuple of tensors and a list of names
    (every input and the output with the batch as a dynamic first dimension); custom_opsets:
    domains of nodes the caller writes as standard ONNX after (torch.onnx.export's)."""
    module.eval()
    examples = example if isinstance(example, tuple) else (example,)
    names = list(in_name) if isinstance(in_name, (list, tuple)) else [in_name]
    torch.onnx.export(module, examples, path, input_names=names, output_names=[out_name],
                      dynamic_axes={**{n: {0: "batch"} for n in names}, out_name: {0: "batch"}},
                      opset_version=17, dynamo=False, do_constant_folding=True,
                      custom_opsets=custom_opsets)


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def export_encoder(vae, path, check_audio: np.ndarray) -> float:
    g = EncoderGraph(vae).eval()
    _export(g, torch.zeros(2, N), path, "audio", "z")
    with torch.no_grad():
        ref = g(torch.from_numpy(check_audio)).numpy()
    got = session(path).run(["z"], {"audio": check_audio})[0]
    return float(np.max(np.abs(ref - got)))


def export_decoder(vae, path, check_z: np.ndarray, iters: int = 16, momentum: float = 0.99, decoder=None) -> float:
    g = DecoderGraph(vae, iters, momentum, decoder).eval()
    _export(g, torch.zeros(1, C_LAT, T_LAT), path, "z", "audio")
    with torch.no_grad():
        ref = g(torch.from_numpy(check_z)).numpy()
    got = session(path).run(["audio"], {"z": check_z})[0]
    return float(np.max(np.abs(ref - got)))


def export_mapper(m: Mapper, path, check_z: np.ndarray) -> float:
    """Input "z", output "z_out" (ONNX cannot give a graph input and output one name)."""
    m.eval()
    _export(m, torch.zeros(2, C_LAT, T_LAT), path, "z", "z_out")
    with torch.no_grad():
        ref = m(torch.from_numpy(check_z)).numpy()
    got = session(path).run(["z_out"], {"z": check_z})[0]
    return float(np.max(np.abs(ref - got)))
