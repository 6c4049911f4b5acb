"""Run a `Frontend` behind the HTTP protocol with uvicorn: start, serve, drain and stop.

`listen` binds the socket before anything starts (a port in use fails at once, not after the
instances are up); start-up starts every instance before the socket accepts queries; SIGINT or
SIGTERM stops accepting, lets the queries in flight be answered, stops the instances, and `run`
returns.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

import uvicorn

from parm.serving.http.app import BODY_TIMEOUT_S, build_app
from parm.serving.http.limits import BoundedHttpToolsProtocol
from parm.serving.http.model import InferenceService

log = logging.getLogger("parm.serving.http.server")


class Service(InferenceService, Protocol):
    """A service the server starts before it accepts queries and stops once drained: the coded `Frontend`, or
    one model's `ModelService` (`parm instance`)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_server(
    frontend: Service, *, host: str = "127.0.0.1", port: int = 8000, max_body_bytes: int = 16 * 2**20,
    body_timeout: float = BODY_TIMEOUT_S, on_ready: Callable[[str], None] | None = None,
    sock: socket.socket | None = None, grpc_port: int | None = None,
) -> Server:
    """A uvicorn server whose lifespan starts and stops ``frontend``. Pass ``sock`` (from `listen`, and to
    ``run(sockets=[sock])``) to have the port bound before the instances start; else uvicorn binds ``host``:``port``
    once they are up. ``grpc_port``: also serve the protocol's gRPC API there (on ``host``), on the same loop."""
    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        grpc = None
        if grpc_port is not None:  # up before the instances, answering "not ready" until they are, as REST does
            from parm.serving.grpc.server import start_grpc_server

            grpc = await start_grpc_server(frontend, host, grpc_port)
            log.info("serving gRPC", extra={"address": grpc.address})
        await frontend.start()
        # Everything alive now (torch, models, the app) stays alive: keep it out of the collector's scans. A full
        # collection over it pauses the event loop ~80 ms, which every query in flight would wait out.
        gc.collect()
        gc.freeze()
        address = _address(sock) if sock is not None else "%s:%d" % (host, port)
        log.info("serving", extra={"url": f"http://{address}", "model": frontend.model.name})
        if on_ready is not None and not server.should_exit:  # a Ctrl-C during start-up: stopping, not ready
            on_ready(address)
        yield
        await frontend.stop()  # drains gRPC calls in flight too: they wait on the same frontend
        if grpc is not None:
            await grpc.stop(grace=1.0)
        gc.unfreeze()
        log.info("stopped")

    app = build_app(frontend, max_body_bytes=max_body_bytes, body_timeout=body_timeout, lifespan=lifespan)
    config = uvicorn.Config(app, lifespan="on", proxy_headers=False, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=30, timeout_keep_alive=75, http=BoundedHttpToolsProtocol)
    server = Server(config)
    return server


class Server(uvicorn.Server):
    """uvicorn's server, except that a stop asked for by SIGINT or SIGTERM ends `run` normally once drained.

    uvicorn (0.29 on) raises the signal again after its graceful shutdown, so a server that answered every
    query would still end in a KeyboardInterrupt (``parm serve`` exiting 130) or die of SIGTERM (143).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's handlers for SIGINT and SIGTERM while serving (a second SIGINT still forces the exit)."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def listen(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (0: any free port); raises `OSError` (`socket.gaierror` for a host
    that does not resolve) if it cannot. Connections made before the server starts wait in the backlog."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                                                         flags=socket.AI_PASSIVE)[0]
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it Nagle's
    # algorithm and delayed ACKs add 40 ms to every response.
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn's own socket: a restarted server need not wait out its old connections' TIME_WAIT (a port
        # another socket listens on still fails, with EADDRINUSE).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _address(sock: socket.socket) -> str:
    """``HOST:PORT`` of a bound socket, with an IPv6 host in brackets as URLs want it."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.contextmanager
def serve_in_background(frontend: Service, *, on_exit: Callable[[], None] | None = None, **options) -> Iterator[str]:
    """Serve ``frontend`` from a thread on an ephemeral loopback port; yields ``"127.0.0.1:PORT"``.

    The socket listens before start-up, so clients may connect at once: their connections wait in
    the backlog until the instances are up. Leaving the block drains the queries in flight and stops.
    ``on_exit`` is called when the server stops, also when its start-up fails (so a waiter need not time out).
    """
    sock = listen()
    server = build_server(frontend, sock=sock, **options)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            if on_exit is not None:
                on_exit()

    thread = threading.Thread(target=run, name="parm-server", daemon=True)
    thread.start()
    try:
        yield _address(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()
    if thread.is_alive():
        raise RuntimeError("the server did not shut down within 120 s")
