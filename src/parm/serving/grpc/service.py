"""``inference.GRPCInferenceService`` over any `InferenceService`: the gRPC twin of `parm.serving.http.app`.

Handlers only move messages: `messages` validates and encodes, the service predicts. Every failure becomes the
status code a gRPC client expects, with the message a REST client would read: a bad request INVALID_ARGUMENT, an
unknown model NOT_FOUND, `Overloaded` RESOURCE_EXHAUSTED (with a ``retry-after`` trailer), `Unavailable`
UNAVAILABLE, anything else INTERNAL. The RPCs parm has no use for (repositories, shared memory, statistics,
streaming) keep the generated servicer's UNIMPLEMENTED.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc.service_pb2_grpc import GRPCInferenceServiceServicer

from parm.serving.grpc import messages
from parm.serving.http import protocol
from parm.serving.http.responses import check_prediction
from parm.serving.http.model import InferenceService, Overloaded, Unavailable
from parm.serving.http.protocol import ProtocolError

log = logging.getLogger("parm.serving.grpc.service")

Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]
Metadata = tuple[tuple[str, str], ...]


def status_of(exc: Exception) -> tuple[grpc.StatusCode, str, Metadata]:
    """The status code, message and trailing metadata that answer a handler's exception."""
    if isinstance(exc, ProtocolError):
        return (grpc.StatusCode.NOT_FOUND if exc.status == 404 else grpc.StatusCode.INVALID_ARGUMENT), exc.message, ()
    if isinstance(exc, Overloaded):
        seconds = max(1, math.ceil(exc.retry_after)) if math.isfinite(exc.retry_after) else 1
        return (grpc.StatusCode.RESOURCE_EXHAUSTED, f"overloaded: {exc}; retry after {seconds} s",
                (("retry-after", str(seconds)),))
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE, f"unavailable: {exc}", ()
    log.error("gRPC call failed", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal server error ({type(exc).__name__}); see the server log", ()


def _rpc(handler: Handler) -> Handler:
    """``handler``, with what it raises answered as `status_of` says (a cancelled call stays cancelled)."""
    @functools.wraps(handler)
    async def answer(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await handler(self, request, context)
        except Exception as exc:
            code, message, trailers = status_of(exc)
        await context.abort(code, message, trailers)

    return answer


class InferenceServicer(GRPCInferenceServiceServicer):
    """The Open Inference Protocol's gRPC service for ``service``; metadata answers are built once."""

    def __init__(self, service: InferenceService) -> None:
        self.service, self.model = service, service.model
        self._input = self.model.inputs[0].name
        self._server_metadata = messages.server_metadata()
        self._model_metadata = messages.model_metadata(self.model)
        self._model_config = messages.model_config(self.model)

    @_rpc
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @_rpc
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.service.is_ready())

    @_rpc
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        protocol.check_model(self.model, request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.service.is_ready())

    @_rpc
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        return self._server_metadata

    @_rpc
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        protocol.check_model(self.model, request.name, request.version or None)
        return self._model_metadata

    @_rpc
    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        protocol.check_model(self.model, request.name, request.version or None)
        return self._model_config

    @_rpc
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        async with self.service.admission():  # as REST: a place first, and tensors decoded only once inside
            query = messages.parse_infer_request(request, self.model)
            prediction = await self.service.infer(query.inputs[self._input])
        check_prediction(prediction, query.batch_size)
        return messages.encode_infer_response(self.model, query, prediction)
