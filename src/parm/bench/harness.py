"""One loopback harness: a deployment served for real on 127.0.0.1, for replay, bench and calibration.

`serve_locally` chains the pieces `parm serve` runs (local backend, frontend, HTTP server) in a
background thread, waits until every instance is up, and yields a `Served`: the address to send
queries to, and the handle that injects faults on the server's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from parm.serving.backends.base import Backend
from parm.serving.backends.local import LocalBackend
from parm.serving.http.server import serve_in_background
from parm.serving.runtime.deployment import Deployment
from parm.serving.runtime.frontend import Frontend
from parm.workload.faults import Fault

STARTUP_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Served:
    """A running deployment: where it listens, and its frontend and backend."""

    address: str
    frontend: Frontend
    backend: Backend

    def kill(self, instance: int, *, restart: bool = True, restart_after: float = 0.0, after_s: float = 0.0) -> None:
        """Crash ``instance`` (`Backend.kill`) ``after_s`` seconds from now; safe to call from any thread."""
        loop = self.frontend.loop
        loop.call_soon_threadsafe(lambda: loop.call_later(
            after_s, lambda: self.backend.kill(instance, restart=restart, restart_after=restart_after)))

    def inject(self, fault: Fault, instance: int, after_s: float) -> None:
        """``fault`` on ``instance`` ``after_s`` seconds from now, as the backend can: a kill, restarted after
        ``restart_s`` unless fail-stop (a link-down too: on loopback there is no link to cut)."""
        self.kill(instance, restart=fault.kind != "fail-stop", restart_after=fault.restart_s, after_s=after_s)

    def await_recoveries(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` instances in all have come back after a failure; False if not within ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(self.frontend.recovered(count), self.frontend.loop)
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            return False
        return True

    def instance_failures(self) -> int:
        """Instance deaths the frontend has seen so far, over all pools."""
        return self._count("parm_instance_failures_total")

    def instance_recoveries(self) -> int:
        """Instances the frontend has seen come back after a failure, over all pools."""
        return self._count("parm_instance_recoveries_total")

    def _count(self, sample: str) -> int:
        registry = self.frontend.registry
        pools = {str(spec.pool) for spec in self.frontend.deployment.instances}
        return int(sum(registry.get_sample_value(sample, {"pool": pool}) or 0 for pool in pools))


@contextlib.contextmanager
def serve_locally(deployment: Deployment, *, processes: int | None = None, backend: Backend | None = None,
                  max_pending: int = 4096, startup_timeout: float = STARTUP_TIMEOUT_S, **server: Any) -> Iterator[Served]:
    """Serve ``deployment`` on loopback until the block ends, then drain the queries in flight and stop: with local
    instances (``processes``: how many host them; None: one each) unless another ``backend`` is given (e.g. remote
    model servers); ``server``: options of `build_server`."""
    backend = backend if backend is not None else LocalBackend(processes=processes)
    frontend = Frontend(deployment, backend, max_pending=max_pending)
    ready = threading.Event()  # set once serving, or once the server has stopped (a failed start-up)
    with serve_in_background(frontend, on_ready=lambda _: ready.set(), on_exit=ready.set, **server) as address:
        if not ready.wait(timeout=startup_timeout):
            raise RuntimeError(f"{len(deployment.instances)} instances did not start within {startup_timeout:.0f} s")
        if not frontend.is_ready():
            raise RuntimeError("the server failed to start: its log above says why")
        yield Served(address, frontend, backend)
