"""Queues of instance work, one per pool, and the idle instances they feed: the shared-queue dispatch.

Work waits in its pool's queue as units: a unit is one task (a query's original, a hedge copy, one parity),
or, with the paper's fixed batches, a whole batch that must leave together. An idle instance takes up to
``batch_size`` tasks at once (dynamic batching: a maximum, never a wait), or exactly one unit (fixed batches).
A dynamic batch never carries two members of one coding group: an instance that is slow for the batch would
take both away, and a group that lost two members cannot be rebuilt from one parity. Like the coordinator it
belongs to, a dispatcher does no I/O and reads no clock.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

from parm.serving.core.pools import Pool


class Dispatch(NamedTuple):
    """Run ``inputs`` (n, *input_shape) on ``instance`` and report them as batch ``batch``."""

    instance: int
    batch: int
    inputs: np.ndarray


class Task:
    """One unit of instance work: a query's original (or hedge copy), or one parity of a group."""

    __slots__ = ("query", "group", "slot", "pool", "payload", "cancelled", "queued")

    def __init__(self, query: int | None, group: int | None, slot: int, pool: Pool, payload: np.ndarray) -> None:
        self.query, self.group, self.slot, self.pool, self.payload = query, group, slot, pool, payload
        self.cancelled = self.queued = False


Unit = list[Task]


class Dispatcher:
    """The pools' queues and idle instances; ``fixed``: units are whole batches, sent as they are."""

    def __init__(self, pools: Mapping[Pool, Iterable[int]], batch_size: int, *, fixed: bool = False) -> None:
        self.batch_size, self.fixed = batch_size, fixed
        self._idle: dict[Pool, deque[int]] = {pool: deque(ids) for pool, ids in pools.items()}
        self._pool_of = {instance: pool for pool, ids in self._idle.items() for instance in ids}
        self._queues: dict[Pool, deque[Unit]] = {pool: deque() for pool in pools}
        self._queued = dict.fromkeys(pools, 0)
        self._down: set[int] = set()
        self._busy: dict[int, tuple[int, list[Task]]] = {}  # batch -> (instance, tasks)
        self._batches = itertools.count()

    def queue(self, tasks: list[Task], *, front: bool = False) -> None:
        """Queue tasks of one pool, in order: one unit (a fixed batch), or a unit each (dynamic batching). Work an
        instance lost goes back to the front."""
        if not tasks:
            return
        pool = tasks[0].pool
        queue = self._queues[pool]
        if self.fixed or len(tasks) == 1:  # one unit (the usual call: one task)
            queue.appendleft(tasks) if front else queue.append(tasks)
        else:
            units = [[task] for task in tasks]
            queue.extendleft(reversed(units)) if front else queue.extend(units)
        for task in tasks:
            task.queued = True
        self._queued[pool] += len(tasks)

    def cancel(self, task: Task) -> None:
        """The task became useless (its query answered, its group done): it is skipped when its turn comes."""
        if not task.cancelled:
            task.cancelled = True
            if task.queued:
                self._queued[task.pool] -= 1

    def finished(self, instance: int, batch: int) -> list[Task]:
        """A batch came back: its tasks; the instance is idle again."""
        holder, tasks = self._busy.pop(batch)
        if holder != instance:
            self._busy[batch] = (holder, tasks)
            raise ValueError(f"batch {batch} ran on instance {holder}, not {instance}")
        self._release(instance)
        return tasks

    def lost(self, instance: int, batches: Iterable[int]) -> list[list[Task]]:
        """``instance`` died with ``batches``: it is down until `up`; the tasks of each lost batch."""
        self._down.add(instance)
        idle = self._idle[self._pool_of[instance]]
        self._idle[self._pool_of[instance]] = deque(i for i in idle if i != instance)
        return [self._busy.pop(batch)[1] for batch in batches]

    def up(self, instance: int) -> None:
        """``instance`` (re)started and takes work."""
        self._down.discard(instance)
        self._release(instance)

    def depths(self) -> dict[Pool, int]:
        """Live (not cancelled) tasks waiting per pool."""
        return dict(self._queued)

    def pump(self) -> list[Dispatch]:
        """Give queued work to idle instances."""
        dispatches = []
        for pool, queue in self._queues.items():
            idle = self._idle[pool]
            while idle and queue:
                tasks = self._next_batch(queue)
                if not tasks:
                    break
                instance, batch = idle.popleft(), next(self._batches)
                self._busy[batch] = (instance, tasks)
                payloads = [task.payload for task in tasks]
                inputs = payloads[0][None] if len(payloads) == 1 else np.array(payloads)  # np.stack, 3x faster
                dispatches.append(Dispatch(instance, batch, inputs))
        return dispatches

    def _next_batch(self, queue: deque[Unit]) -> list[Task]:
        """The live tasks of the next batch: the next unit with any (fixed), or up to ``batch_size`` tasks, each of
        another group (dynamic, where every unit is one task)."""
        tasks: list[Task] = []
        if self.fixed:
            while queue and not tasks:
                tasks = self._take(queue.popleft())
            return tasks
        groups: set[int] = set()
        passed: list[Unit] = []  # left for a later batch: their group already rides in this one
        while queue and len(tasks) < self.batch_size:
            unit = queue.popleft()
            task = unit[0]
            if task.cancelled:
                task.queued = False
            elif task.group is not None and task.group in groups:
                passed.append(unit)
            else:
                task.queued = False
                self._queued[task.pool] -= 1
                tasks.append(task)
                groups.add(task.group)
        queue.extendleft(reversed(passed))
        return tasks

    def _take(self, unit: Unit) -> list[Task]:
        """A unit off its queue: its live tasks."""
        live = []
        for task in unit:
            task.queued = False
            if not task.cancelled:
                self._queued[task.pool] -= 1
                live.append(task)
        return live

    def _release(self, instance: int) -> None:
        if instance not in self._down:
            self._idle[self._pool_of[instance]].append(instance)
