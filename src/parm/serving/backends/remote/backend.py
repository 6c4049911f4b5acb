"""Instances that are model servers elsewhere: any Open Inference Protocol server (Triton, KServe, `parm instance`).

parm starts nothing here: the servers run already, one model each per entry of the cluster file
(`parm.serving.backends.remote.cluster`). The backend keeps one persistent connection per instance and the
coordinator keeps one batch in flight on it. A call that fails (refused or reset connection, timeout, an
error status, a malformed answer) fails the instance: its batch is reported lost, so the coordinator
reconstructs or re-sends it, and the instance is probed (``/v2/health/ready`` and its model's ready
endpoint) with exponential backoff until it answers again, then reported ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from parm.serving.backends.base import BackendEvents, SupervisingBackend
from parm.serving.backends.remote.client import InstanceClient, connect
from parm.serving.backends.remote.cluster import Endpoint
from parm.serving.instance import InstanceSpec
from parm.serving.prometheus import DeferredHistogram

log = logging.getLogger(__name__)

CALL_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Backoff:
    """Probe delays: ``first`` seconds, doubling up to ``most``; a start gives up after ``start_timeout``."""

    first: float = 0.05
    most: float = 2.0
    start_timeout: float = 120.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.most)


@dataclass
class _Instance:
    """One remote instance: its client, whether it takes batches, and the batch it runs."""

    spec: InstanceSpec
    client: InstanceClient
    up: bool = False
    generation: int = 0  # bumped at each failure, so late news from before it is ignored
    running: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0})
    probes: int = 0


class RemoteBackend(SupervisingBackend):
    """Instances as model servers at URLs; a failed call fails its instance until a probe finds it ready."""

    name = "remote"

    def __init__(self, endpoints: Sequence[Endpoint], *, backoff: Backoff = Backoff(),
                 client: Callable[[Endpoint], InstanceClient] = connect, record_calls: bool = False) -> None:
        """``endpoints[i]`` serves instance i (ids run base pool first, as `plan_pools` numbers them).
        ``record_calls``: keep (start, seconds, instance) of every answered call in ``call_log`` (perf_counter
        clock), the trace a simulator's model of the cluster is learned from (`parm.bench.fit`)."""
        super().__init__()
        self.endpoints, self.backoff, self._client = list(endpoints), backoff, client
        self.call_log: list[tuple[float, float, int]] | None = [] if record_calls else None
        self._instances: dict[int, _Instance] = {}
        self.call_seconds = DeferredHistogram("parm_remote_call_seconds", "Time of one call to a model server, "
                                              "sent to answered, per pool and outcome.", ["pool", "outcome"],
                                              CALL_BUCKETS)

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        if len(instances) != len(self.endpoints):
            raise ValueError(f"the deployment has {len(instances)} instances but the cluster file lists "
                             f"{len(self.endpoints)}")
        for spec in instances:
            endpoint = self.endpoints[spec.id]
            if endpoint.pool != spec.pool:
                raise ValueError(f"instance {spec.id} ({endpoint.url}) is in pool {endpoint.pool}, the deployment "
                                 f"expects {spec.pool}")
        self._begin(events)
        self._instances = {spec.id: _Instance(spec, self._client(self.endpoints[spec.id])) for spec in instances}
        await self._await_ready()

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        state = self._instances[instance]
        if not state.up:
            self._lost_later(instance, batch_id, f"instance {instance} is down")
            return
        state.running[batch_id] = self._loop_().create_task(self._call(state, state.generation, batch_id, inputs))

    def kill(self, instance: int, *, restart: bool = True, restart_after: float = 0.0) -> None:
        """Fault injection from the frontend's side: the instance fails now (its batches lost, its connection
        closed) and is probed again ``restart_after`` seconds later, or never with ``restart=False``."""
        state = self._instances[instance]
        if state.up:
            self._failed(state, state.generation, f"instance {instance} was killed", probe_after=restart_after,
                         probe=restart)

    async def stop(self) -> None:
        self._stopped = True
        tasks = [*self._tasks, *(t for state in self._instances.values() for t in state.running.values())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(state.client.close() for state in self._instances.values()), return_exceptions=True)

    def collectors(self) -> Sequence[Any]:
        return (self.call_seconds, _RemoteCollector(self))

    # ---- calls -----------------------------------------------------------------------------------

    async def _call(self, state: _Instance, generation: int, batch_id: int, inputs: np.ndarray) -> None:
        start = time.perf_counter()
        try:
            outputs = await state.client.infer(inputs)
        except Exception as err:  # noqa: BLE001  (an InstanceError, or a client bug: either way the batch is lost)
            state.calls["failed"] += 1
            self.call_seconds.observe((str(state.spec.pool), "failed"), time.perf_counter() - start)
            self._failed(state, generation, f"instance {state.spec.id} failed on batch {batch_id}: {err}")
            return
        state.calls["ok"] += 1
        seconds = time.perf_counter() - start
        self.call_seconds.observe((str(state.spec.pool), "ok"), seconds)
        if self.call_log is not None:
            self.call_log.append((start, seconds, state.spec.id))
        if state.generation != generation or state.running.pop(batch_id, None) is None:
            return  # reported lost already
        self._events_().on_result(state.spec.id, batch_id, outputs)

    def _failed(self, state: _Instance, generation: int, reason: str, *, probe: bool = True,
                probe_after: float = 0.0) -> None:
        """The one path for a failed instance: report its batches lost once, then probe it back."""
        if self._stopped or generation != state.generation or not state.up:
            return
        lost, current = list(state.running), asyncio.current_task()
        for task in state.running.values():
            if task is not current:
                task.cancel()
        state.up, state.running = False, {}
        state.generation += 1
        self._spawn(state.client.close())  # a fresh connection for the probes
        if probe:
            self._spawn(self._recover(state, state.generation, probe_after))
        log.warning("%s; %d batch(es) lost%s", reason, len(lost), ", probing it" if probe else "")
        self._events_().on_failure(state.spec.id, lost, reason)

    async def _recover(self, state: _Instance, generation: int, after: float) -> None:
        """Probe with backoff until the server is ready again, then report the instance ready."""
        if after > 0:
            await asyncio.sleep(after)  # an injected fault's downtime
        for delay in self.backoff.delays():
            state.probes += 1
            if await state.client.ready():
                break
            await asyncio.sleep(delay)  # backoff between probes of a server that is down
        if self._stopped or generation != state.generation:
            return
        state.up = True
        log.info("instance %d (%s) is ready again", state.spec.id, state.client.endpoint.url)
        self._events_().on_ready(state.spec.id)

    async def _await_ready(self) -> None:
        """Wait, probing with backoff, until every server and its model are ready; else say which are not."""
        waiting = set(self._instances)
        deadline = time.perf_counter() + self.backoff.start_timeout
        for delay in self.backoff.delays():
            answers = await asyncio.gather(*(self._instances[i].client.ready() for i in sorted(waiting)))
            for instance, ready in zip(sorted(waiting), answers, strict=True):
                self._instances[instance].probes += 1
                if ready:
                    self._instances[instance].up = True
                    waiting.discard(instance)
            if not waiting:
                return
            if time.perf_counter() + delay > deadline:
                break
            await asyncio.sleep(delay)  # backoff between probes of servers still starting
        await self.stop()
        names = "; ".join(f"{self.endpoints[i].url} (model {self.endpoints[i].model})" for i in sorted(waiting))
        raise RuntimeError(f"{len(waiting)} model server(s) not ready after {self.backoff.start_timeout:.0f} s: "
                           f"{names}. Start them (e.g. `parm instance RUN --pool POOL --port PORT`) or fix the "
                           "cluster file's url and model")


class _RemoteCollector:
    """Connections, retries, calls, probes and health of each remote instance, read when scraped."""

    def __init__(self, backend: RemoteBackend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        labels = ["instance", "pool", "url"]
        connections = CounterMetricFamily("parm_remote_connections", "Connections opened to each model server.",
                                          labels=labels)
        retries = CounterMetricFamily("parm_remote_retries", "Calls sent again on a fresh connection (the server "
                                      "had closed an idle one).", labels=labels)
        calls = CounterMetricFamily("parm_remote_calls", "Calls to each model server, by outcome.",
                                    labels=[*labels, "outcome"])
        probes = CounterMetricFamily("parm_remote_probes", "Readiness probes sent to each model server.",
                                     labels=labels)
        up = GaugeMetricFamily("parm_remote_up", "1 while a model server takes batches, 0 while it is failed.",
                               labels=labels)
        for instance, state in self.backend._instances.items():
            values = [str(instance), str(state.spec.pool), state.client.endpoint.url]
            connections.add_metric(values, state.client.connects)
            retries.add_metric(values, getattr(state.client, "retries", 0))
            for outcome, count in state.calls.items():
                calls.add_metric([*values, outcome], count)
            probes.add_metric(values, state.probes)
            up.add_metric(values, 1.0 if state.up else 0.0)
        yield from (connections, retries, calls, probes, up)
