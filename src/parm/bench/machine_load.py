"""How busy the whole machine was while a run's load ran: the cores' time by kind, from /proc/stat (Linux).

On a small machine the instances, the frontend, the load generator and real background traffic share the cores,
and every redundant query costs some of them. A run that records how much of the cores it used (and how much went
to the kernel's network work, ``softirq``) lets a reader tell a slower mode from a busier machine.
"""

from __future__ import annotations

from pathlib import Path

STAT = Path("/proc/stat")
KINDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")  # the first line's columns, in order


def cpu_times(stat: Path = STAT) -> tuple[int, ...] | None:
    """All cores' time so far by `KINDS` (clock ticks); None where there is no /proc/stat."""
    try:
        first = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    return tuple(int(value) for value in first[1:1 + len(KINDS)])


class CpuShares:
    """``with CpuShares() as cpu: ...``; afterwards ``cpu.shares`` holds each kind's share of all cores' time over the
    block, and ``busy`` (everything but idle and iowait); empty where /proc/stat is missing."""

    def __init__(self, stat: Path = STAT) -> None:
        self.stat = stat
        self.shares: dict[str, float] = {}

    def __enter__(self) -> CpuShares:
        self._start = cpu_times(self.stat)
        return self

    def __exit__(self, *exc: object) -> None:
        end = cpu_times(self.stat)
        if self._start is None or end is None:
            return
        spent = [after - before for before, after in zip(self._start, end)]
        total = sum(spent)
        if total <= 0:
            return
        self.shares = {kind: round(ticks / total, 4) for kind, ticks in zip(KINDS, spent)}
        self.shares["busy"] = round(1 - (spent[KINDS.index("idle")] + spent[KINDS.index("iowait")]) / total, 4)
