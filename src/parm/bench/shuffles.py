"""Background load as the paper makes it: "shuffles" moving data between random pairs of instances.

Each of N shuffle threads repeatedly picks a random pair of instances and moves a random 128 to
256 MB between them and back. In emulation (and in the simulator) a schedule of these transfers is
drawn in advance from a seed, and an instance's service time is multiplied by ``slowdown`` for calls
that start while a transfer touches it (each such call is hit with ``hit_probability``: contention
for a link is bursty, so not every call during a transfer suffers); the emulated instances and the
simulator read the same schedule, so they see the same interference.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

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

    def touched(self, instance: int, at: float) -> bool:
        """Whether a shuffle touches ``instance`` at time ``at``."""
        i = int(np.searchsorted(self.starts[instance], at, side="right")) - 1
        return i >= 0 and bool(self.ends[instance][i] > at)

    def factor(self, instance: int, at: float, coin: float = 0.0) -> float:
        """The service-time multiplier for a call that starts on ``instance`` at time ``at``; ``coin``, a uniform
        draw in [0, 1), decides whether a touched call is hit (always, with the default 0)."""
        return self.slowdown if coin < self.hit_probability and self.touched(instance, at) else 1.0

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


class RealShuffles:
    """``config.count`` threads that each, until stopped, pick a random pair of instances and have the first
    push a random ``min_mb``..``max_mb`` to the second and back over loopback (the paper's background load).

    ``port_of(instance)`` gives an instance's shuffle endpoint, looked up per transfer (a restarted instance
    has a new one); a transfer that meets a dead instance is skipped.
    """

    def __init__(self, config: ShuffleConfig, instances: list[int], port_of: Callable[[int], int | None],
                 seed: int = 0) -> None:
        self.config, self.instances, self.port_of = config, instances, port_of
        self.rng = np.random.default_rng(seed)
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self.moved_mb = 0.0
        self.threads = [threading.Thread(target=self._run, name=f"parm-shuffle-{i}", daemon=True)
                        for i in range(config.count if len(instances) >= 2 else 0)]

    def __enter__(self) -> RealShuffles:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.transfer_once()
            except OSError:
                continue  # an instance died mid-transfer: the next shuffle picks another pair

    def transfer_once(self) -> float:
        """One shuffle: a random pair, a random size, there and back; returns the megabytes moved."""
        with self._lock:
            a, b = self.rng.choice(self.instances, size=2, replace=False)
            megabytes = float(self.rng.uniform(self.config.min_mb, self.config.max_mb))
        source, target = self.port_of(int(a)), self.port_of(int(b))
        if source is None or target is None:
            raise ValueError("real shuffles need instances started with shuffle_endpoint=True")
        with socket.create_connection(("127.0.0.1", source)) as control:
            control.sendall(b"PUSH %d %d\n" % (target, int(megabytes * 2**20)))
            if control.makefile("rb").readline().strip() != b"DONE":
                raise OSError(f"instance {a} did not finish its transfer to instance {b}")
        with self._lock:
            self.moved_mb += 2 * megabytes
        return 2 * megabytes
