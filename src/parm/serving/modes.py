"""The four redundancy modes, and how many instances of which kind each one runs.

Every mode gets the same budget: ``instances`` base instances plus, except for ``none``, the
``r * ceil(instances / k)`` extra instances that ParM's parity models need. The paper's baseline,
Equal-Resources, and hedging spend the extra instances on copies of the base model instead.
"""

from __future__ import annotations

import math

from parm.serving.coordinator import BASE_POOL, parity_pool

MODES = ("parm", "equal-resources", "none", "hedged")


def extra_instances(instances: int, k: int, r: int) -> int:
    """The redundancy budget: r parity instances for every k base instances, rounded up."""
    return r * math.ceil(instances / k)


def plan_pools(mode: str, instances: int, k: int, r: int) -> dict[str, list[int]]:
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
