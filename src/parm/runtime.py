"""Process-wide set-up shared by every command that trains or evaluates: seeds, device, float behaviour.

One module so that a run is seeded once, in one way, wherever it starts (the CLI, a notebook, a test).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch's global generators: once per command, before any weight is drawn
    (training shuffles and augments from a generator of its own, `parm.training.loop.fit`'s)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device: use --device cpu")
    return device


def flush_denormals() -> None:
    """Treat subnormal floats as zero on the CPU.

    Weights and Adam moments drift into the subnormal range as training goes on, where x86 CPUs
    slow down many-fold; flushing them costs no accuracy (the published parity-model code ran
    1.5x faster with it).
    """
    torch.set_flush_denormal(True)
