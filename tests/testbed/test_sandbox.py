"""The sandbox ends with the command that made it, however that command is told to stop.

Needs root and namespaces (CI runs as root); skipped with the reason where they are not permitted.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys

import pytest

from parm.testbed import sandbox

REASON = sandbox.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

# The sandbox's command: says it runs, then waits to be killed (it holds the pipe that the test reads to its end).
INNER = "import time; print('running', flush=True); time.sleep(600)"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_command_takes_its_sandbox_and_everything_in_it_along(signum: int) -> None:
    outer = f"import sys; from parm.testbed import sandbox; sys.exit(sandbox.run(['-c', {INNER!r}]))"
    command = subprocess.Popen([sys.executable, "-c", outer], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert command.stdout.readline() == "running\n"
        command.send_signal(signum)
        assert command.wait(timeout=60) == 128 + signum
        readable, _, _ = select.select([command.stdout], [], [], 60)
        # End of file: the last process that held the pipe, the sandbox's own, is gone (unshare blocks SIGTERM, and a
        # PID namespace's init takes none it has no handler for: without `run`, it would run its 600 s).
        assert readable and command.stdout.read() == ""
        assert "sandbox and every process in it are gone" in command.stderr.read()
    finally:
        command.kill()
        command.wait()
