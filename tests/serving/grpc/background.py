"""parm's gRPC server on its own uvloop event loop in a daemon thread, for tests that drive it from theirs.

Every step waits on the loop's future for it (started, stopped), never on a sleep. The server can be stopped and
started again on the same port, as a model server that restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import uvloop

from parm.serving.grpc import GrpcServer, start_grpc_server
from parm.serving.http.model import InferenceService

TIMEOUT_S = 10.0


class BackgroundGrpc:
    """``service`` behind parm's gRPC server on a uvloop loop of its own (as `parm serve` runs one)."""

    def __init__(self, service: InferenceService) -> None:
        self.service = service
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-test-server", daemon=True)
        self._thread.start()
        self.server: GrpcServer | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT_S)

    def start(self) -> None:
        """Serve, on the port of the last start if there was one (else on a free one)."""
        self.server = self.run(start_grpc_server(self.service, port=self.port))
        self.port = self.server.port

    def stop(self) -> None:
        """Stop at once, cancelling the calls in flight (a crash, as the client sees it)."""
        if self.server is not None:
            self.run(self.server.stop(0))
            self.server = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT_S)
        self.loop.close()


@contextlib.contextmanager
def serve_grpc(service: InferenceService) -> Iterator[BackgroundGrpc]:
    """``service`` served over gRPC on a loopback port for the block."""
    served = BackgroundGrpc(service)
    try:
        served.start()
        yield served
    finally:
        served.close()
