"""Pools of instances, and how many instances of which pool each redundancy mode runs.

A pool is the model its instances run: the base model F, or parity j (its parity model, or F
itself for a learned code). Every mode gets the same budget: ``instances`` base instances plus,
except for ``none``, the ``r * ceil(instances / k)`` extra instances that ParM's parity models
need. The paper's baseline, Equal-Resources, and hedging spend the extra instances on copies of
the base model instead.
"""

from __future__ import annotations

import math
from typing import NamedTuple

MODES = ("parm", "equal-resources", "none", "hedged")


class Pool(NamedTuple):
    """A pool's identity: ``parity`` None for the base model, else the parity index j (0..r-1)."""

    parity: int | None = None

    def __str__(self) -> str:
        """The pool's label in metrics and logs: ``base`` or ``parity-J``."""
        return "base" if self.parity is None else f"parity-{self.parity}"


BASE_POOL = Pool()


def parity_pool(index: int) -> Pool:
    """The pool of instances that serve parity ``index``."""
    return Pool(index)


def extra_instances(instances: int, k: int, r: int) -> int:
    """The redundancy budget: r parity instances for every k base instances, rounded up."""
    return r * math.ceil(instances / k)


def plan_pools(mode: str, instances: int, k: int, r: int) -> dict[Pool, list[int]]:
    """Instance ids per pool for ``mode``; ids run 0.. over all pools, base instances first."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if instances < 1:
        raise ValueError(f"a deployment needs at least one base instance, got {instances}")
    extra = extra_instances(instances, k, r)
    if mode == "none":
        return {BASE_POOL: list(range(instances))}
    if mode != "parm":
        return {BASE_POOL: list(range(instances + extra))}
    pools = {BASE_POOL: list(range(instances))}
    per_parity = extra // r
    for j in range(r):
        start = instances + j * per_parity
        pools[parity_pool(j)] = list(range(start, start + per_parity))
    return pools
