"""A discrete-event model of a serving cluster, driving the very `Coordinator` the HTTP frontend uses.

The paper's questions (tail latency under load, background shuffles, failures, thousands of instances) need
runs longer and larger than emulation allows. Here only the instances are modelled: a call that starts on
instance i at time t takes a service time drawn from the scenario's law times the shuffle slowdown
``ShuffleSchedule.factor(i, t)``, plus, for a model fitted on a testbed (`parm.bench.fit`), a delay drawn from
the call's law while a shuffle touches its host or while none does; grouping, encoding, dispatch, decoding, hedging and deadlines are the
coordinator's own code on a virtual clock, with payloads None (no tensors), so the policies simulated are
the policies served.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from parm.bench.report import AT_FRONTEND, KIND_CODES, LatencyRun, latency_drift, percentiles
from parm.bench.scenario import Scenario
from parm.serving.core.coordinator import Coordinator, Dispatch
from parm.serving.core.pools import plan_pools
from parm.workload.arrivals import arrival_times
from parm.workload.emulation import InstanceClock
from parm.workload.faults import Fault, fault_times
from parm.workload.service_time import EPISODE_STREAM, FRONTEND_STREAM, stream_rng
from parm.workload.shuffles import ShuffleSchedule

SHUFFLE_SLACK_S = 10.0  # shuffles are drawn this far beyond the last arrival, for the calls still queued
_PROGRESS_EVERY = 1 << 16
NO_INPUT = np.zeros(0, dtype=np.float32)  # a simulated query's input: the coordinator moves it, nobody reads it


class NullCodec:
    """The code of a simulation: empty parities and outputs; whether k outputs are in is the coordinator's job."""

    def __init__(self, k: int, r: int) -> None:
        self.k, self.r = k, r

    def encode(self, groups: Any) -> np.ndarray:
        return np.zeros((len(groups), self.r, 0), dtype=np.float32)

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        return np.zeros((len(outputs), self.k, 0), dtype=np.float32)

    def verify(self, outputs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """Every group consistent: without values, verification costs only its wait for all k + r outputs."""
        return np.zeros((len(outputs), self.k, 0), dtype=np.float32), np.full(len(outputs), -1)


def draw_shuffles(scenario: Scenario, instances: int, horizon: float) -> ShuffleSchedule:
    """The background transfers among ``instances`` over ``horizon`` seconds: the emulated instances' schedule
    (same seed; a longer horizon only appends transfers)."""
    return ShuffleSchedule.draw(scenario.shuffles, instances, horizon, seed=scenario.seed)


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
        if fault.kind in ("crash-restart", "link-down"):  # no link here: unreachable for restart_s
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
    chunk = min(8192, 16 + math.ceil(1.1 * total * tasks_per_query / instances))  # about one chunk per instance
    hosts = scenario.hosts or instances
    schedule = draw_shuffles(scenario, hosts, last_arrival + SHUFFLE_SLACK_S)
    delay = None if scenario.call_delay is None else scenario.call_delay[mode].arranged(
        stream_rng(scenario.seed, EPISODE_STREAM), last_arrival + SHUFFLE_SLACK_S)
    clocks = [InstanceClock(scenario.service, schedule, i, scenario.seed, chunk=chunk, row=i % hosts, delay=delay)
              for i in range(instances)]
    failures = fault_times(scenario.faults, instances, last_arrival, scenario.seed)
    with tqdm(total=total, desc=f"simulate {mode}", unit="query", leave=False, disable=not progress) as bar:
        latencies, kinds, counts = _run(_coordinator(scenario, mode, pools), arrivals.tolist(), clocks, failures,
                                        bar)
    metadata = {"system": "simulated", "instances": instances, "wall_s": time.perf_counter() - started,
                "seed": scenario.seed, **counts}
    keep = slice(scenario.warmup, None)
    overhead = scenario.frontend_for(mode).sample(stream_rng(scenario.seed, FRONTEND_STREAM), scenario.queries)
    if delay is not None:  # a model of a measured cluster: the coordinator's latency is the frontend's
        metadata[AT_FRONTEND] = percentiles(latencies[keep])
    measured = latencies[keep] + overhead
    metadata["latency_drift"] = latency_drift(arrivals[keep], measured)
    return LatencyRun(mode, label or scenario.name, measured, kinds[keep], metadata)


def _coordinator(scenario: Scenario, mode: str, pools: dict) -> Coordinator:
    config = scenario.coordinator_config(mode)
    if mode != "parm":
        return Coordinator(config, pools)
    return Coordinator(config, pools, codec=NullCodec(scenario.k, scenario.r), pad_output=NO_INPUT)


def _run(coordinator: Coordinator, arrivals: list[float], clocks: list[InstanceClock],
         failures: list[tuple[float, int, Fault]], bar: tqdm) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The event loop: arrivals, completions and faults in time order, coordinator timers when due.

    The heap holds (time, batch, instance) completions and the fault events; a completion whose batch the
    instance no longer runs (it failed meanwhile) is dropped. Everything hot is a local name.
    """
    submit, on_result, tick, next_timer = (coordinator.submit, coordinator.on_result, coordinator.tick,
                                           coordinator.next_timer)
    heappush, heappop, inf = heapq.heappush, heapq.heappop, math.inf
    service_times = [clock.service_time for clock in clocks]
    codes = KIND_CODES
    instances, batch_size = len(clocks), coordinator.config.batch_size
    nothing = [[NO_INPUT] * n for n in range(batch_size + 1)]
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
            out = submit(i, NO_INPUT, now)
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
                out = on_result(instance, batch, nothing[sizes[instance]], now)
            else:
                continue
        for action in out:
            if type(action) is Dispatch:
                instance, batch, size = action.instance, action.batch, len(action.inputs)
                service = service_times[instance](size, now)
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
