"""Run each model instance as a Ray actor, on an existing Ray cluster or on a local Ray started for it.

Ray does not restart the actors itself (``max_restarts=0``): the frontend must hear which batches a
dead instance held, so this backend notices the death, reports it once and starts a replacement.
A death is noticed three ways (a batch that fails, a "watch" call that only ever ends when its
actor dies, and `RayBackend.kill`), all funnelled into `RayBackend._died`, which ignores news
about an actor it has already replaced.

The cluster's workers must be able to import ``parm`` (a local start uses this interpreter, so they can).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from parm.serving.backends.base import BackendEvents, SupervisingBackend
from parm.serving.instance import InstanceSpec, ModelInstance

log = logging.getLogger(__name__)

_WATCH_GROUP = "watch"
_RESTART_ATTEMPTS = 3
_RESTART_BACKOFF_S = 1.0


@ray.remote(concurrency_groups={_WATCH_GROUP: 1})
class _InstanceActor:
    """One instance inside a Ray actor; ``run`` and ``ping`` share the default group, one call at a time."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.instance = ModelInstance(InstanceSpec.from_dict(spec))
        self._never = threading.Event()

    def ping(self) -> int:
        return self.instance.spec.id

    def run(self, inputs: np.ndarray) -> np.ndarray:
        # Ray hands out read-only views of its object store; torch wants a writable array.
        return self.instance.run(inputs if inputs.flags.writeable else inputs.copy())

    @ray.method(concurrency_group=_WATCH_GROUP)
    def watch(self) -> None:
        """Never returns: its result is an error exactly when the actor dies, even an idle one."""
        self._never.wait()


@dataclass
class _Slot:
    """One instance: its spec, its live actor (None while down) and the batches that actor holds."""

    spec: InstanceSpec
    actor: Any = None
    generation: int = 0  # bumped at each death, so late news from a replaced actor is ignored
    running: dict[int, asyncio.Task[None]] = field(default_factory=dict)


class RayBackend(SupervisingBackend):
    """Instances as Ray actors; a dead actor is reported with the batches it held, then replaced."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus_per_instance: float = 1.0,
                 namespace: str = "parm") -> None:
        super().__init__()
        self.address = address
        self.num_cpus_per_instance = num_cpus_per_instance
        self.namespace = namespace
        self._slots: dict[int, _Slot] = {}
        self._owns_ray = False

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        ids = [spec.id for spec in instances]
        if len(set(ids)) != len(ids):
            raise ValueError(f"instance ids must be unique, got {ids}")
        self._begin(events)
        self._init_ray(len(instances))
        self._slots = {spec.id: _Slot(spec) for spec in instances}
        actors = {spec.id: self._create_actor(spec) for spec in instances}
        try:
            answers = await asyncio.gather(*(actor.ping.remote() for actor in actors.values()), return_exceptions=True)
        except BaseException:  # cancelled: leave no actor behind
            _kill_all(actors.values())
            raise
        failed = [(instance, exc) for instance, exc in zip(actors, answers) if isinstance(exc, BaseException)]
        if failed:
            _kill_all(actors.values())
            instance, exc = failed[0]
            raise RuntimeError(f"{len(failed)} instance(s) failed to start; instance {instance}: {exc}") from exc
        for instance, actor in actors.items():
            self._attach(self._slots[instance], actor)

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        slot = self._slots[instance]
        if batch_id in slot.running:
            raise ValueError(f"batch {batch_id} is already running on instance {instance}")
        if slot.actor is None:
            self._lost_later(instance, batch_id, f"instance {instance} is restarting")
            return
        ref = slot.actor.run.remote(inputs)
        slot.running[batch_id] = self._loop_().create_task(self._finish(slot, slot.generation, batch_id, ref))

    def kill(self, instance: int, *, restart: bool = True, restart_after: float = 0.0) -> None:
        """Kill an instance's actor (fault injection): its batches are reported lost; it is restarted
        ``restart_after`` seconds later unless ``restart`` is False (fail-stop)."""
        slot = self._slots[instance]
        if slot.actor is not None:
            self._died(slot, slot.generation, f"instance {instance} was killed", restart=restart,
                       restart_after=restart_after)

    async def stop(self) -> None:
        self._stopped = True
        tasks = [*self._tasks, *(task for slot in self._slots.values() for task in slot.running.values())]
        for task in tasks:
            task.cancel()
        for slot in self._slots.values():
            _kill_quietly(slot.actor)
            slot.actor, slot.running = None, {}
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    def _init_ray(self, n_instances: int) -> None:
        """Attach to the cluster, or start a local Ray with CPUs enough for every instance."""
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {}
        local = self.address is None and not os.environ.get("RAY_ADDRESS")
        if local:  # a local start may oversubscribe cores: the instances' threads are the real load
            cpus = max(os.cpu_count() or 1, math.ceil(n_instances * self.num_cpus_per_instance))
            kwargs = {"include_dashboard": False, "num_cpus": cpus}
        ray.init(address=self.address, namespace=self.namespace, ignore_reinit_error=True, log_to_driver=False,
                 **kwargs)
        self._owns_ray = self.address is None

    def _create_actor(self, spec: InstanceSpec) -> Any:
        return _InstanceActor.options(num_cpus=self.num_cpus_per_instance).remote(spec.to_dict())

    def _attach(self, slot: _Slot, actor: Any) -> None:
        """Make ``actor`` the slot's live actor and start watching for its death."""
        slot.actor = actor
        self._spawn(self._watch(slot, slot.generation, actor))

    async def _watch(self, slot: _Slot, generation: int, actor: Any) -> None:
        try:
            await actor.watch.remote()
        except Exception as exc:  # noqa: BLE001  (any error ending the call means the actor is gone)
            self._died(slot, generation, f"instance {slot.spec.id} died: {_describe(exc)}")

    async def _finish(self, slot: _Slot, generation: int, batch_id: int, ref: Any) -> None:
        try:
            outputs = await ref
        except Exception as exc:  # noqa: BLE001  (a dead actor, or a batch that raised: the instance is suspect)
            self._died(slot, generation, f"instance {slot.spec.id} failed on batch {batch_id}: {_describe(exc)}")
            return
        if slot.generation != generation or slot.running.get(batch_id) is not asyncio.current_task():
            return  # reported lost already
        del slot.running[batch_id]
        self._events_().on_result(slot.spec.id, batch_id, outputs if outputs.flags.writeable else outputs.copy())

    def _died(self, slot: _Slot, generation: int, reason: str, *, restart: bool = True,
              restart_after: float = 0.0) -> None:
        """The one path for a dead instance: report its batches lost once, then start a replacement."""
        if self._stopped or generation != slot.generation or slot.actor is None:
            return
        lost, current = list(slot.running), asyncio.current_task()
        for task in slot.running.values():
            if task is not current:
                task.cancel()
        old, slot.actor, slot.running = slot.actor, None, {}
        slot.generation += 1
        _kill_quietly(old)
        if restart:
            self._spawn(self._restart(slot, slot.generation, restart_after))
        log.warning("%s; %d batch(es) lost%s", reason, len(lost), ", restarting it" if restart else "")
        self._events_().on_failure(slot.spec.id, lost, reason)

    async def _restart(self, slot: _Slot, generation: int, delay: float = 0.0) -> None:
        """Start a replacement actor (``delay`` seconds on) and announce it once it answers; give up after a
        few failed tries."""
        if delay > 0:
            await asyncio.sleep(delay)  # an injected fault's downtime, not synchronisation
        for attempt in range(1, _RESTART_ATTEMPTS + 1):
            actor = self._create_actor(slot.spec)
            try:
                await actor.ping.remote()
            except asyncio.CancelledError:
                _kill_quietly(actor)
                raise
            except Exception as exc:  # noqa: BLE001
                _kill_quietly(actor)
                log.error("instance %d failed to restart (try %d): %s", slot.spec.id, attempt, _describe(exc))
                if attempt < _RESTART_ATTEMPTS:
                    await asyncio.sleep(_RESTART_BACKOFF_S * attempt)  # back off: a cluster short of room may recover
                continue
            if self._stopped or generation != slot.generation:
                _kill_quietly(actor)
                return
            self._attach(slot, actor)
            self._events_().on_ready(slot.spec.id)
            return
        log.error("instance %d stays down: every restart failed; its batches will be reported lost", slot.spec.id)


def _kill_all(actors: Iterable[Any]) -> None:
    for actor in actors:
        _kill_quietly(actor)


def _kill_quietly(actor: Any) -> None:
    if actor is None:
        return
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # noqa: BLE001  (already gone, or Ray shut down: either way it is dead)
        log.debug("ray.kill failed: %s", exc)


def _describe(exc: BaseException) -> str:
    """A one-line reason: Ray errors carry long multi-line tracebacks."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first[:200]}"
