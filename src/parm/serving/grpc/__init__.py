"""The Open Inference Protocol's gRPC API (KServe v2 ``inference.GRPCInferenceService``) over an `InferenceService`.

`messages` turns protobuf messages into the requests `parm.serving.http.protocol` validates and back, `service`
answers the RPCs, and `server` runs them with grpc.aio beside the REST server, on the same event loop.
"""

from __future__ import annotations

from parm.serving.grpc.server import GrpcServer, start_grpc_server

__all__ = ["GrpcServer", "start_grpc_server"]
