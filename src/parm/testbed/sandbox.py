"""The testbed's sandbox: network, mount and PID namespaces of its own, so that it leaves nothing behind.

Everything the testbed makes (a bridge, one network namespace per host, veth pairs, queueing disciplines,
every process) lives inside ``unshare --net --mount --pid --fork --kill-child``: its addresses exist nowhere
else, no packet can leave the machine, and when the command that made it ends, however it ends (a crash,
SIGKILL), the kernel removes all of it. It needs root (CI runs as root) and a kernel that permits namespaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

INSIDE = "PARM_TESTBED_SANDBOX"  # set in the sandbox's environment
NETNS_DIR = "/run/netns"
UNSHARE = ("unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private")


def unavailable() -> str | None:
    """Why the testbed cannot run here (None: it can): the reason a skipped test or a refused command shows."""
    if os.geteuid() != 0:
        return "the testbed needs root (network namespaces and tc): run as root, as CI does"
    for tool in ("unshare", "ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: apt-get install iproute2 util-linux"
    probe = subprocess.run([*UNSHARE, "ip", "link", "add", "parm-probe", "type", "bridge"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        return f"namespaces are not permitted here: {probe.stderr.strip() or probe.returncode}"
    return None


def inside() -> bool:
    return os.environ.get(INSIDE) == "1"


def sandboxed(argv: Sequence[str]) -> list[str]:
    """``argv`` (a Python module's arguments, ``["-m", "parm", ...]``) run by this interpreter in a new sandbox."""
    return [*UNSHARE, "env", f"{INSIDE}=1", sys.executable, *argv]


def prepare() -> None:
    """First thing inside the sandbox: loopback up, and a private ``/run/netns`` for the hosts' namespaces."""
    if not inside():
        raise RuntimeError("parm.testbed.sandbox.prepare runs inside the sandbox only (see `sandboxed`)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.makedirs(NETNS_DIR, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "parm-netns", NETNS_DIR], check=True)
