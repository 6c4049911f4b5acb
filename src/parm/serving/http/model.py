"""What the HTTP layer needs from a model service: metadata, readiness, and batched inference.

The protocol code (`parm.serving.http.app`) knows nothing about codes or instances; the coded frontend
(`parm.serving.runtime.frontend`) knows nothing about HTTP. This module is the seam between them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from prometheus_client import CollectorRegistry

# Each query's latency at the frontend, from its receipt to its answer, in whole microseconds (response parameter).
LATENCY_PARAMETER = "frontend_latency_us"


@dataclass(frozen=True)
class TensorSpec:
    """A declared tensor: its name, Open Inference Protocol datatype and shape (-1: any batch size).

    ``bounds`` is the range of values the model was trained on (an input outside it is refused, or clipped
    into it with ``clip``): an input far outside, once summed into a parity, would corrupt other queries' answers.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    bounds: tuple[float, float] | None = None
    clip: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """The model a server exposes, as its metadata endpoint describes it."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    version: str = "1"
    platform: str = "parm"
    max_batch_size: int = 64
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """Outputs (n, *output_shape) for n queries, how each was answered and, where the service measures it,
    each one's latency in seconds from its receipt to its answer (the paper's measure point)."""

    outputs: np.ndarray
    answers: tuple[str, ...]
    latencies: tuple[float, ...] = ()


class Overloaded(Exception):
    """The service's queue is full; the client should retry after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(Exception):
    """The service is not ready or is shutting down (HTTP 503)."""


class InferenceService(Protocol):
    """A model behind the protocol: the coded frontend, or a test double."""

    model: ModelInfo
    registry: CollectorRegistry

    def is_ready(self) -> bool:
        """Whether queries can be served now."""

    def admission(self) -> contextlib.AbstractAsyncContextManager:
        """A place for one request, held while it is read and served: taken before its body is read, so that
        shedding load costs microseconds, not a parse; raises `Overloaded` when none is to be had."""

    async def infer(self, inputs: np.ndarray) -> Prediction:
        """Predict a batch of n queries, each of the model's declared input shape."""
