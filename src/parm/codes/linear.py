"""Linear codes over real numbers: parity j = sum_i a_ji X_i, decoded by solving a small linear system.

With parity models, parity model j is trained so that F_j(sum_i a_ji X_i) ~= sum_i a_ji F(X_i); the
decoder then treats the parity outputs as exact linear combinations of the k base outputs. The sum
code (r = 1, all coefficients 1: the paper's addition encoder and subtraction decoder) is the
simplest member. Their base, `MatrixCode` (an encoding matrix and one decoding matrix per erasure
pattern), is also the Berrut code's (`parm.codes.berrut`).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from itertools import combinations
from typing import Any

import torch

from parm.codes.base import Code, DecodingError

NODE_INTERVAL = (0.5, 1.5)  # keeps parity inputs at the scale of a plain sum
MAX_CONDITION = 1e6


def chebyshev_nodes(k: int, low: float = NODE_INTERVAL[0], high: float = NODE_INTERVAL[1]) -> torch.Tensor:
    """k Chebyshev points of the first kind on [low, high], ascending (float64)."""
    i = torch.arange(k, dtype=torch.float64)
    unit = -torch.cos((2 * i + 1) * math.pi / (2 * k))
    return low + (high - low) * (unit + 1) / 2


def vandermonde_coefficients(k: int, r: int) -> torch.Tensor:
    """Rows x_i^0, x_i^1, ..., x_i^(r-1) on positive Chebyshev nodes: an (r, k) matrix.

    Row 0 is all ones (the sum code). On distinct positive nodes every square submatrix is a
    generalised Vandermonde matrix, which is totally positive, hence invertible: any k of the
    k + r outputs determine the k originals.
    """
    return chebyshev_nodes(k).unsqueeze(0) ** torch.arange(r, dtype=torch.float64).unsqueeze(1)


def worst_condition(coefficients: torch.Tensor) -> float:
    """The largest condition number over the square submatrices that decoding may have to invert."""
    r, k = coefficients.shape
    worst = 1.0
    for size in range(1, min(r, k) + 1):
        for rows in combinations(range(r), size):
            blocks = torch.stack([coefficients[list(rows)][:, list(cols)] for cols in combinations(range(k), size)])
            worst = max(worst, float(torch.linalg.cond(blocks).max()))
    return worst


class MatrixCode(Code):
    """A code whose encoder is one real (r, k) matrix and whose decoder is one (k, k + r) matrix per erasure pattern.

    Parities are ``coefficients @ inputs``; originals are ``decoding_matrix(pattern) @ outputs`` with unavailable
    outputs zeroed first. Subclasses set ``coefficients`` (float64) and build a pattern's matrix
    (`_build_decoding_matrix`); each is built once and cached, and the serving path runs both as numpy products
    (`parm.serving.core.codec.LinearCodec`). Linear codes solve for the lost outputs; the Berrut code interpolates them.
    """

    coefficients: torch.Tensor
    encodes_with_matrix = True  # parities are ``coefficients @ inputs`` (the concatenation code tiles instead)

    def __init__(self, k: int, r: int) -> None:
        super().__init__(k, r)
        self._decoders: dict[bytes, torch.Tensor] = {}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._combine(self.coefficients, x)

    def decode(self, outputs: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """One batched matrix product: each group's outputs times its pattern's (k, k + r) decoding matrix."""
        mask = self.check_available(available, outputs.shape[0]).cpu()
        patterns, which = torch.unique(mask, dim=0, return_inverse=True)
        matrices = torch.stack([self.decoding_matrix(pattern) for pattern in patterns])  # distinct patterns only
        known = torch.where(mask.to(outputs.device).view(*mask.shape, *[1] * (outputs.dim() - 2)), outputs, 0)
        return self._combine(matrices[which], known)  # unavailable entries may hold anything: zeroed first

    def _combine(self, matrices: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B, rows, *shape): ``matrices`` (rows, cols) or (B, rows, cols) times ``x`` (B, cols, *shape)."""
        flat = x.flatten(2)
        return (matrices.to(flat) @ flat).view(x.shape[0], matrices.shape[-2], *x.shape[2:])

    def decoding_matrix(self, pattern: torch.Tensor) -> torch.Tensor:
        """For one pattern (k + r booleans, on the CPU): the (k, k + r) float64 matrix D with
        originals = D @ (outputs, unavailable ones zeroed); rows of available originals pick them exactly."""
        key = pattern.numpy().tobytes()
        if key not in self._decoders:
            self._decoders[key] = self._build_decoding_matrix(pattern)
        return self._decoders[key]

    @abstractmethod
    def _build_decoding_matrix(self, pattern: torch.Tensor) -> torch.Tensor:
        """`decoding_matrix` of one pattern, computed (called once per pattern)."""


class LinearCode(MatrixCode):
    """Any r >= 1 parities from a real (r, k) coefficient matrix (default: Vandermonde on Chebyshev nodes)."""

    name = "linear"

    def __init__(self, k: int, r: int = 1, coefficients: torch.Tensor | list[list[float]] | None = None) -> None:
        super().__init__(k, r)
        a = vandermonde_coefficients(k, r) if coefficients is None else torch.as_tensor(coefficients, dtype=torch.float64)
        if a.shape != (r, k):
            raise ValueError(f"coefficients must be an r x k = {r} x {k} matrix, got {tuple(a.shape)}")
        self.condition = worst_condition(a)
        if not math.isfinite(self.condition) or self.condition > MAX_CONDITION:
            raise ValueError(
                f"coefficient matrix {a.tolist()} has a (nearly) singular square submatrix (condition "
                f"{self.condition:.3g}): some erasure patterns could not be decoded; use distinct positive values"
            )
        self.coefficients = a

    def parity_targets(self, outputs: torch.Tensor) -> torch.Tensor:
        return self._combine(self.coefficients, outputs)

    def _build_decoding_matrix(self, pattern: torch.Tensor) -> torch.Tensor:
        """Available originals are exact (their rows of D pick them), so only the lost ones are solved for,
        from the available parities: A[P, L] F_L = Y_P - A[P, O] F_O (least squares when more parities
        than losses).
        """
        k = self.k
        lost, kept = ~pattern[:k], pattern[:k]
        parities = pattern[k:]
        if int(parities.sum()) < int(lost.sum()):
            raise DecodingError(
                f"{int(lost.sum())} originals are lost but only {int(parities.sum())} parities arrived: "
                "a linear code needs at least as many parities as losses"
            )
        a_p = self.coefficients[parities]
        solve = torch.linalg.pinv(a_p[:, lost])  # (lost, parities)
        matrix = torch.zeros(k, self.n, dtype=torch.float64)
        matrix[kept, torch.nonzero(kept).flatten()] = 1.0
        lost_rows = torch.nonzero(lost).flatten()
        matrix[lost_rows.unsqueeze(1), torch.nonzero(kept).flatten()] = -solve @ a_p[:, kept]
        matrix[lost_rows.unsqueeze(1), (k + torch.nonzero(parities).flatten())] = solve
        return matrix

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k, "r": self.r, "coefficients": self.coefficients.tolist()}


class SumCode(LinearCode):
    """The paper's code: one parity P = X_1 + ... + X_k, decoded by subtraction."""

    name = "sum"

    def __init__(self, k: int, r: int = 1) -> None:
        if r != 1:
            raise ValueError(f"the {self.name} code has exactly one parity (r = 1): use --code linear for r > 1")
        super().__init__(k, 1, torch.ones(1, k, dtype=torch.float64))

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k, "r": 1}
