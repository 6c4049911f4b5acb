"""An Open Inference Protocol gRPC client for one model server, on one persistent grpc.aio channel.

Batches go out as ``raw_input_contents`` (float32, row-major) and come back as ``raw_output_contents``, as Triton
and KServe answer a raw request. Each call has the endpoint's deadline and fails fast while the server is down
(no ``wait_for_ready``): every failure is an `InstanceError`, and the frontend reconstructs or resends the batch.

A gRPC channel reconnects by itself, but after a failed attempt it waits out an exponential backoff (up to two
minutes) in which every call fails at once, even if the server is back. `ready`, the probe that brings an instance
back, therefore replaces a channel in that state, so that a restarted server is seen as soon as it listens.
``connects`` counts the channel's transitions into READY, observed around each call: a reconnection after a
server restart counts, one hidden between two calls that both find the channel READY would not.
"""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc.service_pb2_grpc import GRPCInferenceServiceStub

from parm.serving.backends.remote.client import InstanceError, probe_timeout
from parm.serving.backends.remote.cluster import Endpoint

MAX_MESSAGE_BYTES = 64 * 2**20
_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Subchannels of its own: by default channels to one target share them, so a new channel would inherit
            # the old one's connection and its backoff.
            ("grpc.use_local_subchannel_pool", 1)]
_FLOATS = {"FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
_READY = grpc.ChannelConnectivity.READY


class GrpcClient:
    """`InstanceClient` over the Open Inference Protocol's gRPC API (it connects on first use)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.connects = 0
        host, port = endpoint.address
        self._target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._requested = pb.ModelInferRequest.InferRequestedOutputTensor(name=endpoint.output)
        self._channel: grpc.aio.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None
        self._connected = False  # whether the channel was READY when last looked at

    async def infer(self, inputs: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(inputs, dtype="<f4")
        tensor = pb.ModelInferRequest.InferInputTensor(name=self.endpoint.input, datatype="FP32", shape=batch.shape)
        request = pb.ModelInferRequest(model_name=self.endpoint.model, model_version=self.endpoint.version or "",
                                       inputs=[tensor], outputs=[self._requested],
                                       raw_input_contents=[batch.tobytes()])
        return self._outputs(await self._call("ModelInfer", request), len(batch))

    async def ready(self) -> bool:
        if self._channel is not None and self._channel.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            await self.close()  # a new channel connects now; this one would wait out its backoff
        try:
            timeout = probe_timeout(self.endpoint)
            server = await self._call("ServerReady", pb.ServerReadyRequest(), timeout)
            if not server.ready:
                return False
            model = pb.ModelReadyRequest(name=self.endpoint.model, version=self.endpoint.version or "")
            return (await self._call("ModelReady", model, timeout)).ready
        except InstanceError:
            return False

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel, self._stub, self._connected = self._channel, None, None, False
            await channel.close()

    async def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """One unary call with the endpoint's deadline (or ``timeout``); an `InstanceError` saying how it failed."""
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=_OPTIONS)
            self._stub = GRPCInferenceServiceStub(self._channel)
        channel = self._channel
        self._observe(channel)
        try:
            return await getattr(self._stub, method)(request, timeout=timeout or self.endpoint.timeout_s)
        except grpc.RpcError as err:
            details = " ".join(str(err.details() or "").split())  # one line: C-core details may span several
            raise InstanceError(f"{self.endpoint.url} {method}: {err.code().name}: {details}") from None
        finally:
            if channel is self._channel:  # not closed meanwhile
                self._observe(channel)

    def _observe(self, channel: grpc.aio.Channel) -> None:
        connected = channel.get_state() is _READY
        if connected and not self._connected:
            self.connects += 1
        self._connected = connected

    def _outputs(self, response: pb.ModelInferResponse, rows: int) -> np.ndarray:
        """The requested output as float32 (rows, ...), or `InstanceError` saying what was wrong with it."""
        where, name = self.endpoint.url, self.endpoint.output
        index = next((i for i, output in enumerate(response.outputs) if output.name == name), None)
        if index is None or index >= len(response.raw_output_contents):
            names = [output.name for output in response.outputs]
            raise InstanceError(f"{where} answered no raw output {name!r} (outputs: {names}, "
                                f"{len(response.raw_output_contents)} raw_output_contents)")
        output, raw = response.outputs[index], response.raw_output_contents[index]
        shape = tuple(output.shape)
        wire = _FLOATS.get(output.datatype)
        if wire is None:
            raise InstanceError(f"{where} answered output {name!r} as {output.datatype}, not a floating-point type")
        if len(raw) != int(np.prod(shape)) * wire.itemsize:
            raise InstanceError(f"{where} answered {len(raw)} bytes for output {name!r} of shape {list(shape)} "
                                f"{output.datatype}")
        if not shape or shape[0] != rows:
            raise InstanceError(f"{where} answered output {name!r} of shape {list(shape)} for a batch of {rows}")
        return np.frombuffer(raw, wire).reshape(shape).astype(np.float32)
