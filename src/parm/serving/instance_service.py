"""parm's own model server: one model of a run (the base model or parity j) behind the Open Inference Protocol.

This is what runs on each machine of a cluster that parm's remote backend fronts (`parm instance`): no
coordinator, no code, the model computed in the server's own process, one batch at a time (as an instance
of the local backend), with the same lean HTTP stack as `parm serve`. Inputs are checked for shape and
finiteness but not against the training data's range: an instance receives parities (sums of queries) and
a learned code's encodings, which lie outside it by design; the frontend checks the clients' queries.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from parm.runs import CodedRun, open_run
from parm.serving.core.coordinator import ORIGINAL
from parm.serving.core.pools import Pool
from parm.serving.http.model import ModelInfo, Prediction, TensorSpec, Unavailable
from parm.serving.instance import InstanceSpec, ModelInstance
from parm.serving.runtime.admission import Admission
from parm.serving.runtime.deployment import INPUT_NAME, OUTPUT_NAME, checkpoint_of, pool_model_name
from parm.serving.runtime.metrics import LATENCY_BUCKETS
from parm.serving.prometheus import DeferredHistogram
from parm.workload.emulation import Emulation


class ModelService:
    """An `InferenceService` running one `ModelInstance` in this process; `start` loads it, `stop` lets it go."""

    def __init__(self, model: ModelInfo, spec: InstanceSpec, *, max_pending: int = 256) -> None:
        self.model, self.spec = model, spec
        self.registry = CollectorRegistry()
        self.batches = Counter("parm_instance_batches", "Batches computed.", registry=self.registry)
        self.queries = Counter("parm_instance_queries", "Queries (batch rows) computed.", registry=self.registry)
        self.seconds = DeferredHistogram("parm_instance_batch_seconds", "Time from a batch's turn to its answer.",
                                         [], LATENCY_BUCKETS)
        self.registry.register(self.seconds)  # type: ignore[arg-type]  # a Collector by its collect method
        self.admission = Admission(max_pending, 4 * max_pending, 1.0)
        self._instance: ModelInstance | None = None
        self._turn = asyncio.Lock()  # one batch at a time, as one model instance

    async def start(self) -> None:
        self._instance = ModelInstance(self.spec)

    async def stop(self) -> None:
        self._instance = None

    def is_ready(self) -> bool:
        return self._instance is not None

    async def infer(self, inputs: np.ndarray) -> Prediction:
        async with self._turn:
            instance = self._instance
            if instance is None:
                raise Unavailable("the model server is starting or shutting down: retry shortly")
            start = time.perf_counter()
            outputs, due = instance.compute(inputs)
            if (hold := due - time.perf_counter()) > 0:
                await asyncio.sleep(hold)  # an emulated or delayed instance holds its answer until it is due
            self.seconds.observe((), time.perf_counter() - start)
        self.batches.inc()
        self.queries.inc(len(inputs))
        return Prediction(outputs, (ORIGINAL,) * len(inputs))


def build_model_service(source: str | Path, pool: Pool, *, noop: bool = False, delay_s: float = 0.0,
                        threads: int = 1, name: str | None = None, max_pending: int = 256,
                        emulation: Emulation | None = None, instance_id: int = 0, engine: str = "torch") -> ModelService:
    """The server of ``pool``'s model of ``source`` (a coded run folder, or a base checkpoint for the base pool),
    named as `parm export` names it (`model_name`) unless ``name`` is given. ``emulation``: hold each answer to an
    emulated service time, drawn from the stream of instance ``instance_id`` (as the local backend's are);
    ``engine``: what computes the model (`parm.serving.engines`)."""
    run = open_run(Path(source))
    if pool.parity is not None and not (isinstance(run, CodedRun) and pool.parity < run.r):
        have = f"parity pools parity-0..parity-{run.r - 1}" if isinstance(run, CodedRun) else "only the base pool"
        raise ValueError(f"{source} has no pool {pool}: it has {have}")
    card = run.base.card()
    checkpoint = checkpoint_of(pool, run)
    model = ModelInfo(
        name=name or pool_model_name(run, pool),
        inputs=(TensorSpec(INPUT_NAME, "FP32", (-1, *card.input_shape)),),
        outputs=(TensorSpec(OUTPUT_NAME, "FP32", (-1, card.num_classes)),),
        platform="parm-instance",
        parameters={"pool": str(pool), "run": str(source)},
    )
    spec = InstanceSpec(id=instance_id, pool=pool, checkpoint=None if noop else str(checkpoint),
                        output_shape=(card.num_classes,), delay_s=delay_s, threads=threads, emulation=emulation,
                        engine=engine)
    return ModelService(model, spec, max_pending=max_pending)
