"""Run a `Frontend` behind the HTTP protocol with uvicorn: start, serve, drain and stop.

Start-up starts every instance before the socket accepts queries; SIGINT or SIGTERM stops
accepting, lets the queries in flight be answered, then stops the instances.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from starlette.applications import Starlette

from parm.serving.http.app import build_app
from parm.serving.runtime.frontend import Frontend

log = logging.getLogger("parm.serving.http.server")


def build_server(
    frontend: Frontend, *, host: str = "127.0.0.1", port: int = 8000, max_body_bytes: int = 16 * 2**20,
    on_ready: Callable[[str], None] | None = None, sock: socket.socket | None = None,
) -> uvicorn.Server:
    """A uvicorn server whose lifespan starts and stops ``frontend``."""
    app = build_app(frontend, max_body_bytes=max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await frontend.start()
        # Everything alive now (torch, models, the app) stays alive: keep it out of the collector's scans. A full
        # collection over it pauses the event loop ~80 ms, which every query in flight would wait out.
        gc.collect()
        gc.freeze()
        address = "%s:%d" % (sock.getsockname()[:2] if sock is not None else (host, port))
        log.info("serving", extra={"url": f"http://{address}", "model": frontend.model.name})
        if on_ready is not None:
            on_ready(address)
        yield
        await frontend.stop()
        gc.unfreeze()
        log.info("stopped")

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=30, timeout_keep_alive=75)
    return uvicorn.Server(config)


@contextlib.contextmanager
def serve_in_background(frontend: Frontend, **options) -> Iterator[str]:
    """Serve ``frontend`` from a thread on an ephemeral loopback port; yields ``"127.0.0.1:PORT"``.

    The socket listens before start-up, so clients may connect at once: their connections wait in
    the backlog until the instances are up. Leaving the block drains the queries in flight and stops.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it Nagle's
    # algorithm and delayed ACKs add 40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = build_server(frontend, sock=sock, **options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="parm-server", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1:%d" % sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()
    if thread.is_alive():
        raise RuntimeError("the server did not shut down within 120 s")
