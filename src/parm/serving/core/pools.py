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


def model_name(base_name: str, pool: Pool) -> str:
    """The name a pool's model is served under on a model server: the base name, or ``BASE-parity-J``
    (`parm export` writes these, `parm instance` serves them, a cluster file names them)."""
    return base_name if pool.parity is None else f"{base_name}-{pool}"


def parse_pool(label: str) -> Pool:
    """The pool of a label as `Pool.__str__` writes it (``base``, ``parity-0``, ...)."""
    if label == "base":
        return BASE_POOL
    prefix, _, index = label.partition("-")
    if prefix != "parity" or not index.isdigit():
        raise ValueError(f"a pool is 'base' or 'parity-J' (J = 0, 1, ...), got {label!r}")
    return parity_pool(int(index))


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


def pools_of_sizes(mode: str, sizes: dict[Pool, int], r: int) -> dict[Pool, list[int]]:
    """Instance ids per pool for a cluster that lists its own instances (``sizes``: how many in each pool), numbered
    as `plan_pools` numbers them; refused unless the pools are exactly the ones ``mode`` uses."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    wanted = [BASE_POOL, *(parity_pool(j) for j in range(r))] if mode == "parm" else [BASE_POOL]
    missing = [str(pool) for pool in wanted if sizes.get(pool, 0) < 1]
    extra = sorted(str(pool) for pool in sizes if pool not in wanted)
    if missing or extra:
        problems = ([f"no instance of pool {', '.join(missing)}"] if missing else []) + (
            [f"pool {', '.join(extra)} is not used by mode {mode}"] if extra else [])
        raise ValueError(f"mode {mode} with r = {r} runs pools {', '.join(map(str, wanted))}: " + "; ".join(problems))
    pools, start = {}, 0
    for pool in wanted:
        pools[pool] = list(range(start, start + sizes[pool]))
        start += sizes[pool]
    return pools
