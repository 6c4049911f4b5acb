"""The one interface every erasure code implements: encode, decode, and parity-model targets.

Shapes, for a batch of B coding groups of k queries with r parities:

- ``encode``: inputs (B, k, *input_shape) -> parity queries (B, r, *input_shape)
- ``parity_targets``: base outputs (B, k, m) -> what each parity model should output (B, r, m)
- ``decode``: outputs (B, k + r, m) in the order originals then parities, and an availability mask
  (B, k + r) or (k + r,) -> all k original outputs (B, k, m); available originals pass through.

Training, evaluation, serving and simulation call only these, so none of them knows which code it
holds. Unavailable entries of ``outputs`` may hold anything (zeros, stale values): codes ignore them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch


class DecodingError(ValueError):
    """A group lacks the outputs its code needs (more than r missing, or too few parities)."""


class Code(ABC):
    """An erasure code over k queries with r parities."""

    name: str

    def __init__(self, k: int, r: int) -> None:
        if k < 1 or r < 1:
            raise ValueError(f"a code needs k >= 1 and r >= 1, got k={k}, r={r}")
        self.k, self.r = k, r

    @property
    def n(self) -> int:
        """Outputs per group: k originals plus r parities."""
        return self.k + self.r

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Parity queries (B, r, ...) for groups of inputs (B, k, ...)."""

    def parity_targets(self, outputs: torch.Tensor) -> torch.Tensor:
        """What the r parity models should return (B, r, m), given the k base outputs (B, k, m).

        Only codes decoded with parity models have targets; a learned code runs F itself on its
        parities and is trained end to end instead.
        """
        raise NotImplementedError(f"the {self.name} code has no parity-model targets: it runs F on its parities")

    @abstractmethod
    def decode(self, outputs: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """All k original outputs (B, k, m), rebuilt from the available ones among (B, k + r, m)."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A JSON-ready description from which `parm.codes.code_from_spec` rebuilds this code."""

    def check_available(self, available: torch.Tensor, batch: int) -> torch.Tensor:
        """The mask as (B, k + r) booleans, refusing groups with more than r outputs missing."""
        mask = torch.as_tensor(available, dtype=torch.bool)
        if mask.shape[-1] != self.n:
            raise DecodingError(f"availability mask has {mask.shape[-1]} entries, expected k + r = {self.n}")
        mask = mask.expand(batch, self.n) if mask.dim() == 1 else mask
        missing = (~mask).sum(dim=1)
        if bool((missing > self.r).any()):
            worst = int(missing.max())
            raise DecodingError(
                f"{worst} of a group's {self.n} outputs are missing, but a code with r = {self.r} "
                f"rebuilds at most {self.r}: wait for more outputs or use a code with larger r"
            )
        return mask

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, r={self.r})"
