"""Backends run model instances somewhere and report back; they know nothing about codes.

The frontend tells a backend which instances to start (`InstanceSpec`), submits batches to a named
instance, and hears back through `BackendEvents`: a batch's outputs, an instance that failed (with
the batches it lost), and an instance that is (again) ready. All calls and callbacks happen on the
frontend's asyncio event loop.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

import numpy as np

from parm.serving.instance import InstanceSpec


class BackendEvents(Protocol):
    def on_result(self, instance: int, batch_id: int, outputs: np.ndarray) -> None:
        """Batch ``batch_id`` finished on ``instance`` with ``outputs`` (one row per input)."""

    def on_failure(self, instance: int, lost_batches: Sequence[int], reason: str) -> None:
        """``instance`` died; the batches it held will never report. The backend restarts it."""

    def on_ready(self, instance: int) -> None:
        """``instance`` (re)started and takes batches; called after a restart, not at first start."""


class Backend(ABC):
    """Starts, feeds, supervises and stops model instances."""

    name: str

    @abstractmethod
    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        """Start every instance; return once all are ready to take batches."""

    @abstractmethod
    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        """Send a batch (float32, (n, *input_shape)) to an idle instance without waiting for it."""

    @abstractmethod
    def kill(self, instance: int, *, restart: bool = True, restart_after: float = 0.0) -> None:
        """Kill an instance now (fault injection): its batches are reported lost and it is restarted, or, with
        ``restart=False``, stays down (fail-stop). ``restart_after``: seconds at least before it is back."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every instance; batches still running are abandoned."""

    def collectors(self) -> Sequence[Any]:
        """Prometheus collectors of the backend's own (connections, calls), served beside the frontend's."""
        return ()


class SupervisingBackend(Backend):
    """What a backend that supervises its instances from the frontend's loop needs (Ray actors, remote servers):
    the loop and the events once started, background tasks kept alive, and a batch reported lost from a later
    callback (so that the frontend finishes its own bookkeeping of `submit` first)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._events: BackendEvents | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    def _begin(self, events: BackendEvents) -> None:
        """Called by `start`: the loop it runs on, and whom to tell."""
        self._loop, self._events, self._stopped = asyncio.get_running_loop(), events, False

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self._loop_().create_task(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def _lost_later(self, instance: int, batch_id: int, reason: str) -> None:
        self._loop_().call_soon(self._report_lost, instance, [batch_id], reason)

    def _report_lost(self, instance: int, batch_ids: list[int], reason: str) -> None:
        if not self._stopped:
            self._events_().on_failure(instance, batch_ids, reason)

    def _loop_(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._loop

    def _events_(self) -> BackendEvents:
        if self._events is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._events
