"""Emulated instances: each call takes a service time drawn from a law, slowed while a shuffle touches it.

One `InstanceClock` per instance gives its calls their service times: the n-th call of a batch size
takes the n-th draw of that instance's seeded stream, multiplied by the shuffle slowdown when a
background transfer touches the instance as the call starts (and the instance's seeded coin says
the call is hit). Emulated instances ask it on a wall clock (seconds since the run's ``epoch``), the
simulator on its virtual clock: the same object, so the same seed gives the same draws in both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from parm.workload.service_time import DELAY_STREAM, SERVICE_STREAM, SLOWDOWN_STREAM, ServiceTime, stream_rng
from parm.workload.shuffles import ShuffleSchedule

CHUNK = 1024


@dataclass(frozen=True)
class CallDelay:
    """What a real cluster adds to each call's service time (its links, queues and CPU contention), learned from a
    testbed run (`parm.bench.fit`): the simulator's alternative to a slowdown factor.

    A call starting at t is delayed by ``shared(t)``, the cluster-wide level of that moment (a stalled frontend or a
    busy CPU delays every call in flight together), plus its own draw: from ``busy`` while a shuffle touches the
    instance's host, else from ``idle`` (the spread around the shared level; the sum is floored at 0).
    ``episodes`` is the measured shared level (s) every ``step_s``; `arranged` cuts it into blocks and lays them out
    in a seeded random order over a run, so the simulation meets the measured episodes, not the measured timeline.
    """

    idle: ServiceTime
    busy: ServiceTime
    episodes: tuple[float, ...] = ()
    step_s: float = 0.005
    block_s: float = 1.0
    shared: tuple[float, ...] = ()  # this run's arrangement of the episodes (from `arranged`)

    def arranged(self, rng: np.random.Generator, horizon_s: float) -> CallDelay:
        """This delay with the episodes laid out over ``horizon_s``: whole blocks drawn with replacement."""
        if not self.episodes:
            return self
        block = max(1, round(self.block_s / self.step_s))
        series = np.asarray(self.episodes)
        starts = np.arange(0, max(len(series) - block, 0) + 1)
        count = int(np.ceil(horizon_s / self.step_s / block))
        picks = rng.choice(starts, size=count)
        layout = np.concatenate([series[start:start + block] for start in picks])
        return replace(self, shared=tuple(layout.tolist()))

    def shared_at(self, at: float) -> float:
        i = int(at / self.step_s)
        return self.shared[i] if 0 <= i < len(self.shared) else 0.0


class InstanceClock:
    """The service times of one instance's calls. Draws come in chunks (numpy stays off the per-call path);
    the chunk size changes nothing but speed, since every stream is drawn in order."""

    def __init__(self, service: ServiceTime, schedule: ShuffleSchedule, instance: int, seed: int, *,
                 row: int | None = None, chunk: int = CHUNK, delay: CallDelay | None = None) -> None:
        """``row``: the instance's row in ``schedule`` (default: ``instance``, its stream's key); ``delay``: added to
        each call, from the busy law while a shuffle touches the row, else the idle one."""
        self.service, self.schedule, self.instance, self.seed, self.chunk = service, schedule, instance, seed, chunk
        self.row = instance if row is None else row
        self.slowed = schedule.slows(self.row)  # its own row: a cluster-wide scan per clock would be quadratic
        self._draws: dict[int, list[float]] = {}
        self._streams: dict[int, np.random.Generator] = {}
        self._coins: list[float] = []
        self._coin_stream = stream_rng(seed, SLOWDOWN_STREAM, instance)
        self.delay = delay
        self._delays: tuple[list[float], list[float]] = ([], [])
        self._delay_streams = None if delay is None else (stream_rng(seed, DELAY_STREAM, instance, 0),
                                                          stream_rng(seed, DELAY_STREAM, instance, 1))

    def service_time(self, batch_size: int, at: float) -> float:
        """Seconds that a call of ``batch_size`` queries starting at time ``at`` takes."""
        draws = self._draws.get(batch_size) or self._refill(batch_size)
        service = draws.pop()
        if self.slowed:
            service *= self.schedule.factor(self.row, at, self._coin)
        if self.delay is not None:
            service += max(0.0, self.delay.shared_at(at) + self._delay(self.schedule.touched(self.row, at)))
        return service

    def _delay(self, busy: bool) -> float:
        draws = self._delays[busy]
        if not draws:
            law = self.delay.busy if busy else self.delay.idle  # type: ignore[union-attr]
            draws.extend(law.sample(self._delay_streams[busy], self.chunk)[::-1].tolist())  # type: ignore[index]
        return draws.pop()

    def _refill(self, batch_size: int) -> list[float]:
        """The next chunk of stream (SERVICE_STREAM, instance, batch size), reversed to consume with ``pop()``."""
        if batch_size not in self._streams:
            self._streams[batch_size] = stream_rng(self.seed, SERVICE_STREAM, self.instance, batch_size)
        draws = self._draws[batch_size] = self.service.sample(self._streams[batch_size], self.chunk,
                                                              batch_size)[::-1].tolist()
        return draws

    def _coin(self) -> float:
        if not self._coins:
            self._coins = self._coin_stream.random(self.chunk)[::-1].tolist()
        return self._coins.pop()


@dataclass(frozen=True)
class Emulation:
    """What one emulated instance process needs: the service law, its shuffle intervals and the run's clock
    origin (wall time) and seed."""

    service: ServiceTime
    intervals: tuple[tuple[float, float], ...] = ()
    slowdown: float = 1.0
    hit_probability: float = 1.0
    epoch: float = 0.0
    seed: int = 0

    def clock(self, instance: int) -> InstanceClock:
        """``instance``'s clock; ask it for a call starting at wall time ``t`` at ``t - epoch``."""
        schedule = ShuffleSchedule((np.array([s for s, _ in self.intervals]),),
                                   (np.array([e for _, e in self.intervals]),), self.slowdown, self.hit_probability)
        return InstanceClock(self.service, schedule, instance, self.seed, row=0)

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
