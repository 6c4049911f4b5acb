"""Emulated service times: an instance holds each answer to a time drawn from a measured profile.

On a machine too small to host many busy instances, an emulated instance still computes the real
model's output, then waits until a service time drawn from a profile has passed, multiplied by the
background-shuffle slowdown if a shuffle touches it when the call starts. The schedule's clock is
wall time since ``epoch``, shared by all instances of a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from parm.bench.service_time import SERVICE_STREAM, SLOWDOWN_STREAM, ServiceTime, stream_rng
from parm.bench.shuffles import ShuffleSchedule


@dataclass(frozen=True)
class Emulation:
    """One instance's service-time law, its shuffle intervals and the run's clock origin."""

    service: ServiceTime
    intervals: tuple[tuple[float, float], ...] = ()
    slowdown: float = 1.0
    hit_probability: float = 1.0
    epoch: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service.to_dict(), "intervals": [list(i) for i in self.intervals],
                "slowdown": self.slowdown, "hit_probability": self.hit_probability, "epoch": self.epoch,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Emulation:
        return cls(ServiceTime.from_dict(data["service"]), tuple(tuple(i) for i in data["intervals"]),
                   data["slowdown"], data["hit_probability"], data["epoch"], data["seed"])

    @classmethod
    def for_instance(cls, service: ServiceTime, schedule: ShuffleSchedule, instance: int, epoch: float,
                     seed: int) -> Emulation:
        return cls(service, tuple(map(tuple, schedule.intervals(instance))), schedule.slowdown,
                   schedule.hit_probability, epoch, seed)


class EmulatedClock:
    """Draws the service time of each call of one instance."""

    def __init__(self, emulation: Emulation, instance: int) -> None:
        self.emulation, self.instance = emulation, instance
        self.rngs: dict[int, np.random.Generator] = {}  # per batch size: the simulator's streams
        self.coins = stream_rng(emulation.seed, SLOWDOWN_STREAM, instance)
        self.schedule = ShuffleSchedule(
            (np.array([s for s, _ in emulation.intervals]),), (np.array([e for _, e in emulation.intervals]),),
            emulation.slowdown, emulation.hit_probability,
        )

    def service_time(self, batch_size: int, started_wall: float | None = None) -> float:
        """Seconds the call that started at wall time ``started_wall`` should take."""
        at = (time.time() if started_wall is None else started_wall) - self.emulation.epoch
        if batch_size not in self.rngs:
            self.rngs[batch_size] = stream_rng(self.emulation.seed, SERVICE_STREAM, self.instance, batch_size)
        draw = self.emulation.service.sample(self.rngs[batch_size], 1, batch_size)[0]
        coin = self.coins.random() if self.schedule.touched(0, at) else 0.0
        return float(draw) * self.schedule.factor(0, at, coin)
