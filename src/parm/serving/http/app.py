"""The Open Inference Protocol (KServe v2) REST endpoints over an `InferenceService`, as a bare ASGI app.

Handlers only move bytes: `protocol` validates, `responses` encodes, the service predicts. Every error is the
protocol's JSON ``{"error": ...}`` so clients such as ``tritonclient.http`` can show it. No framework sits in
between: a web framework's middleware, routing and request objects cost 15% of a query's CPU time here (measured
with py-spy), and seven fixed routes need none of them. The lifespan, if any, is the server's: pass it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from parm.serving.http import protocol, responses
from parm.serving.http.model import InferenceService, Overloaded, Unavailable
from parm.serving.http.protocol import ProtocolError

log = logging.getLogger("parm.serving.http.app")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Lifespan = Callable[[], contextlib.AbstractAsyncContextManager]
BODY_TIMEOUT_S = 10.0
_JSON = (b"content-type", b"application/json")


class ClientDisconnect(Exception):
    """The client went away before its request body arrived."""


class App:
    """The v2 REST app for ``service``; request bodies over ``max_body_bytes`` (after decompression) get a 413, and
    bodies that take longer than ``body_timeout`` seconds to arrive (slow or cut short) a 408. ``lifespan`` runs
    around serving (start-up before the first request, shut-down after the last)."""

    def __init__(self, service: InferenceService, *, max_body_bytes: int = 16 * 2**20,
                 body_timeout: float = BODY_TIMEOUT_S, lifespan: Lifespan | None = None) -> None:
        self.service, self.model = service, service.model
        self.max_body_bytes, self.body_timeout, self.lifespan = max_body_bytes, body_timeout, lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._respond(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._run_lifespan(receive, send)

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route, handle, and turn what a handler raises into a protocol error response."""
        method, path = scope["method"], scope["path"]
        try:
            status, body, headers = await self._handle(method, path, scope, receive)
        except ProtocolError as exc:
            status, body, headers = _error(exc.status, exc.message, exc.headers)
        except Overloaded as exc:
            retry_after = max(1, math.ceil(exc.retry_after)) if math.isfinite(exc.retry_after) else 1
            status, body, headers = _error(503, f"overloaded: {exc}; retry after {retry_after} s",
                                           [(b"retry-after", str(retry_after).encode())])
        except Unavailable as exc:
            status, body, headers = _error(503, f"unavailable: {exc}")
        except ClientDisconnect:
            log.debug("%s %s: the client went away mid-request", method, path)
            status, body, headers = _error(400, "client disconnected")
        except Exception as exc:
            log.exception("%s %s failed", method, path)
            status, body, headers = _error(500, f"internal server error ({type(exc).__name__}); see the server log")
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, method: str, path: str, scope: Scope, receive: Receive) -> tuple[int, bytes, list]:
        parts = path.split("/")
        if parts[:3] == ["", "v2", "models"] and len(parts) > 3:
            name, rest = parts[3], parts[4:]
            version = None
            if rest[:1] == ["versions"] and len(rest) > 1:
                version, rest = rest[1], rest[2:]
            endpoint = {(): "metadata", ("ready",): "ready", ("infer",): "infer"}.get(tuple(rest))
            if endpoint is not None:
                _allow(method, "POST" if endpoint == "infer" else "GET", path)
                protocol.check_model(self.model, name, version)
                if endpoint == "infer":
                    return await self._infer(scope, receive)
                if endpoint == "metadata":
                    return 200, responses.dumps(responses.model_metadata(self.model)), [_JSON]
                return self._readiness(f"model '{self.model.name}' is not ready")
        elif path in ("/v2/health/live", "/v2/health/ready", "/v2", "/metrics"):
            _allow(method, "GET", path)
            if path == "/v2/health/live":
                return 200, b"", []
            if path == "/v2/health/ready":
                return self._readiness("server is not ready")
            if path == "/v2":
                return 200, responses.dumps(responses.server_metadata()), [_JSON]
            return 200, generate_latest(self.service.registry), [(b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode())]
        raise ProtocolError(404, f"Not Found: {method} {path}")

    def _readiness(self, message: str) -> tuple[int, bytes, list]:
        return (200, b"", []) if self.service.is_ready() else _error(503, message)

    async def _infer(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list]:
        headers = _headers(scope)
        async with self.service.admission():  # before the body: a rejection must cost less than a query
            raw = await self._read_body(receive, headers.get(b"content-length"))
            body = protocol.decode_content(raw, _text(headers.get(b"content-encoding")), self.max_body_bytes)
            header_length = protocol.parse_header_length(_text(headers.get(protocol.HEADER_LENGTH.lower().encode())))
            query = protocol.parse_infer_request(body, header_length, self.model)
            prediction = await self.service.infer(query.inputs[self.model.inputs[0].name])
        responses.check_prediction(prediction, query.batch_size)
        outputs = {self.model.outputs[0].name: prediction.outputs}
        content, answer_headers = responses.encode_infer_response(self.model, query, outputs,
                                                                  responses.infer_parameters(prediction))
        return 200, content, [(name.lower().encode(), value.encode()) for name, value in answer_headers.items()]

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes:
        """The body, refusing (413) one over the limit: up front by Content-Length, else while it streams in."""
        protocol.parse_content_length(_text(content_length), self.max_body_bytes)
        message = await receive()  # the usual case: the whole body came with the head, no timer needed
        if message["type"] == "http.request" and not message.get("more_body", False):
            return self._checked(message.get("body", b""))
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    if message["type"] == "http.disconnect":
                        raise ClientDisconnect
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    chunks.append(self._checked(chunk, size))
                    if not message.get("more_body", False):
                        return b"".join(chunks)
                    message = await receive()
        except TimeoutError:
            raise ProtocolError(408, f"the request body did not arrive within {self.body_timeout:g} s "
                                     f"({size} bytes came); send the whole body at once") from None

    def _checked(self, chunk: bytes, size: int | None = None) -> bytes:
        if (len(chunk) if size is None else size) > self.max_body_bytes:
            raise protocol.body_too_large(self.max_body_bytes)
        return chunk

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol around ``self.lifespan``: start-up on the first message, shut-down on the next."""
        await receive()
        context = self.lifespan() if self.lifespan is not None else contextlib.nullcontext()
        try:
            await context.__aenter__()
        except BaseException as exc:
            log.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()
        try:
            await context.__aexit__(None, None, None)
        except BaseException as exc:
            log.exception("shut-down failed")
            await send({"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})


def build_app(service: InferenceService, **options: Any) -> App:
    """The v2 REST app for ``service`` (options: see `App`)."""
    return App(service, **options)


def _error(status: int, message: str, headers: list | tuple = ()) -> tuple[int, bytes, list]:
    return status, responses.error_body(message), [_JSON, *headers]


def _allow(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise ProtocolError(405, f"Method Not Allowed: {method} {path}", [(b"allow", allowed.encode())])


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (ASGI servers lower-case them)."""
    return dict(scope["headers"])


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
