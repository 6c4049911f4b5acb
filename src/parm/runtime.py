"""Process-wide set-up shared by every command that trains or evaluates: seeds, device, precision, floats.

One module so that a run is seeded once, in one way, wherever it starts (the CLI, a notebook, a test).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


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


PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Compute:
    """Where and how a training computes: its device, bf16 autocast of the training steps, channels-last convolutions.

    ``auto`` settings take the fast path on CUDA (bf16 autocast, channels-last, cuDNN autotuning) and leave the
    CPU path exactly as it is (fp32, contiguous).
    """

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context of a forward pass in the training step: bf16 autocast, or nothing."""
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def place(self, module: nn.Module) -> nn.Module:
        """``module`` on the device (and in channels-last memory format where asked)."""
        module.to(self.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return module


def resolve_compute(device: str = "auto", precision: str = "auto", channels_last: bool | None = None) -> Compute:
    """The `Compute` of a run's ``device``, ``precision`` (auto, fp32, bf16) and ``channels_last`` (None: auto)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    target = resolve_device(device)
    cuda = target.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once
    bf16 = precision == "bf16" or (precision == "auto" and cuda)
    return Compute(target, bf16, cuda if channels_last is None else channels_last)
