"""Hosts on one machine: a network namespace per host, each on a shaped link to one bridge.

Host i is the namespace ``parm-h<i>`` at 10.77.0.<10 + i>; its link is a veth pair whose two ends are both
shaped to the link rate (htb, with the chosen leaf queue; or tbf), so the traffic to and from a host shares
its link as on a cluster. The frontend stays in the sandbox's own namespace, on the bridge at 10.77.0.1,
and reaches every host through that host's link. Run it inside the sandbox (`parm.testbed.sandbox`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from functools import partial
from dataclasses import dataclass

from parm.testbed import sandbox
from parm.workload.links import LinkSpec

BRIDGE, SUBNET, FRONTEND_ADDRESS = "parm-br", "10.77.0", "10.77.0.1"


@dataclass(frozen=True)
class Testbed:
    """``hosts`` hosts on links of ``link``; `up` builds them (again, from scratch, if they exist), `down`
    removes them (nothing to remove is fine)."""

    hosts: int
    link: LinkSpec = LinkSpec()
    __test__ = False  # not a pytest test class, whatever its name

    def __post_init__(self) -> None:
        if not 1 <= self.hosts <= 200:
            raise ValueError(f"a testbed has 1 to 200 hosts, got {self.hosts}")

    @staticmethod
    def namespace(host: int) -> str:
        return f"parm-h{host}"

    @staticmethod
    def address(host: int) -> str:
        return f"{SUBNET}.{10 + host}"

    def exec(self, host: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run on ``host`` (in its namespace)."""
        return ["ip", "netns", "exec", self.namespace(host), *argv]

    def set_link(self, host: int, up: bool) -> None:
        """Plug ``host``'s link in or out (at the bridge): out, its packets are dropped and its connections stall."""
        _run(["ip", "link", "set", f"parm-v{host}", "up" if up else "down"])

    def up(self) -> None:
        if not sandbox.inside():
            raise RuntimeError("build the testbed inside its sandbox (parm.testbed.sandbox.sandboxed)")
        self.down()
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], ["ip", "addr", "add", f"{FRONTEND_ADDRESS}/24",
             "dev", BRIDGE], ["ip", "link", "set", BRIDGE, "up"])
        for host in range(self.hosts):
            ns, outer, inner = self.namespace(host), f"parm-v{host}", f"parm-e{host}"
            _run(["ip", "netns", "add", ns], ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner],
                 ["ip", "link", "set", inner, "netns", ns], ["ip", "link", "set", outer, "master", BRIDGE, "up"],
                 self.exec(host, ["ip", "link", "set", "lo", "up"]),
                 self.exec(host, ["ip", "addr", "add", f"{self.address(host)}/24", "dev", inner]),
                 self.exec(host, ["ip", "link", "set", inner, "up"]))
        self.shape(self.link)

    def shape(self, link: LinkSpec) -> None:
        """Shape every host's link, both ends, to ``link`` (again: a sweep over links reshapes the same hosts)."""
        for host in range(self.hosts):
            for device, wrap in ((f"parm-v{host}", list), (f"parm-e{host}", partial(self.exec, host))):
                # a root qdisc of another kind cannot be changed in place: remove it (none yet is fine)
                subprocess.run(wrap(["tc", "qdisc", "del", "dev", device, "root"]), capture_output=True)
                _run(*(wrap(command) for command in link.commands(device)))

    def down(self) -> None:
        for link in self.leftovers():  # a veth end goes with its peer; the kernel frees a namespace's own later
            if not link.startswith("parm-h"):
                subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for ns in [name for name in self.leftovers() if name.startswith("parm-h")]:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def leftovers(self) -> list[str]:
        """What of a testbed exists now (empty after `down`)."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        lines = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
        links = [line.split(":")[1].strip().split("@")[0] for line in lines if line.count(":") >= 2]  # "3: NAME@PEER:"
        return [n for n in names if n.startswith("parm-h")] + [link for link in links if link.startswith("parm-")]


def _run(*commands: Sequence[str]) -> None:
    for command in commands:
        done = subprocess.run(list(command), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
