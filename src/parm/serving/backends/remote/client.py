"""What the remote backend needs of a connection to one model server, whatever protocol it speaks.

A client keeps its connection open between calls and turns every way a call can go wrong (a refused or reset
connection, a timeout, an error status, an answer of the wrong shape) into `InstanceError`: to the frontend,
the instance failed, and its batch is reconstructed or sent again elsewhere.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from parm.serving.backends.remote.cluster import Endpoint


PROBE_TIMEOUT_S = 2.0


def probe_timeout(endpoint: Endpoint) -> float:
    """How long a readiness probe may take: a few calls' worth, at most `PROBE_TIMEOUT_S`."""
    return min(PROBE_TIMEOUT_S, 4 * endpoint.timeout_s)


class InstanceError(Exception):
    """A call to a model server failed; the message says how (for logs and the failure's reason)."""


class InstanceClient(Protocol):
    endpoint: Endpoint
    connects: int  # connections opened so far (a persistent connection opens once)

    async def infer(self, inputs: np.ndarray) -> np.ndarray:
        """The model's outputs for a float32 batch (n, *input_shape), one row per input; raises `InstanceError`."""

    async def ready(self) -> bool:
        """Whether the server is up and its model ready (False, never an exception, while it is not)."""

    async def close(self) -> None:
        """Close the connection."""


def connect(endpoint: Endpoint) -> InstanceClient:
    """A client for ``endpoint``, by its URL's scheme (it connects on first use)."""
    if endpoint.scheme == "grpc":
        from parm.serving.backends.remote.grpc_client import GrpcClient

        return GrpcClient(endpoint)
    from parm.serving.backends.remote.http_client import HttpClient

    return HttpClient(endpoint)
