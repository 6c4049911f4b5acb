"""A host's network link on the testbed: its rate each way and its queue, as tc commands.

Part of what an experiment puts on a cluster, fixed in the scenario file before it runs (`parm.bench.scenario`)
and built by `parm.testbed.network`.
"""

from __future__ import annotations

from dataclasses import dataclass

QDISCS = ("pfifo", "bfifo", "tbf")  # what this kernel offers (no fq_codel, netem or sfq here)


@dataclass(frozen=True)
class LinkSpec:
    """A host's link: ``rate_mbit`` each way and its queue: ``pfifo`` (``limit`` packets; the kernel's default
    pfifo_fast queue is 1,000), ``bfifo`` (``limit`` bytes) under an htb shaper, or ``tbf`` (a queue of
    ``limit`` ms at the rate)."""

    rate_mbit: float = 1000.0
    qdisc: str = "pfifo"
    limit: int = 1000

    def __post_init__(self) -> None:
        if self.qdisc not in QDISCS:
            raise ValueError(f"qdisc must be one of {', '.join(QDISCS)} (what this kernel offers), got {self.qdisc!r}")
        if not self.rate_mbit > 0 or self.limit < 1:
            raise ValueError(f"a link needs a rate above 0 and a queue limit of at least 1, got {self}")

    def commands(self, device: str) -> list[list[str]]:
        """The tc commands that shape ``device``'s egress to this link."""
        rate = f"{self.rate_mbit:g}mbit"
        if self.qdisc == "tbf":
            return [["tc", "qdisc", "add", "dev", device, "root", "tbf", "rate", rate, "burst", "128kb",
                     "latency", f"{self.limit}ms"]]
        return [["tc", "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "10"],
                ["tc", "class", "add", "dev", device, "parent", "1:", "classid", "1:10", "htb", "rate", rate,
                 "ceil", rate],
                ["tc", "qdisc", "add", "dev", device, "parent", "1:10", "handle", "10:", self.qdisc, "limit",
                 str(self.limit)]]


@dataclass(frozen=True)
class TestbedPlan:
    """The testbed an experiment runs on: ``hosts`` hosts on links of ``link``; instance i runs on host
    i mod ``hosts`` (each in its own process), the frontend on none of them."""

    hosts: int
    link: LinkSpec = LinkSpec()
    __test__ = False  # not a pytest test class, whatever its name

    def __post_init__(self) -> None:
        if not isinstance(self.hosts, int) or not 2 <= self.hosts <= 200:
            raise ValueError(f"a testbed has 2 to 200 hosts (shuffles need a pair), got {self.hosts!r}")

    def host_of(self, instance: int) -> int:
        return instance % self.hosts

    @classmethod
    def from_dict(cls, data: dict) -> TestbedPlan:
        unknown = set(data) - {"hosts", "link"}
        if unknown:
            raise ValueError(f"unknown testbed settings {sorted(unknown)}: e.g. testbed: {{hosts: 6, link: "
                             "{rate_mbit: 1000, qdisc: pfifo, limit: 1000}}")
        return cls(data.get("hosts", 0), LinkSpec(**(data.get("link") or {})))
