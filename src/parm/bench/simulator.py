"""A discrete-event model of a serving cluster, driving the very `Coordinator` the HTTP frontend uses.

The paper's questions (tail latency under load, background shuffles, failures, thousands of instances) need
runs longer and larger than emulation allows. Here only the instances are modelled: a call that starts on
instance i at time t takes a service time drawn from the scenario's law times the shuffle slowdown
``ShuffleSchedule.factor(i, t)``; grouping, encoding, dispatch, decoding, hedging and deadlines are the
coordinator's own code on a virtual clock, with payloads None (no tensors), so the policies simulated are
the policies served.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_right
from typing import Any

import numpy as np
from tqdm import tqdm

from parm.bench.report import KIND_CODES, LatencyRun
from parm.bench.scenario import Fault, Scenario
from parm.bench.service_time import (
    FAULT_STREAM,
    FRONTEND_STREAM,
    SERVICE_STREAM,
    SLOWDOWN_STREAM,
    ServiceTime,
    stream_rng,
)
from parm.bench.shuffles import ShuffleSchedule
from parm.serving.coordinator import Coordinator, Dispatch
from parm.serving.modes import plan_pools

SHUFFLE_SLACK_S = 10.0  # shuffles are drawn this far beyond the last arrival, for the calls still queued
_PROGRESS_EVERY = 1 << 16


class NullCodec:
    """The code of a simulation: nothing to encode or decode, only whether k outputs are in (the coordinator's job)."""

    def __init__(self, k: int, r: int) -> None:
        self.k, self.r = k, r

    def encode(self, groups: Any) -> list[list[None]]:
        return [[None] * self.r] * len(groups)

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        return np.zeros((len(outputs), self.k, 0), dtype=np.float32)


def arrival_times(rate: float, count: int, seed: int) -> np.ndarray:
    """Poisson arrival times (s): the load generator's open-loop draws, so simulation and bench see one sequence."""
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, size=count))


def draw_shuffles(scenario: Scenario, instances: int, horizon: float) -> ShuffleSchedule:
    """The background transfers among ``instances`` over ``horizon`` seconds: the emulated instances' schedule
    (same seed; a longer horizon only appends transfers)."""
    return ShuffleSchedule.draw(scenario.shuffles, instances, horizon, seed=scenario.seed)


def fault_times(faults: tuple[Fault, ...], instances: int, horizon: float, seed: int) -> list[tuple[float, int, Fault]]:
    """(time, instance, fault) of every failure: fixed ones, and Poisson ones at ``rate_per_s`` over ``horizon``.

    A fixed fault without an instance strikes instance 0, as in `parm bench latency`; a random one without an
    instance strikes a random instance each time.
    """
    rng = stream_rng(seed, FAULT_STREAM)
    failures = []
    for fault in faults:
        if fault.at_s is not None:
            times = [fault.at_s]
        else:
            times = np.sort(rng.uniform(0, horizon, rng.poisson(fault.rate_per_s * horizon))).tolist()
        for at in times:
            if fault.instance is not None:
                instance = fault.instance
            else:
                instance = 0 if fault.at_s is not None else int(rng.integers(instances))
            if not 0 <= instance < instances:
                raise ValueError(f"fault on instance {instance}, but this mode runs instances 0..{instances - 1}")
            failures.append((float(at), instance, fault))
    return failures


class _ServiceDraws:
    """Service times per (instance, batch size), each an independent seeded stream drawn in big chunks.

    One stream per instance gives an instance's n-th call the same draw in every mode (common random
    numbers), so differences between modes are less sampling noise; chunks keep numpy out of the per-event path.
    """

    def __init__(self, service: ServiceTime, seed: int, batch_size: int, chunk: int) -> None:
        self.service, self.seed, self.batch_size, self.chunk = service, seed, batch_size, chunk
        self.buffers: dict[int, list[float]] = {}
        self.rngs: dict[int, np.random.Generator] = {}

    def refill(self, key: int) -> list[float]:
        """Stream ``key`` = instance * batch_size + size - 1: its next chunk, in reverse, to consume with ``pop()``."""
        instance, size = divmod(key, self.batch_size)
        if key not in self.rngs:
            self.rngs[key] = stream_rng(self.seed, SERVICE_STREAM, instance, size + 1)
        buffer = self.buffers[key] = self.service.sample(self.rngs[key], self.chunk, size + 1)[::-1].tolist()
        return buffer


class _Slowdowns:
    """`ShuffleSchedule.factor` with Python lists and bisect: the same answer, without a numpy call per event."""

    def __init__(self, schedule: ShuffleSchedule, seed: int) -> None:
        self.starts = [s.tolist() for s in schedule.starts]
        self.ends = [e.tolist() for e in schedule.ends]
        self.slowdown, self.hit_probability, self.seed = schedule.slowdown, schedule.hit_probability, seed
        self.active = schedule.slowdown != 1.0 and any(self.starts)
        self.coins: dict[int, list[float]] = {}
        self.rngs: dict[int, np.random.Generator] = {}

    def factor(self, instance: int, at: float) -> float:
        starts = self.starts[instance]
        i = bisect_right(starts, at) - 1
        if i < 0 or self.ends[instance][i] <= at:
            return 1.0
        if self.hit_probability < 1.0 and self._coin(instance) >= self.hit_probability:
            return 1.0
        return self.slowdown

    def _coin(self, instance: int) -> float:
        """The instance's next uniform draw, from the same stream an emulated instance uses."""
        coins = self.coins.get(instance)
        if not coins:
            if instance not in self.rngs:
                self.rngs[instance] = stream_rng(self.seed, SLOWDOWN_STREAM, instance)
            coins = self.coins[instance] = self.rngs[instance].random(1024)[::-1].tolist()
        return coins.pop()


class _Faults:
    """Failures and restarts as heap entries with negative batch ids (``-1 - j`` for event j), and their effects.

    An instance is up, down (crashed, restarting) or dead (fail-stop); a fault that strikes an instance already
    down does nothing, except that a fail-stop makes a crashed instance dead, so its restart does not revive it.
    """

    UP, DOWN, DEAD = 0, 1, 2

    def __init__(self, coordinator: Coordinator, failures: list[tuple[float, int, Fault]], instances: int,
                 running: list[int], heap: list[tuple[float, int, int]]) -> None:
        self.coordinator, self.running, self.heap = coordinator, running, heap
        self.state = [self.UP] * instances
        self.events: list[Fault | None] = []  # None: a restart
        self.failures = 0
        for at, instance, fault in failures:
            self._push(at, instance, fault)

    def _push(self, at: float, instance: int, fault: Fault | None) -> None:
        self.events.append(fault)
        heapq.heappush(self.heap, (at, -len(self.events), instance))

    def apply(self, event: int, instance: int, now: float) -> list[Any]:
        """Carry out event ``-1 - batch`` on ``instance``; returns the coordinator's actions."""
        fault, state = self.events[event], self.state[instance]
        if fault is None:
            if state != self.DOWN:
                return []
            self.state[instance] = self.UP
            return self.coordinator.on_ready(instance, now)
        if state != self.UP:
            if fault.kind == "fail-stop":
                self.state[instance] = self.DEAD
            return []
        self.failures += 1
        lost, self.running[instance] = self.running[instance], -1
        if fault.kind == "crash-restart":
            self.state[instance] = self.DOWN
            self._push(now + fault.restart_s, instance, None)
        else:
            self.state[instance] = self.DEAD
        return self.coordinator.on_failure(instance, [lost] if lost >= 0 else [], now)


def simulate(scenario: Scenario, mode: str, *, label: str | None = None, progress: bool = False) -> LatencyRun:
    """Simulate ``warmup + queries`` Poisson arrivals on ``mode``'s cluster; the warm-up queries are dropped.

    Each query's latency is the coordinator's answer latency plus a draw from ``scenario.frontend_for(mode)``, the
    per-query cost of the real frontend, loopback and operating system that the simulated coordinator does
    not pay (a constant, or a distribution measured by `parm bench calibrate`). ``label`` names the variant
    (default: the scenario's name).
    """
    started = time.perf_counter()
    total = scenario.warmup + scenario.queries
    arrivals = arrival_times(scenario.rate, total, scenario.seed)
    pools = plan_pools(mode, scenario.base_instances, scenario.k, scenario.r)
    instances = sum(len(ids) for ids in pools.values())
    last_arrival = float(arrivals[-1])
    tasks_per_query = 1 + scenario.r / scenario.k if mode == "parm" else 1
    draws = _ServiceDraws(scenario.service, scenario.seed, scenario.batch_size,
                          chunk=min(8192, 16 + math.ceil(1.1 * total * tasks_per_query / instances)))
    slowdowns = _Slowdowns(draw_shuffles(scenario, instances, last_arrival + SHUFFLE_SLACK_S), scenario.seed)
    failures = fault_times(scenario.faults, instances, last_arrival, scenario.seed)
    with tqdm(total=total, desc=f"simulate {mode}", unit="query", leave=False, disable=not progress) as bar:
        latencies, kinds, counts = _run(_coordinator(scenario, mode, pools), arrivals.tolist(), draws, slowdowns,
                                        failures, instances, scenario.batch_size, bar)
    metadata = {"system": "simulated", "instances": instances, "wall_s": time.perf_counter() - started,
                "seed": scenario.seed, **counts}
    keep = slice(scenario.warmup, None)
    overhead = scenario.frontend_for(mode).sample(stream_rng(scenario.seed, FRONTEND_STREAM), scenario.queries)
    return LatencyRun(mode, label or scenario.name, latencies[keep] + overhead, kinds[keep], metadata)


def _coordinator(scenario: Scenario, mode: str, pools: dict[str, list[int]]) -> Coordinator:
    config = scenario.coordinator_config(mode)
    if mode != "parm":
        return Coordinator(config, pools)
    return Coordinator(config, pools, codec=NullCodec(scenario.k, scenario.r), pad_output=np.zeros(0, np.float32))


def _run(coordinator: Coordinator, arrivals: list[float], draws: _ServiceDraws, slowdowns: _Slowdowns,
         failures: list[tuple[float, int, Fault]], instances: int, batch_size: int,
         bar: tqdm) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The event loop: arrivals, completions and faults in time order, coordinator timers when due.

    The heap holds (time, batch, instance) completions and the fault events; a completion whose batch the
    instance no longer runs (it failed meanwhile) is dropped. Everything hot is a local name.
    """
    submit, on_result, tick, next_timer = (coordinator.submit, coordinator.on_result, coordinator.tick,
                                           coordinator.next_timer)
    batch_size_of = coordinator.batch_size_of
    heappush, heappop, inf = heapq.heappush, heapq.heappop, math.inf
    buffers, refill = draws.buffers, draws.refill
    slowed, slow_factor = slowdowns.active, slowdowns.factor
    codes = KIND_CODES
    nones = [[None] * n for n in range(batch_size + 1)]
    total = len(arrivals)
    latencies, kinds = [math.nan] * total, [0] * total
    running, sizes = [-1] * instances, [0] * instances
    heap: list[tuple[float, int, int]] = []
    faults = _Faults(coordinator, failures, instances, running, heap)
    i = answered = calls = tasks = 0
    now = 0.0
    report_at = _PROGRESS_EVERY
    while answered < total:
        t_arrival = arrivals[i] if i < total else inf
        t_event = heap[0][0] if heap else inf
        t_timer = next_timer()
        if t_timer is not None and t_timer <= t_arrival and t_timer <= t_event:
            now = t_timer
            out = tick(now)
        elif t_arrival <= t_event:
            if t_arrival == inf:
                raise ValueError(f"{total - answered} queries were never answered: the faults left no instance to "
                                 "serve them; use crash-restart faults or set deadline_ms")
            now = t_arrival
            out = submit(i, None, now)
            i += 1
            if i == report_at:
                bar.update(_PROGRESS_EVERY)
                report_at += _PROGRESS_EVERY
        else:
            now, batch, instance = heappop(heap)
            if batch < 0:
                out = faults.apply(-1 - batch, instance, now)
            elif running[instance] == batch:
                running[instance] = -1
                out = on_result(instance, batch, nones[sizes[instance]], now)
            else:
                continue
        for action in out:
            if type(action) is Dispatch:
                instance, batch = action.instance, action.batch
                size = 1 if batch_size == 1 else batch_size_of(batch)
                key = instance * batch_size + size - 1
                service = (buffers.get(key) or refill(key)).pop()
                if slowed:
                    service *= slow_factor(instance, now)
                running[instance], sizes[instance] = batch, size
                heappush(heap, (now + service, batch, instance))
                calls += 1
                tasks += size
            else:
                latencies[action.query] = action.latency
                kinds[action.query] = codes[action.kind]
                answered += 1
    bar.update(total - bar.n)
    counts = {"simulated_s": now, "calls": calls, "tasks": tasks, "answers": answered, "failures": faults.failures}
    return np.array(latencies), np.array(kinds, dtype=np.int8), counts
