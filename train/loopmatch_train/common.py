"""Seeding and thread settings shared by the training steps."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def setup(seed: int, threads: int = 2) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    # CPU kernels are deterministic for a fixed thread count; use_deterministic_algorithms
    # would force slow reference convolutions (10x) and is not needed on CPU.
