"""The coded frontend: the asyncio loop that drives a `Coordinator` with a backend and a clock.

HTTP requests become `submit` events, backend callbacks become `on_result` / `on_failure` /
`on_ready` events and one timer handle becomes `tick` events; the coordinator's actions become
backend submissions and answered futures. Everything runs on one event loop, so the coordinator
needs no locks. The coordinator's clock is `time.perf_counter`, not the loop's (uvloop's loop time
counts whole milliseconds, too coarse for latencies and hedging delays).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence

import numpy as np

from parm.serving.backends.base import Backend
from parm.serving.core.codec import codec_for
from parm.serving.core.coordinator import BASE_POOL, Answer, Coordinator
from parm.serving.http.model import ModelInfo, Overloaded, Prediction, Unavailable
from parm.serving.runtime.admission import Admission
from parm.serving.runtime.deployment import Deployment
from parm.serving.runtime.metrics import FrontendMetrics

log = logging.getLogger("parm.serving.runtime.frontend")


class Frontend:
    """Serves a `Deployment` through a `Backend`; implements `parm.serving.http.model.InferenceService`."""

    def __init__(self, deployment: Deployment, backend: Backend, *, max_pending: int = 4096,
                 max_waiting: int | None = None, max_wait_s: float = 1.0) -> None:
        """``max_pending`` queries (and requests) at once; up to ``max_waiting`` more requests (default: 4 x
        ``max_pending``) wait, unread, at most ``max_wait_s`` for a place before they are answered 503."""
        self.deployment, self.backend, self.max_pending = deployment, backend, max_pending
        self.model: ModelInfo = deployment.model
        self.metrics = FrontendMetrics(deployment.mode)
        self.admission = Admission(max_pending, 4 * max_pending if max_waiting is None else max_waiting, max_wait_s,
                                   on_reject=self.metrics.rejected.inc)
        self.registry = self.metrics.registry
        for collector in backend.collectors():
            self.registry.register(collector)
        self.coordinator: Coordinator | None = None
        self._futures: dict[int, asyncio.Future] = {}
        self._probes: dict[int, asyncio.Future] = {}
        self._recoveries: list[tuple[int, asyncio.Future]] = []  # (count awaited, future) of `recovered`
        self.recovered_count = 0
        self._ids = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ready = False
        self._turn_end_due = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every instance, learn F's output for a zero input (short groups), then take queries."""
        self._loop = asyncio.get_running_loop()
        await self.backend.start(self.deployment.instances, self)
        pad_output = await self._probe(self.deployment.pools[BASE_POOL][0])
        code = self.deployment.code
        codec = self.metrics.timed(codec_for(code)) if code is not None else None
        self.coordinator = Coordinator(self.deployment.config, self.deployment.pools, codec=codec,
                                       pad_output=pad_output, default_output=self.deployment.default_output)
        self.metrics.watch(self.coordinator.queue_depths, lambda: len(self._futures),
                           (lambda: self.coordinator.wrong_outputs) if self.coordinator.verifying else None)
        self._ready = True
        log.info("frontend ready", extra={"mode": self.deployment.mode, "instances": len(self.deployment.instances)})

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Refuse new queries, answer the ones in flight (up to ``drain_timeout``), stop the instances."""
        self._ready = False
        if self._futures:
            await asyncio.wait(list(self._futures.values()), timeout=drain_timeout)
        if self._timer is not None:
            self._timer.cancel()
        await self.backend.stop()

    def is_ready(self) -> bool:
        return self._ready

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the frontend runs on: call the backend (e.g. to inject faults) only from it."""
        if self._loop is None:
            raise RuntimeError("the frontend has not started")
        return self._loop

    async def recovered(self, count: int = 1) -> None:
        """Return once ``count`` instances in all have come back after a failure (for benchmarks and tests)."""
        if self.recovered_count < count:
            future = self.loop.create_future()
            self._recoveries.append((count, future))
            await future

    # ---- queries -----------------------------------------------------------------------------------

    async def infer(self, inputs: np.ndarray) -> Prediction:
        """Answer n queries (n, *input_shape), each protected by the deployment's redundancy mode."""
        if not self._ready:
            raise Unavailable("the server is starting or shutting down: retry shortly")
        if len(self._futures) + len(inputs) > self.max_pending:
            self.metrics.rejected.inc(len(inputs))
            raise Overloaded(f"{len(self._futures)} queries are pending (limit {self.max_pending}): retry later")
        now = time.perf_counter()
        futures = []
        for row in np.asarray(inputs, dtype=np.float32):
            query = next(self._ids)
            futures.append(future := self._loop.create_future())
            self._futures[query] = future
            self._apply(self.coordinator.submit(query, row, now, encode=False))  # parities: at the turn's end
        if len(futures) == 1:  # the usual request: no gather, no stack
            answer: Answer = await futures[0]
            return Prediction(answer.output[None], (answer.kind,), (answer.latency,))
        answers: Sequence[Answer] = await asyncio.gather(*futures)
        return Prediction(np.array([a.output for a in answers]), tuple(a.kind for a in answers),
                          tuple(a.latency for a in answers))

    # ---- backend events (BackendEvents) ------------------------------------------------------------

    def on_result(self, instance: int, batch_id: int, outputs: np.ndarray) -> None:
        if batch_id in self._probes:
            self._probes.pop(batch_id).set_result(outputs[0])
            return
        self._apply(self.coordinator.on_result(instance, batch_id, outputs, time.perf_counter()))

    def on_failure(self, instance: int, lost_batches: Sequence[int], reason: str) -> None:
        pool = self.deployment.instances[instance].pool
        self.metrics.failures.labels(str(pool)).inc()
        log.warning("instance failed", extra={"instance": instance, "pool": str(pool), "reason": reason,
                                              "lost_batches": len(lost_batches)})
        for batch in [b for b in lost_batches if b in self._probes]:
            self._probes.pop(batch).set_exception(RuntimeError(f"instance {instance} died during start-up: {reason}"))
        lost = [b for b in lost_batches if b >= 0]
        if self.coordinator is not None:
            self._apply(self.coordinator.on_failure(instance, lost, time.perf_counter()))

    def on_ready(self, instance: int) -> None:
        pool = self.deployment.instances[instance].pool
        self.metrics.recoveries.labels(str(pool)).inc()
        self.recovered_count += 1
        for count, future in self._recoveries:
            if self.recovered_count >= count and not future.done():
                future.set_result(None)
        self._recoveries = [(count, future) for count, future in self._recoveries if not future.done()]
        log.info("instance restarted", extra={"instance": instance, "pool": str(pool)})
        if self.coordinator is not None:
            self._apply(self.coordinator.on_ready(instance, time.perf_counter()))

    # ---- carrying out the coordinator's actions ----------------------------------------------------

    def _apply(self, actions: list) -> None:
        """Carry out the coordinator's actions; the turn's end encodes and sets the timer."""
        self._carry_out(actions)
        if not self._turn_end_due:
            self._turn_end_due = True
            self._loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        """Once per event-loop turn that had news: encode every group closed in it, in one codec call however many
        requests came (the originals are on their way first), and set the one timer."""
        self._turn_end_due = False
        self._carry_out(self.coordinator.encode(time.perf_counter()))
        self._schedule_tick()

    def _carry_out(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Answer):
                future = self._futures.pop(action.query)
                if not future.done():
                    future.set_result(action)
                self.metrics.answered(action.kind, action.latency)
            else:
                self.metrics.dispatched(self.deployment.instances[action.instance].pool)
                self.backend.submit(action.instance, action.batch, action.inputs)

    def _schedule_tick(self) -> None:
        at = self.coordinator.next_timer()
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(at - time.perf_counter(), self._tick) if at is not None else None

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        self._apply(self.coordinator.tick(time.perf_counter()))

    async def _probe(self, instance: int) -> np.ndarray:
        """F's output for a zero input, computed on ``instance`` (batch ids < 0 are probes)."""
        batch = -1 - len(self._probes)
        future = self._probes[batch] = self._loop.create_future()
        shape = self.deployment.model.inputs[0].shape[1:]
        self.backend.submit(instance, batch, np.zeros((1, *shape), dtype=np.float32))
        return await future
