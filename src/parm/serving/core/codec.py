"""The bridge from a trained `parm.codes.Code` (torch, batches of groups) to the coordinator (numpy).

`codec_for` picks the cheapest faithful way to run a code on the per-query path: codes that are matrices
(`parm.codes.MatrixCode`: the linear codes, the sum code among them, and the Berrut code) as numpy matrix
products with the code's own coefficient and decoding matrices, any other code (learned encoders and
decoders) through torch. A codec reads no clock:
the frontend times its calls (`parm.serving.runtime.metrics.TimedCodec`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch

from parm.codes import Code, MatrixCode
from parm.codes.byzantine import decode_without_wrong

_FEW_GROUPS = 16  # batches of up to this many groups keep their stacked decoding matrices
_BATCH_PATTERNS = 4096  # stacked matrices kept for that look-up (k = 2, r = 1: 4 patterns per group, 256 for 4 groups)


class Codec(ABC):
    """Encodes and decodes batches of groups with ``code``; short groups are padded with zero inputs."""

    def __init__(self, code: Code) -> None:
        self.code = code

    def encode(self, groups: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Parities (B, r, *input_shape) of B groups' inputs."""
        k = self.code.k
        rows = [x for group in groups for x in group]
        if len(rows) < k * len(groups):  # short groups: padded with zero inputs
            zero = np.zeros_like(rows[0])
            rows = [x for group in groups for x in (*group, *[zero] * (k - len(group)))]
        return self._encode(np.array(rows).reshape(len(groups), k, *rows[0].shape))  # one copy

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Original outputs (B, k, m) from outputs (B, k + r, m) and an availability mask (B, k + r)."""
        return self._decode(outputs, available)

    def verify(self, outputs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """Originals decoded without each group's one wrong output (B, k, m), and its slot (B,): -1 for none, k + r
        for more than one (`parm.codes.byzantine`); float64, as few groups as arrive together."""
        if not isinstance(self.code, MatrixCode):
            raise ValueError(f"the {self.code.name} code cannot check its outputs: use a linear or Berrut code with r >= 2")
        with torch.inference_mode():
            rebuilt, slots = decode_without_wrong(self.code, torch.from_numpy(outputs.astype(np.float64)),
                                                  tolerance=tolerance)
        return rebuilt.numpy().astype(outputs.dtype, copy=False), slots.numpy()

    @abstractmethod
    def _encode(self, inputs: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray: ...


class TorchCodec(Codec):
    """Any code, run by its own torch `encode` and `decode`."""

    @torch.inference_mode()
    def _encode(self, inputs: np.ndarray) -> np.ndarray:
        return self.code.encode(torch.from_numpy(inputs)).numpy()

    @torch.inference_mode()
    def _decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        return self.code.decode(torch.from_numpy(outputs), torch.from_numpy(available)).numpy()


class LinearCodec(Codec):
    """A matrix code (linear, Berrut, concatenation) as numpy matrix products with its coefficient and decoding
    matrices (a code whose parities are not ``coefficients @ inputs``, the concatenation code's tiles, encodes
    with its own torch arithmetic).

    Same arithmetic as `MatrixCode.encode` / `decode`, without torch's per-call cost, which on a busy
    frontend (caches cold between queries) measured 128 us per encode and 325 us per decode.
    """

    code: MatrixCode

    def __init__(self, code: MatrixCode) -> None:
        super().__init__(code)
        self.coefficients = code.coefficients.numpy().astype(np.float32) if code.encodes_with_matrix else None
        self._matrices: dict[bytes, np.ndarray] = {}  # per group pattern
        self._batches: dict[bytes, np.ndarray] = {}  # per pattern of a few groups' patterns, stacked

    def _encode(self, inputs: np.ndarray) -> np.ndarray:
        if self.coefficients is None:  # a code that encodes otherwise (the concatenation code tiles its images)
            with torch.inference_mode():
                return self.code.encode(torch.from_numpy(inputs)).numpy()
        flat = inputs.reshape(*inputs.shape[:2], -1)
        return (self.coefficients @ flat).reshape(len(inputs), self.code.r, *inputs.shape[2:])

    def _decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        available = np.asarray(available, dtype=bool)
        if available.shape != outputs.shape[:2]:  # one mask for every group (broadcast_to alone costs 3 us)
            available = np.broadcast_to(available, outputs.shape[:2])
        matrices = self._matrices_for(available)
        known = np.where(available.reshape(available.shape + (1,) * (outputs.ndim - 2)), outputs, 0)
        rebuilt = _products(matrices, known.astype(np.float32, copy=False).reshape(*known.shape[:2], -1))
        return rebuilt.reshape(len(outputs), self.code.k, *outputs.shape[2:])

    def _matrices_for(self, available: np.ndarray) -> np.ndarray:
        """Each group's decoding matrix (B, k, k + r): computed once per group pattern ever seen, and kept stacked
        per batch pattern for the few-group batches of the serving path (one look-up per decode call). A pattern
        is checked (no more than r lost) when first seen: one kept is known to decode."""
        key = available.tobytes()
        matrices = self._batches.get(key)
        if matrices is not None:
            return matrices
        if ((~available).sum(axis=1) > self.code.r).any():
            self.code.check_available(torch.from_numpy(available.copy()), len(available))  # raises, saying why
        packed = np.packbits(available, axis=1)  # one key per group's pattern (np.unique(axis=0) is 4x slower)
        keys, first, which = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(),
                                       return_index=True, return_inverse=True)
        matrices = np.array([self._matrix(key.tobytes(), available[row]) for key, row in zip(keys, first)])  # distinct only
        matrices = matrices[which.reshape(-1)]
        if len(available) <= _FEW_GROUPS:
            if len(self._batches) >= _BATCH_PATTERNS:
                self._batches.clear()
            self._batches[key] = matrices
        return matrices

    def _matrix(self, key: bytes, pattern: np.ndarray) -> np.ndarray:
        if key not in self._matrices:
            self._matrices[key] = self.code.decoding_matrix(torch.from_numpy(pattern.copy())).numpy().astype(np.float32)
        return self._matrices[key]


@np.errstate(invalid="ignore", over="ignore")  # a non-finite output decodes to NaN: the coordinator drops it
def _products(matrices: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """The decoding matrices' products with the groups' flattened outputs (as a decorator, errstate costs 0.5 us
    less per call than as a ``with`` block)."""
    return matrices @ outputs


def codec_for(code: Code) -> Codec:
    """The codec that runs ``code`` on the serving path: numpy for matrix codes (linear, Berrut), torch otherwise."""
    return LinearCodec(code) if isinstance(code, MatrixCode) else TorchCodec(code)
