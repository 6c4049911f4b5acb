"""Background load as the paper makes it: "shuffles" moving data between random pairs of instances.

Each of N shuffle threads repeatedly picks a random pair of instances and moves a random 128 to
256 MB between them and back. In emulation (and in the simulator) a schedule of these transfers is
drawn in advance from a seed, and an instance's service time is multiplied by ``slowdown`` for calls
that start while a transfer touches it (each such call is hit with ``hit_probability``: contention
for a link is bursty, so not every call during a transfer suffers); the emulated instances and the
simulator read the same schedule, so they see the same interference. Real transfers between
instance processes are `parm.workload.shuffle_traffic`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SHUFFLE_MODES = ("emulated", "real")  # real: bytes cross loopback between instance processes (bench only)


@dataclass(frozen=True)
class ShuffleConfig:
    """How many shuffles run at once, how much each moves, how fast, and how much they slow an instance."""

    count: int = 4
    min_mb: float = 128.0
    max_mb: float = 256.0
    bandwidth_mb_s: float = 1000.0
    slowdown: float = 3.0
    hit_probability: float = 1.0
    mode: str = "emulated"

    def __post_init__(self) -> None:
        if self.mode not in SHUFFLE_MODES:
            raise ValueError(f"shuffle mode {self.mode!r} is not one of {SHUFFLE_MODES}")
        if (self.count < 0 or not 0 < self.min_mb <= self.max_mb or self.bandwidth_mb_s <= 0 or self.slowdown < 1
                or not 0 < self.hit_probability <= 1):
            raise ValueError(f"invalid shuffle settings {self}: need count >= 0, 0 < min_mb <= max_mb, "
                             "bandwidth_mb_s > 0, slowdown >= 1 and 0 < hit_probability <= 1")


@dataclass(frozen=True)
class ShuffleSchedule:
    """Per instance, the disjoint sorted intervals (seconds from the run's start) when a shuffle touches it."""

    starts: tuple[np.ndarray, ...]
    ends: tuple[np.ndarray, ...]
    slowdown: float
    hit_probability: float = 1.0
    _lists: tuple[tuple[list[float], list[float]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Python lists for `touched`: bisect on a list is several times faster than a numpy call per event.
        object.__setattr__(self, "_lists", tuple((s.tolist(), e.tolist()) for s, e in zip(self.starts, self.ends,
                                                                                          strict=True)))

    @classmethod
    def draw(cls, config: ShuffleConfig, instances: int, duration: float, seed: int = 0) -> ShuffleSchedule:
        """The transfers of ``config.count`` shuffle threads over ``duration`` seconds among ``instances``."""
        rng = np.random.default_rng(seed)
        touched: list[list[tuple[float, float]]] = [[] for _ in range(instances)]
        for _ in range(config.count if instances >= 2 else 0):
            now = 0.0
            while now < duration:
                a, b = rng.choice(instances, size=2, replace=False)
                megabytes = rng.uniform(config.min_mb, config.max_mb)
                end = now + 2 * megabytes / config.bandwidth_mb_s  # there and back
                touched[a].append((now, end))
                touched[b].append((now, end))
                now = end
        merged = [_merge(spans) for spans in touched]
        starts = tuple(np.array([s for s, _ in spans]) for spans in merged)
        ends = tuple(np.array([e for _, e in spans]) for spans in merged)
        return cls(starts, ends, config.slowdown, config.hit_probability)

    @classmethod
    def none(cls, instances: int) -> ShuffleSchedule:
        empty = tuple(np.zeros(0) for _ in range(instances))
        return cls(empty, empty, 1.0)

    def slows(self, instance: int) -> bool:
        """Whether any call of ``instance`` is ever slowed (else `factor` is 1 throughout)."""
        return self.slowdown != 1.0 and len(self.starts[instance]) > 0

    def touched(self, instance: int, at: float) -> bool:
        """Whether a shuffle touches ``instance`` at time ``at``."""
        starts, ends = self._lists[instance]
        i = bisect_right(starts, at) - 1
        return i >= 0 and ends[i] > at

    def factor(self, instance: int, at: float, coin: Callable[[], float] | None = None) -> float:
        """The service-time multiplier for a call that starts on ``instance`` at time ``at``. A touched call is hit
        when ``coin()``, a uniform draw in [0, 1) taken for touched calls only, is below ``hit_probability`` (always
        without a coin, or when ``hit_probability`` is 1)."""
        if not self.touched(instance, at):
            return 1.0
        if self.hit_probability < 1.0 and coin is not None and coin() >= self.hit_probability:
            return 1.0
        return self.slowdown

    def busy_fraction(self, instance: int, duration: float) -> float:
        """The share of ``duration`` during which ``instance`` is touched (for reports and tests)."""
        covered = np.clip(self.ends[instance], 0, duration) - np.clip(self.starts[instance], 0, duration)
        return float(covered.sum() / duration)

    def intervals(self, instance: int) -> list[list[float]]:
        """One instance's intervals as JSON-ready pairs (to hand to an emulated instance process)."""
        return [[float(s), float(e)] for s, e in zip(self.starts[instance], self.ends[instance], strict=True)]


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of possibly overlapping intervals, as disjoint sorted intervals."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
