"""Erasure patterns: which of a group's k + r outputs are available (True) or lost (False)."""

from __future__ import annotations

from itertools import combinations

import torch


def erasure_patterns(k: int, r: int, *, parities_may_fail: bool = False) -> torch.Tensor:
    """Every availability mask (P, k + r) with 1 to r outputs lost, at least one of them an original.

    With ``parities_may_fail`` False only originals are lost (parities all arrive): the patterns
    degraded-mode accuracy is judged on. With True, parities may be lost too, as long as some
    original is: the patterns a learned decoder is trained under. Rows are ordered by the number
    of lost originals.
    """
    candidates = range(k + r) if parities_may_fail else range(k)
    masks = []
    for lost in range(1, r + 1):
        for positions in combinations(candidates, lost):
            if min(positions) >= k:
                continue  # only parities lost: every original arrived, nothing to rebuild
            mask = torch.ones(k + r, dtype=torch.bool)
            mask[list(positions)] = False
            masks.append(mask)
    masks.sort(key=lambda m: int((~m[:k]).sum()))
    return torch.stack(masks)


def lost_originals(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the originals a mask lacks."""
    return torch.nonzero(~mask[:k]).flatten()
