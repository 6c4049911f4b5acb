"""Serving fixtures: a toy model, a deterministic fake `InferenceService`, and a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter

from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED
from parm.serving.http.model import ModelInfo, Overloaded, Prediction, TensorSpec

TOY_MODEL = ModelInfo(
    name="toy",
    inputs=(TensorSpec("input", "FP32", (-1, 1, 2, 3)),),
    outputs=(TensorSpec("output", "FP32", (-1, 2)),),
    max_batch_size=8,
)


class FakeService:
    """Outputs (sum, 2 * sum) of each query's pixels; even rows answered "original", odd rows "reconstructed".

    Set ``error`` to make `infer` raise it, ``ready`` to flip readiness.
    """

    def __init__(self, model: ModelInfo = TOY_MODEL) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        self.queries = Counter("fake_queries", "Queries the fake service answered.", registry=self.registry)
        self.reset()

    def reset(self) -> None:
        """Ready, no error, nothing seen: so one served fake can be shared by a module's tests."""
        self.ready = True
        self.admitting = True
        self.error: Exception | None = None
        self.seen: list[np.ndarray] = []

    def is_ready(self) -> bool:
        return self.ready

    @contextlib.asynccontextmanager
    async def admission(self):
        if not self.admitting:
            raise Overloaded("the fake is full")
        yield

    async def infer(self, inputs: np.ndarray) -> Prediction:
        if self.error is not None:
            raise self.error
        self.seen.append(inputs)
        self.queries.inc(len(inputs))
        return Prediction(expected_outputs(inputs), expected_answers(len(inputs)))


def expected_outputs(inputs: np.ndarray) -> np.ndarray:
    """What `FakeService` answers for ``inputs``."""
    sums = inputs.reshape(len(inputs), -1).sum(axis=1, keepdims=True, dtype=np.float32)
    return (sums * np.array([1, 2], np.float32)).astype(np.float32)


def expected_answers(n: int) -> tuple[str, ...]:
    return tuple(ORIGINAL if i % 2 == 0 else RECONSTRUCTED for i in range(n))


@pytest.fixture(scope="session")
def toy_model() -> ModelInfo:
    return TOY_MODEL


@pytest.fixture(scope="session")
def fake_service_factory() -> Callable[[], FakeService]:
    """Makes `FakeService`s, for fixtures of any scope (tests cannot import this conftest)."""
    return FakeService


@pytest.fixture
def fake_service(fake_service_factory) -> FakeService:
    return fake_service_factory()


@pytest.fixture(scope="session")
def fake_outputs() -> Callable[[np.ndarray], np.ndarray]:
    return expected_outputs
