"""The coded-dispatch logic, without I/O: events in, actions out.

A `Coordinator` forms coding groups of k queries in arrival order, queues originals for the base
instances and (once a group is complete, or has waited long enough) the code's r parity queries for
the parity instances, and answers every query exactly once with the first of: its own prediction, a
reconstruction decoded as soon as any k of the group's k + r outputs are in, or the default
prediction at its deadline. It holds no sockets, processes or clocks: the HTTP frontend, both
backends, the simulator and the tests drive the same object by calling

    submit(query, x, now)        a query arrived (encode=False: its group's parities wait for encode(now))
    on_result(instance, batch, outputs, now)
    on_failure(instance, batches, now)   an instance died; its batches are lost
    on_ready(instance, now)      an instance (re)started
    tick(now)                    a timer (deadline, group wait, hedge) is due: see next_timer()

each of which returns the actions to carry out: `Dispatch` a batch to an idle instance, `Answer` a
query. The four redundancy modes differ only in their pools and two switches: a codec (parm) and a
hedging delay (hedged); `none` and `equal-resources` are the same logic with fewer or more instances.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from parm.serving.core.dispatch import Dispatch, Dispatcher, Task
from parm.serving.core.groups import Block, Group, Query
from parm.serving.core.pools import BASE_POOL, Pool, parity_pool

# How a query was answered (the response parameter ``answer``).
ORIGINAL, RECONSTRUCTED, DEFAULT = "original", "reconstructed", "default"
ANSWER_KINDS = (ORIGINAL, RECONSTRUCTED, DEFAULT)


class GroupCodec(Protocol):
    """The code as the coordinator uses it: batches of groups to encode and to decode."""

    def encode(self, groups: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
        """The r parity queries of each group, from its members' inputs (a short group is padded with zeros)."""

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Original outputs (B, k, m) from outputs (B, k + r, m) and an availability mask (B, k + r)."""

    def verify(self, outputs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """From every group's k + r outputs: its originals decoded without its one wrong output (B, k, m), and that
        output's slot (B,): -1 for none, k + r for more than one (`parm.codes.byzantine`)."""


BATCHING = ("dynamic", "fixed")


@dataclass(frozen=True)
class CoordinatorConfig:
    """The switches of one frontend. ``codec`` None: no coding; ``hedge_after`` None: no hedging.

    ``batching`` "dynamic": an idle instance takes up to ``batch_size`` queued tasks (a maximum: nothing waits for a
    batch to fill). "fixed", the paper's: base instances get batches of exactly ``batch_size`` queries (a batch
    waits at most ``group_wait`` to fill), and query i of each of k consecutive batches form coding group i.

    ``verify`` (a tolerance; r >= 2): a group's members are answered once all its k + r outputs are in, checked
    for one wrong ("Byzantine") output, which is rebuilt from the others; a group still short of outputs
    ``verify_wait`` after its parities left is answered as without ``verify`` (first output or reconstruction).
    """

    k: int = 2
    r: int = 1
    batch_size: int = 1
    group_wait: float = 0.005
    deadline: float | None = None
    hedge_after: float | None = None
    batching: str = "dynamic"
    verify: float | None = None
    verify_wait: float = 0.1

    def __post_init__(self) -> None:
        if self.verify is not None and not self.verify > 0:
            raise ValueError(f"verify is a tolerance > 0 (a syndrome's norm, relative to the originals'), got {self.verify}")
        if self.k < 1 or self.r < 1 or self.batch_size < 1:
            raise ValueError(f"k, r and batch_size must be >= 1, got {self.k}, {self.r}, {self.batch_size}")
        if self.batching not in BATCHING:
            raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")
        for name in ("group_wait", "deadline", "hedge_after", "verify_wait"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {value}")


class Answer(NamedTuple):
    """Query ``query`` is answered with ``output`` (original, reconstructed or default)."""

    query: int
    output: np.ndarray | None
    kind: str
    latency: float


class Coordinator:
    """Groups, encodes, decodes and answers, over a `Dispatcher`; see the module docstring for the protocol."""

    def __init__(
        self,
        config: CoordinatorConfig,
        pools: Mapping[Pool, Iterable[int]],
        *,
        codec: GroupCodec | None = None,
        pad_output: np.ndarray | None = None,
        default_output: np.ndarray | None = None,
    ) -> None:
        self.config, self.codec = config, codec
        self.pad_output, self.default_output = pad_output, default_output
        if BASE_POOL not in pools:
            raise ValueError(f"a coordinator needs a {BASE_POOL!r} pool, got {sorted(pools)}")
        if codec is not None:
            missing = [parity_pool(j) for j in range(config.r) if parity_pool(j) not in pools]
            if missing:
                raise ValueError(f"coded dispatch needs instances for {', '.join(missing)}")
            if pad_output is None:
                raise ValueError("coded dispatch needs pad_output, F's output for a zero input (short groups)")
            if config.verify is not None and config.r < 2:
                raise ValueError(f"verify needs r >= 2 (one parity shows that an output is wrong, not which), "
                                 f"got r = {config.r}")
        self.fixed = config.batching == "fixed"
        self.width = config.batch_size if self.fixed else 1  # groups per block: one per column of a batch
        self.dispatcher = Dispatcher(pools, config.batch_size, fixed=self.fixed)
        self._parity_pools = [parity_pool(j) for j in range(config.r)]
        self._zero_output = np.zeros_like(pad_output) if pad_output is not None else None  # a missing slot's stand-in
        self._queries: dict[int, Query] = {}
        self._groups: dict[int, Group] = {}
        self._block: Block | None = None
        self._closed: list[Block] = []  # blocks complete (or timed out) and not encoded yet
        self._timers: list[tuple[float, int, str, int]] = []
        self._ids = itertools.count()
        self.verifying = codec is not None and config.verify is not None
        self.wrong_outputs = {"located": 0, "unresolved": 0}  # groups with one wrong output found; with more

    # ---- events -------------------------------------------------------------------------------------

    def submit(self, query: int, x: np.ndarray, now: float, *, encode: bool = True) -> list[Dispatch | Answer]:
        """A query arrived with input ``x``: queue its original and add it to the coding group being filled.

        A group this query completes is encoded at once, or, with ``encode=False``, at the next `encode`
        call: the frontend sends a request's originals first and encodes their groups after, in one batch,
        so that no original waits for an encoding.
        """
        if query in self._queries:
            raise ValueError(f"query {query} was already submitted")
        state = self._queries[query] = Query(now)
        task = Task(query, None, 0, BASE_POOL, x)
        state.tasks.append(task)
        if self.config.deadline is not None:
            self._timer(now + self.config.deadline, "deadline", query)
        if self.config.hedge_after is not None:
            self._timer(now + self.config.hedge_after, "hedge", query)
        if self.codec is None and not self.fixed:
            self.dispatcher.queue([task])
        else:
            self._join_block(query, state, task, x, now)
        actions = self._pump([])
        return actions + self.encode(now) if encode else actions

    def encode(self, now: float) -> list[Dispatch | Answer]:
        """Encode every group closed since the last call, in one batched codec call, and queue their parities."""
        self._encode_closed(now)
        return self._pump([])

    def on_result(self, instance: int, batch: int, outputs: Sequence[Any], now: float) -> list[Dispatch | Answer]:
        """A batch finished: answer its queries, record outputs in their groups, decode what can be."""
        actions: list[Dispatch | Answer] = []
        tasks = self.dispatcher.finished(instance, batch)
        touched: dict[int, Group] = {}
        for task, output in zip(tasks, outputs, strict=True):
            group = self._groups.get(task.group) if task.group is not None else None
            if task.query is not None and (group is None or not group.verifying):
                self._answer(task.query, output, ORIGINAL, now, actions)
            if group is not None:
                group.arrived += group.outputs[task.slot] is None  # a slot counts once, whatever arrives twice
                group.outputs[task.slot] = output
                touched[task.group] = group
        if self.verifying:
            n = self.config.k + self.config.r
            self._verify([gid for gid, group in touched.items() if group.verifying and group.encoded and group.arrived == n],
                         now, actions)
        decodable = [gid for gid, group in touched.items() if not group.verifying and self._decodable(group)]
        if decodable:
            self._decode(decodable, now, actions)
        return self._pump(actions)

    def on_failure(self, instance: int, batches: Iterable[int], now: float) -> list[Dispatch | Answer]:
        """``instance`` died: it is down until `on_ready`, and work it lost that still matters runs again."""
        for tasks in self.dispatcher.lost(instance, batches):
            self.dispatcher.queue([task for task in tasks if self._useful(task)], front=True)
        return self._pump([])

    def on_ready(self, instance: int, now: float) -> list[Dispatch | Answer]:
        """``instance`` (re)started and takes work."""
        self.dispatcher.up(instance)
        return self._pump([])

    def tick(self, now: float) -> list[Dispatch | Answer]:
        """Fire every timer due by ``now``: deadlines, group waits and hedges."""
        actions: list[Dispatch | Answer] = []
        if self._block is not None and self._block.closes_at <= now:
            self._close_block()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, ref = heapq.heappop(self._timers)
            if not self._live(kind, ref):
                continue
            if kind == "verify":
                self._stop_verifying(ref, now, actions)
            elif kind == "deadline":
                self._answer(ref, self.default_output, DEFAULT, now, actions)
            else:  # hedge
                state = self._queries[ref]
                copy = Task(ref, None, 0, BASE_POOL, state.tasks[0].payload)
                state.tasks.append(copy)
                self.dispatcher.queue([copy])
        self._encode_closed(now)
        return self._pump(actions)

    def next_timer(self) -> float | None:
        """When `tick` next has something to do (None: no timer pending); timers made moot (a query answered, a
        group checked) are dropped here, so that the frontend does not wake up for them. A block being filled
        closes at its own time: a block per k queries would cost a heap entry each, most of them moot."""
        while self._timers and not self._live(*self._timers[0][2:]):
            heapq.heappop(self._timers)
        at = self._timers[0][0] if self._timers else None
        block = self._block
        return block.closes_at if block is not None and (at is None or block.closes_at < at) else at

    def _live(self, kind: str, ref: int) -> bool:
        """Whether a timer still has something to do: its group still checking, its query unanswered."""
        if kind == "verify":
            return ref in self._groups and self._groups[ref].verifying
        state = self._queries.get(ref)
        return state is not None and not state.answered

    # ---- what the frontend reports ---------------------------------------------------------------

    def queue_depths(self) -> dict[Pool, int]:
        """Live (not cancelled) tasks waiting per pool."""
        return self.dispatcher.depths()

    @property
    def pending(self) -> int:
        """Queries submitted and not answered yet."""
        return len(self._queries)

    # ---- grouping and coding -------------------------------------------------------------------------

    def _join_block(self, query: int, state: Query, task: Task, x: np.ndarray, now: float) -> None:
        """Member n of a block joins group n mod width at slot n // width; its original leaves with its batch."""
        block = self._block
        if block is None:
            groups = [next(self._ids) for _ in range(self.width)] if self.codec is not None else []
            slots = self.config.k + self.config.r
            for gid in groups:
                self._groups[gid] = Group(slots, verifying=self.verifying)
            block = self._block = Block(now + self.config.group_wait, groups)
        if self.codec is not None:
            gid = block.groups[block.members % self.width]
            group = self._groups[gid]
            state.group, task.group, task.slot = gid, gid, len(group.members)
            group.members.append(query)
            group.inputs.append(x)
            group.pending += 1
        block.members += 1
        block.row.append(task)
        if len(block.row) == self.width:
            self.dispatcher.queue(block.row)
            block.row = []
        if block.members == (self.config.k if self.codec is not None else 1) * self.width:
            self._close_block()

    def _close_block(self) -> None:
        """No more members for the block being filled: its last batch leaves, its groups wait for `_encode_closed`."""
        block, self._block = self._block, None
        self.dispatcher.queue(block.row)
        if self.codec is not None:
            self._closed.append(block)

    def _encode_closed(self, now: float) -> None:
        """Encode the closed groups (short ones padded with zero inputs) in one batch and queue their parities."""
        closed, self._closed = self._closed, []
        blocks = []
        for block in closed:
            live = []
            for gid in block.groups:
                if self._groups[gid].pending == 0:  # every member already answered: its parities would be useless
                    del self._groups[gid]
                else:
                    live.append((gid, self._groups[gid]))
            if live:
                blocks.append(live)
        if not blocks:
            return
        k, pools = self.config.k, self._parity_pools
        parities = iter(self.codec.encode([group.inputs for live in blocks for _, group in live]))
        for live in blocks:
            units: list[list[Task]] = [[] for _ in pools]
            for (gid, group), group_parities in zip(live, parities):
                members = len(group.members)
                if members < k:  # a zero input's output, F(0), is known in advance
                    group.outputs[members:k] = [self.pad_output] * (k - members)
                    group.arrived += k - members
                group.inputs, group.encoded = [], True
                for j, pool in enumerate(pools):
                    task = Task(None, gid, k + j, pool, group_parities[j])
                    group.parities.append(task)
                    units[j].append(task)
                if group.verifying:
                    self._timer(now + self.config.verify_wait, "verify", gid)
            for unit in units:  # fixed batches: parity j of every group of a block, as one batch
                self.dispatcher.queue(unit)

    def _decodable(self, group: Group) -> bool:
        return group.encoded and group.pending > 0 and group.arrived >= self.config.k

    def _decode(self, gids: list[int], now: float, actions: list[Dispatch | Answer]) -> None:
        """Decode every group of ``gids`` (all decodable), in one batched call, and answer their unanswered members."""
        groups = [self._groups[gid] for gid in gids]
        masks = np.array([[row is not None for row in group.outputs] for group in groups])
        zero = self._zero_output
        # np.array of equal rows: np.stack's work, 3x faster
        outputs = np.array([[zero if row is None else row for row in group.outputs] for group in groups])
        rebuilt = self.codec.decode(outputs, masks)
        # A non-finite reconstruction (an unusable parity) answers nobody: its query waits for its own output,
        # or the default at its deadline.
        usable = np.isfinite(rebuilt).reshape(*rebuilt.shape[:2], -1).all(axis=2)
        for group, rows, fine in zip(groups, rebuilt, usable, strict=True):
            for slot, query in enumerate(group.members):
                state = self._queries.get(query)
                if state is not None and not state.answered and fine[slot]:
                    self._answer(query, rows[slot], RECONSTRUCTED, now, actions)

    def _verify(self, gids: list[int], now: float, actions: list[Dispatch | Answer]) -> None:
        """Check every group whose k + r outputs are all in, in one codec call: a member whose own output was the
        wrong one gets its reconstruction; a group with more than one wrong output is answered as it stands."""
        if not gids:
            return
        groups = [self._groups[gid] for gid in gids]
        rebuilt, slots = self.codec.verify(np.array([group.outputs for group in groups]), self.config.verify)
        n = self.config.k + self.config.r
        for group, rows, slot in zip(groups, rebuilt, slots.tolist(), strict=True):
            if slot >= 0:
                self.wrong_outputs["located" if slot < n else "unresolved"] += 1
            group.verifying = False
            for i, query in enumerate(group.members):
                wrong = i == slot
                self._answer(query, rows[i] if wrong else group.outputs[i], RECONSTRUCTED if wrong else ORIGINAL, now,
                             actions)

    def _stop_verifying(self, gid: int, now: float, actions: list[Dispatch | Answer]) -> None:
        """``verify_wait`` is up: members whose own outputs are in are answered with them, unchecked, and the rest
        by reconstruction if the group decodes (or later, as without ``verify``)."""
        group = self._groups[gid]
        group.verifying = False
        for i, query in enumerate(group.members):  # answering leaves the member list as it is
            if group.outputs[i] is not None:
                self._answer(query, group.outputs[i], ORIGINAL, now, actions)
        if gid in self._groups and self._decodable(group):
            self._decode([gid], now, actions)

    # ---- answering and cancelling --------------------------------------------------------------------

    def _answer(self, query: int, output: Any, kind: str, now: float, actions: list[Dispatch | Answer]) -> None:
        state = self._queries.get(query)
        if state is None or state.answered:
            return
        state.answered = True
        del self._queries[query]
        for task in state.tasks:  # a still-queued original (or hedge copy) is now useless
            self.dispatcher.cancel(task)
        actions.append(Answer(query, output, kind, now - state.arrived))
        group = self._groups.get(state.group) if state.group is not None else None
        if group is not None:
            group.pending -= 1
            if group.pending == 0 and group.encoded:  # the group is done: drop its queued parities
                for task in group.parities:
                    self.dispatcher.cancel(task)
                del self._groups[state.group]

    def _useful(self, task: Task) -> bool:
        """Whether a lost task still matters: its query is unanswered, or its group still decodes."""
        if task.query is not None:
            return task.query in self._queries
        group = self._groups.get(task.group)
        return group is not None and group.pending > 0

    def _timer(self, at: float, kind: str, ref: int) -> None:
        heapq.heappush(self._timers, (at, next(self._ids), kind, ref))

    def _pump(self, actions: list[Dispatch | Answer]) -> list[Dispatch | Answer]:
        actions.extend(self.dispatcher.pump())
        return actions
