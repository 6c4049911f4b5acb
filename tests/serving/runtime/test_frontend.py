"""The asyncio frontend with an in-process backend: answers, admission control, draining on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from parm.serving import Frontend, ServeOptions, build_deployment
from parm.serving.backends.base import Backend, BackendEvents
from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED, CoordinatorConfig
from parm.serving.http.model import Overloaded, Unavailable
from parm.serving.instance import InstanceSpec, ModelInstance

from ..exact_runs import INPUT_SHAPE, affine_run


class InProcessBackend(Backend):
    """Runs each instance's model in this process on the next loop turn; ``held`` instances never answer."""

    name = "in-process"

    def __init__(self, held: Sequence[int] = ()) -> None:
        self.held = set(held)
        self.models: dict[int, ModelInstance] = {}
        self.stopped = False

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        self.events = events
        self.models = {spec.id: ModelInstance(spec) for spec in instances}

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        if instance not in self.held or batch_id < 0:
            outputs = self.models[instance].run(inputs)
            asyncio.get_running_loop().call_soon(self.events.on_result, instance, batch_id, outputs)

    def kill(self, instance: int, *, restart: bool = True) -> None:
        self.events.on_failure(instance, [], "killed")
        if restart:
            self.events.on_ready(instance)

    async def stop(self) -> None:
        self.stopped = True


def frontend(tmp_path: Path, held: Sequence[int] = (), **options) -> tuple[Frontend, torch.nn.Module]:
    run, base = affine_run(tmp_path)
    deployment = build_deployment(run, ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.0, **options)))
    return Frontend(deployment, InProcessBackend(held), max_pending=4), base


def queries(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, *INPUT_SHAPE)).astype(np.float32)


def infer_once(service: Frontend, inputs: np.ndarray):
    """Start ``service``, answer ``inputs`` as one request, stop it; returns the prediction."""

    async def scenario():
        await service.start()
        prediction = await service.infer(inputs)
        await service.stop()
        return prediction

    return asyncio.run(scenario())


def test_a_held_instance_is_covered_and_the_answers_are_exact(tmp_path: Path) -> None:
    service, base = frontend(tmp_path, held=[0])
    prediction = infer_once(service, queries(2))
    with torch.no_grad():
        np.testing.assert_allclose(prediction.outputs, base(torch.from_numpy(queries(2))).numpy(), atol=1e-5)
    assert prediction.answers == (RECONSTRUCTED, ORIGINAL)  # query 0 went to the held instance 0
    assert len(prediction.latencies) == 2 and all(0 < seconds < 60 for seconds in prediction.latencies)


def test_queries_beyond_the_pending_limit_are_refused_and_the_rest_answered(tmp_path: Path) -> None:
    service, _ = frontend(tmp_path, held=[0, 1, 2], deadline=0.05)  # nothing answers: the deadline does

    async def scenario():
        await service.start()
        first = asyncio.ensure_future(service.infer(queries(4)))
        await asyncio.sleep(0)  # let the first request be admitted
        with pytest.raises(Overloaded, match="limit 4"):
            await service.infer(queries(1))
        gauges = {name: service.registry.get_sample_value(name, labels) for name, labels in
                  [("parm_pending_queries", {}), ("parm_queue_depth", {"pool": "base"})]}
        assert gauges == {"parm_pending_queries": 4, "parm_queue_depth": 2}  # read when scraped
        return await first

    prediction = asyncio.run(scenario())
    assert prediction.answers == ("default",) * 4


def test_queries_are_refused_before_start_and_drained_on_stop(tmp_path: Path) -> None:
    service, _ = frontend(tmp_path)

    async def scenario():
        with pytest.raises(Unavailable):
            await service.infer(queries(1))
        await service.start()
        pending = asyncio.ensure_future(service.infer(queries(3)))
        await asyncio.sleep(0)
        await service.stop()  # answers what is in flight before stopping the instances
        return pending.done(), service.backend.stopped

    assert asyncio.run(scenario()) == (True, True)
