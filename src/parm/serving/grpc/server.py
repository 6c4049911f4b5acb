"""Serve the Open Inference Protocol's gRPC API with ``grpc.aio`` on the running event loop.

The server shares its loop with whatever else runs there (parm's uvicorn server, on uvloop, which grpc.aio
supports): the service is called from the loop it lives on, as REST calls it. It binds 127.0.0.1 unless told
otherwise, fails at once on a port another socket listens on (gRPC's default SO_REUSEPORT would let two servers
share it, each taking some of the connections), and takes messages up to 64 MiB: 64 queries of 3 x 224 x 224 floats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# The local backend forks its workers while gRPC's threads run: gRPC's fork handlers would only log that they skip
# (each child execs at once). Set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402
from tritonclient.grpc.service_pb2_grpc import add_GRPCInferenceServiceServicer_to_server

from parm.serving.grpc.service import InferenceServicer
from parm.serving.http.model import InferenceService

MAX_MESSAGE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class GrpcServer:
    """A started gRPC server: where it listens, and how to stop it."""

    server: grpc.aio.Server
    host: str
    port: int

    @property
    def address(self) -> str:
        """``HOST:PORT``, with an IPv6 host in brackets, as gRPC targets and URLs want it."""
        return _target(self.host, self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let those in flight finish for up to ``grace`` seconds (None: all), cancel the rest."""
        await self.server.stop(grace)


async def start_grpc_server(service: InferenceService, host: str = "127.0.0.1", port: int = 0, *,
                            max_message_bytes: int = MAX_MESSAGE_BYTES) -> GrpcServer:
    """Serve ``service`` on ``host``:``port`` (0: any free port) from the running loop; raises `OSError` if the
    address cannot be bound."""
    server = grpc.aio.server(options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ])
    add_GRPCInferenceServiceServicer_to_server(InferenceServicer(service), server)
    try:
        bound = server.add_insecure_port(_target(host, port))
    except RuntimeError as exc:  # grpc's "Failed to bind to address ..."
        raise OSError(f"cannot serve gRPC on {_target(host, port)}: {exc}") from None
    await server.start()
    return GrpcServer(server, host, bound)


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
