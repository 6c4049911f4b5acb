"""The testbed's sandbox: network, mount and PID namespaces of its own, so that it leaves nothing behind.

Everything the testbed makes (a bridge, one network namespace per host, veth pairs, queueing disciplines,
every process) lives inside ``unshare --net --mount --pid --fork --kill-child --mount-proc``: its addresses exist
nowhere else, no packet can leave the machine, and when the command that made it ends, however it ends (a crash,
SIGKILL), the kernel removes all of it. It needs root (CI runs as root) and a kernel that permits namespaces.

`run` is the one way in: ``unshare --fork`` blocks SIGINT and SIGTERM in its own process, and the command inside is
the init of its PID namespace, which takes from outside only signals it handles; so `run` turns a SIGTERM or SIGHUP
of its own into SIGKILL of the sandbox, as Ctrl-C does, rather than leaving the sandbox to run on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence

INSIDE = "PARM_TESTBED_SANDBOX"  # set in the sandbox's environment
NETNS_DIR = "/run/netns"
# --mount-proc: a /proc of the sandbox's own PID namespace, so that a process id read there (/proc/self/task, a
# process's children) is the one the system calls inside take (sched_setaffinity, kill); the host's /proc is untouched.
UNSHARE = ("unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--mount-proc")


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


class Stopped(Exception):
    """This process got a signal to stop while a sandbox ran: the sandbox is gone."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def run(argv: Sequence[str]) -> int:
    """Run ``argv`` (see `sandboxed`) in a new sandbox and wait for it: its exit status, or 128 + the signal's
    number when this process is told to stop (SIGTERM, SIGHUP), after killing the sandbox and all in it."""
    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _stop) for signum in stops}
    try:
        return subprocess.run(sandboxed(argv)).returncode  # on any exception, run() kills unshare: the sandbox goes
    except Stopped as stopped:
        print(f"stopped by {stopped}: the testbed's sandbox and every process in it are gone", file=sys.stderr)
        return 128 + stopped.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def rerun_inside(refusal: str) -> int:
    """This very ``parm`` command again, inside a new sandbox (`run`); where the testbed cannot run here, a ValueError
    ``"{refusal}: {why}"``."""
    if (reason := unavailable()) is not None:
        raise ValueError(f"{refusal}: {reason}")
    return run(["-m", "parm", *sys.argv[1:]])


def prepare() -> None:
    """First thing inside the sandbox: loopback up, and a private ``/run/netns`` for the hosts' namespaces."""
    if not inside():
        raise RuntimeError("parm.testbed.sandbox.prepare runs inside the sandbox only (see `sandboxed`)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.makedirs(NETNS_DIR, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "parm-netns", NETNS_DIR], check=True)
