"""The Open Inference Protocol (KServe v2) REST endpoints over an `InferenceService`, as a Starlette app.

Handlers only move bytes: `protocol` validates, `responses` encodes, the service predicts. Every error is the
protocol's JSON ``{"error": ...}`` so clients such as ``tritonclient.http`` can show it. The app has no lifespan:
whoever starts and stops the service composes it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable

import numpy as np
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parm.serving.http import protocol, responses
from parm.serving.http.model import LATENCY_PARAMETER, InferenceService, Overloaded, Prediction, Unavailable
from parm.serving.http.protocol import ProtocolError

log = logging.getLogger("parm.serving.http.app")

Handler = Callable[[Request], Awaitable[Response]]
BODY_TIMEOUT_S = 10.0


def build_app(service: InferenceService, *, max_body_bytes: int = 16 * 2**20,
              body_timeout: float = BODY_TIMEOUT_S) -> Starlette:
    """The v2 REST app for ``service``; request bodies over ``max_body_bytes`` (after decompression) get a 413, and
    bodies that take longer than ``body_timeout`` seconds to arrive (slow or cut short) a 408."""
    api = _Endpoints(service, max_body_bytes, body_timeout)
    model_paths = ("/v2/models/{model}", "/v2/models/{model}/versions/{version}")
    routes = [
        Route("/v2/health/live", _guard(api.live), methods=["GET"]),
        Route("/v2/health/ready", _guard(api.ready), methods=["GET"]),
        Route("/v2", _guard(api.server_metadata), methods=["GET"]),
        *(Route(path, _guard(api.model_metadata), methods=["GET"]) for path in model_paths),
        *(Route(path + "/ready", _guard(api.model_ready), methods=["GET"]) for path in model_paths),
        *(Route(path + "/infer", _guard(api.infer), methods=["POST"]) for path in model_paths),
        Route("/metrics", _guard(api.metrics), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A protocol error response: JSON ``{"error": message}``."""
    return Response(responses.error_body(message), status, headers=headers, media_type="application/json")


def _guard(handler: Handler) -> Handler:
    """Turn the exceptions a handler may raise into protocol error responses."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ProtocolError as exc:
            return error_response(exc.status, exc.message)
        except Overloaded as exc:
            retry_after = max(1, math.ceil(exc.retry_after)) if math.isfinite(exc.retry_after) else 1
            return error_response(503, f"overloaded: {exc}; retry after {retry_after} s",
                                  {"Retry-After": str(retry_after)})
        except Unavailable as exc:
            return error_response(503, f"unavailable: {exc}")
        except ClientDisconnect:
            log.debug("%s %s: the client went away mid-request", request.method, request.url.path)
            return error_response(400, "client disconnected")
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(500, f"internal server error ({type(exc).__name__}); see the server log")

    return guarded


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), as protocol errors."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", exc.headers)


class _Endpoints:
    """The route handlers, bound to one service."""

    def __init__(self, service: InferenceService, max_body_bytes: int, body_timeout: float) -> None:
        self.service = service
        self.model = service.model
        self.max_body_bytes, self.body_timeout = max_body_bytes, body_timeout

    async def live(self, request: Request) -> Response:
        return Response(status_code=200)

    async def ready(self, request: Request) -> Response:
        return Response(status_code=200) if self.service.is_ready() else error_response(503, "server is not ready")

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse(responses.server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        self._check_model(request)
        return JSONResponse(responses.model_metadata(self.model))

    async def model_ready(self, request: Request) -> Response:
        self._check_model(request)
        if self.service.is_ready():
            return Response(status_code=200)
        return error_response(503, f"model '{self.model.name}' is not ready")

    async def infer(self, request: Request) -> Response:
        self._check_model(request)
        async with self.service.admission():  # before the body: a rejection must cost less than a query
            body = protocol.decode_content(await self._read_body(request), request.headers.get("content-encoding"),
                                           self.max_body_bytes)
            header_length = protocol.parse_header_length(request.headers.get(protocol.HEADER_LENGTH))
            query = protocol.parse_infer_request(body, header_length, self.model)
            prediction = await self.service.infer(query.inputs[self.model.inputs[0].name])
        _check_prediction(prediction, query.batch_size)
        outputs = {self.model.outputs[0].name: prediction.outputs}
        parameters = {"answer": ",".join(prediction.answers)}
        if prediction.latencies:
            parameters[LATENCY_PARAMETER] = ",".join(f"{seconds * 1e6:.0f}" for seconds in prediction.latencies)
        content, headers = responses.encode_infer_response(self.model, query, outputs, parameters)
        return Response(content, headers=headers)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.service.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    def _check_model(self, request: Request) -> None:
        protocol.check_model(self.model, request.path_params["model"], request.path_params.get("version"))

    async def _read_body(self, request: Request) -> bytes:
        """The body, refusing (413) one over the limit: up front by Content-Length, else while it streams in."""
        protocol.parse_content_length(request.headers.get("content-length"), self.max_body_bytes)
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise protocol.body_too_large(self.max_body_bytes)
                    chunks.append(chunk)
        except TimeoutError:
            raise ProtocolError(408, f"the request body did not arrive within {self.body_timeout:g} s "
                                     f"({size} bytes came); send the whole body at once") from None
        return b"".join(chunks)


def _check_prediction(prediction: Prediction, n: int) -> None:
    """A service that answers the wrong number of queries has a bug (500), not a bad request."""
    rows = np.shape(prediction.outputs)[0] if np.ndim(prediction.outputs) else None
    if rows != n or len(prediction.answers) != n:
        raise RuntimeError(f"the service answered {rows} outputs and {len(prediction.answers)} answers "
                           f"for {n} queries")
