"""The bridge from a trained `parm.codes.Code` (torch, batches of groups) to the coordinator (numpy)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from parm.codes import Code

Timing = Callable[[str, float], None]


class TorchCodec:
    """Encodes and decodes batches of groups with ``code``, reporting how long each call took."""

    def __init__(self, code: Code, on_timing: Timing | None = None) -> None:
        self.code = code
        self.on_timing = on_timing or (lambda stage, seconds: None)

    @torch.inference_mode()
    def encode(self, groups: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Parities (B, r, *input_shape) of B groups' inputs, short groups padded with zero inputs."""
        start = time.perf_counter()
        zero = np.zeros_like(groups[0][0])
        inputs = np.stack([np.stack([*group, *[zero] * (self.code.k - len(group))]) for group in groups])
        parities = self.code.encode(torch.from_numpy(inputs)).numpy()
        self.on_timing("encode", time.perf_counter() - start)
        return parities

    @torch.inference_mode()
    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        rebuilt = self.code.decode(torch.from_numpy(outputs), torch.from_numpy(available)).numpy()
        self.on_timing("decode", time.perf_counter() - start)
        return rebuilt
