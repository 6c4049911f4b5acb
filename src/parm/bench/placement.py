"""Where a latency run's threads run: the frontend on cores of its own, every other thread on the rest.

On a cluster, as in the paper, the frontend has a machine of its own and the background shuffles run between the
instances' machines. On one small machine every thread shares every core, so a CPU-hungry background load (real
shuffles copy their bytes through the kernel) takes a share of the frontend's core as well: the scheduler gives each
runnable thread its turn, and a frontend that needs more CPU per query than another runs out of its share first. A
scenario's ``frontend_cores`` gives the frontend's thread those cores alone and moves everything else (this process's
other threads, the instance processes and servers, and whatever those start later) to the rest; what the frontend's
own thread starts later (a restarted instance, in a fault scenario) starts on the frontend's cores.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path


def frontend_thread_id(name: str = "parm-server") -> int:
    """The OS thread id of the thread serving the frontend (`serve_in_background` names it)."""
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            return thread.native_id
    raise RuntimeError(f"no thread named {name!r} runs here: the frontend must be served in this process to be pinned")


def split_cores(frontend: Iterable[int]) -> tuple[set[int], set[int]]:
    """(the frontend's cores, the rest) out of those this process may use, refused unless both are non-empty."""
    available, wanted = set(os.sched_getaffinity(0)), set(frontend)
    if not wanted or not wanted <= available or not available - wanted:
        raise ValueError(f"frontend_cores {sorted(wanted)} must be some of this process's cores {sorted(available)}, "
                         f"leaving at least one for everything else")
    return wanted, available - wanted


@contextlib.contextmanager
def frontend_on_own_cores(cores: Iterable[int] | None) -> Iterator[dict[str, list[int]] | None]:
    """Pin the frontend's thread to ``cores`` and every other thread of this process and its descendants to the rest
    for the block, then give this process's threads back the cores they had. Yields the placement (for a run's
    metadata), or None when ``cores`` is None (everything shares every core, as without this)."""
    if cores is None:
        yield None
        return
    own, rest = split_cores(cores)
    before = {tid: os.sched_getaffinity(tid) for tid in _threads(os.getpid())}
    frontend = frontend_thread_id()
    for tid in before:
        os.sched_setaffinity(tid, own if tid == frontend else rest)
    for pid in descendants(os.getpid()):
        for tid in _threads(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):  # gone, or not ours, since listed
                os.sched_setaffinity(tid, rest)
    try:
        yield {"frontend": sorted(own), "rest": sorted(rest)}
    finally:
        for tid, affinity in before.items():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended in the block
                os.sched_setaffinity(tid, affinity)


def _threads(pid: int) -> list[int]:
    try:
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc/PID/task/*/children)."""
    children = []
    for tid in _threads(pid):
        with contextlib.suppress(OSError):
            children += [int(child) for child in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return children + [grandchild for child in children for grandchild in descendants(child)]
