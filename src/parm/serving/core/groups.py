"""What the coordinator keeps per query, per coding group and per block of groups being filled (no I/O)."""

from __future__ import annotations

from typing import Any

from parm.serving.core.dispatch import Task


class Query:
    """A query: when it arrived, its coding group, its tasks (original and hedge copies), whether it is answered."""

    __slots__ = ("arrived", "group", "tasks", "answered")

    def __init__(self, arrived: float) -> None:
        self.arrived = arrived
        self.group: int | None = None
        self.tasks: list[Task] = []
        self.answered = False


class Block:
    """The coding groups being filled: one group (dynamic batching), or one per batch column (fixed batches), until
    full or ``closes_at`` (the coordinator's one group-wait timer, kept out of its timer heap)."""

    __slots__ = ("closes_at", "groups", "members", "row")

    def __init__(self, closes_at: float, groups: list[int]) -> None:
        self.closes_at, self.groups, self.members = closes_at, groups, 0
        self.row: list[Task] = []  # the base batch being filled (fixed batches)


class Group:
    """A coding group: its members, the k + r outputs that arrived, and its parity tasks."""

    __slots__ = ("members", "inputs", "outputs", "arrived", "encoded", "parities", "pending", "verifying")

    def __init__(self, slots: int, verifying: bool = False) -> None:
        self.members: list[int] = []
        self.inputs: list[Any] = []
        # Each slot's output once in (None until then), as rows: an array is built only to decode, which few
        # groups need, and recording a row in a list costs a tenth of writing it into an array.
        self.outputs: list[Any] = [None] * slots
        self.arrived = 0  # slots in (outputs, or padding)
        self.encoded = False
        self.parities: list[Task] = []
        self.pending = 0  # members not answered yet
        self.verifying = verifying  # members wait for all k + r outputs, checked for a wrong one (until verify_wait)
