"""Instance failures: fail-stop, crash-restart or link-down, at a fixed time or at random; and wrong instances.

A link-down cuts the instance's host off the network for ``restart_s`` (on the testbed, its link goes down; on
loopback and in the simulator, where there is no link, the instance is unreachable that long, as a crash-restart).
A byzantine instance is not slow but wrong, from the start (``at_s: 0``): it answers with noise added to its outputs
(``wrong: noise``) or with its previous call's outputs (``wrong: stale``); it is no failure event, and the simulator,
which moves no values, runs it as a correct instance.

`fault_times` turns a scenario's faults into (time, instance, fault) events, the same for the
real bench (which crashes real instances then) and the simulator (which drops their virtual work).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parm.workload.service_time import FAULT_STREAM, stream_rng

FAULT_KINDS = ("fail-stop", "crash-restart", "link-down", "byzantine")
WRONG_KINDS = ("noise", "stale")  # how a byzantine instance answers


@dataclass(frozen=True)
class Fault:
    """An instance failing at ``at_s`` seconds (or at random with ``rate_per_s``), restarting after ``restart_s``."""

    kind: str
    instance: int | None = None
    at_s: float | None = None
    rate_per_s: float | None = None
    restart_s: float = 2.0
    wrong: str = "noise"  # byzantine only: `WRONG_KINDS`

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {FAULT_KINDS}")
        if (self.at_s is None) == (self.rate_per_s is None):
            raise ValueError("a fault needs exactly one of at_s (a time) or rate_per_s (random failures)")
        if self.kind == "byzantine" and (self.at_s != 0 or self.instance is None or self.wrong not in WRONG_KINDS):
            raise ValueError(f"a byzantine instance is wrong from the start: give its instance, at_s: 0 and wrong: one "
                             f"of {', '.join(WRONG_KINDS)}, e.g. {{kind: byzantine, instance: 0, at_s: 0, wrong: noise}}")


def wrong_instances(faults: tuple[Fault, ...]) -> dict[int, str]:
    """The byzantine instances of ``faults`` and how each answers."""
    return {fault.instance: fault.wrong for fault in faults if fault.kind == "byzantine"}  # type: ignore[misc]


def fault_times(faults: tuple[Fault, ...], instances: int, horizon: float, seed: int) -> list[tuple[float, int, Fault]]:
    """(time, instance, fault) of every failure (byzantine instances are none): fixed ones, and Poisson ones at ``rate_per_s`` over ``horizon``.

    A fixed fault without an instance strikes instance 0; a random one without an instance strikes a
    random instance each time.
    """
    rng = stream_rng(seed, FAULT_STREAM)
    failures = []
    for fault in (fault for fault in faults if fault.kind != "byzantine"):  # wrong, never down
        if fault.at_s is not None:
            times = [fault.at_s]
        else:
            times = np.sort(rng.uniform(0, horizon, rng.poisson(fault.rate_per_s * horizon))).tolist()
        for at in times:
            if fault.instance is not None:
                instance = fault.instance
            else:
                instance = 0 if fault.at_s is not None else int(rng.integers(instances))
            if not 0 <= instance < instances:
                raise ValueError(f"fault on instance {instance}, but this mode runs instances 0..{instances - 1}")
            failures.append((float(at), instance, fault))
    return failures
