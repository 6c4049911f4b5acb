"""One model instance's work: load a checkpoint and run batches, whatever process it lives in.

The local backend runs instances in worker processes (`parm.serving.backends.local.worker`, which
holds answers until `ModelInstance.compute` says they are due, so one process can host many
instances) and the Ray backend in an actor (`ModelInstance.run`, which sleeps until then). A no-op
model, an added delay and an emulated service time (`parm.workload.emulation`) let benchmarks and
the demo make instances slow without a busier machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from parm.serving.core.pools import Pool
from parm.serving.engines import ENGINES, Compute, load_engine
from parm.workload.emulation import Emulation
from parm.workload.faults import WRONG_KINDS


@dataclass(frozen=True)
class InstanceSpec:
    """What one instance runs: a checkpoint (or a no-op model of the given output size) and how slow it is.

    ``delay_s`` is added to every call; ``emulation`` holds each answer to an emulated service time instead
    of the time the computation took; ``engine`` is what computes the model (`parm.serving.engines`: PyTorch or ONNX
    Runtime, on ``threads`` threads); ``shuffle_endpoint`` runs a loopback endpoint for real background
    shuffles (`parm.workload.shuffle_traffic`, local backend only); ``wrong`` makes a Byzantine instance, whose
    answers are wrong, not slow (`WRONG_KINDS`: its outputs plus noise of their own size, or the outputs of its
    previous call, another query's).
    """

    id: int
    pool: Pool
    checkpoint: str | None = None
    output_shape: tuple[int, ...] = ()
    delay_s: float = 0.0
    emulation: Emulation | None = None
    shuffle_endpoint: bool = False
    threads: int = 1
    wrong: str | None = None
    engine: str = "torch"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"instance {self.id}: the engine is one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.wrong is not None and self.wrong not in WRONG_KINDS:
            raise ValueError(f"instance {self.id}: wrong answers are one of {', '.join(WRONG_KINDS)}, got {self.wrong!r}")

    @property
    def engine_key(self) -> tuple[str, str, int]:
        """(checkpoint, engine, threads): instances with equal keys compute with one loaded model."""
        return (str(self.checkpoint), self.engine, self.threads)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (it crosses to worker processes and Ray actors as JSON, never pickled)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "pool": self.pool.parity,
                "emulation": self.emulation.to_dict() if self.emulation is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceSpec:
        emulation = data.get("emulation")
        return cls(**{**data, "pool": Pool(data["pool"]), "output_shape": tuple(data.get("output_shape", ())),
                      "emulation": Emulation.from_dict(emulation) if emulation is not None else None})


class ModelInstance:
    """A loaded model that turns input batches into output batches."""

    def __init__(self, spec: InstanceSpec, model: Compute | None = None) -> None:
        """``model``: the spec's checkpoint already loaded by its engine (instances of one process share it), else
        loaded here."""
        self.spec = spec
        torch.set_num_threads(max(1, spec.threads))
        self.model = model if model is not None or not spec.checkpoint else load_engine(*spec.engine_key)
        if self.model is None and not spec.output_shape:
            raise ValueError(f"instance {spec.id}: a no-op instance (no checkpoint) needs an output_shape")
        self.clock = spec.emulation.clock(spec.id) if spec.emulation is not None else None
        self._noise = np.random.default_rng(spec.id)  # a Byzantine instance's own seeded noise
        self._previous: np.ndarray | None = None

    def compute(self, inputs: np.ndarray) -> tuple[np.ndarray, float]:
        """The outputs and when (a `time.perf_counter` time) they may leave: an emulated or delayed instance
        holds them until its service time (plus ``delay_s``) has passed since the call started."""
        start, started_wall = time.perf_counter(), time.time()
        if self.model is None:
            outputs = np.zeros((len(inputs), *self.spec.output_shape), dtype=np.float32)
        else:
            outputs = self.model(inputs)
        if self.spec.wrong is not None:
            outputs = self._wrong(outputs)
        service = 0.0
        if self.clock is not None:
            service = self.clock.service_time(len(inputs), started_wall - self.spec.emulation.epoch)
        return outputs, start + max(service, time.perf_counter() - start) + self.spec.delay_s

    def _wrong(self, outputs: np.ndarray) -> np.ndarray:
        """A Byzantine instance's answer: ``noise`` adds Gaussian noise of the outputs' RMS; ``stale`` returns its
        previous call's outputs (rows cycled to this batch's size; zeros on its first call)."""
        if self.spec.wrong == "noise":
            scale = float(np.sqrt(np.mean(outputs ** 2))) or 1.0
            return (outputs + self._noise.normal(0.0, scale, outputs.shape)).astype(outputs.dtype)
        previous = self._previous if self._previous is not None else np.zeros_like(outputs)
        self._previous = outputs
        return np.resize(previous, outputs.shape)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """`compute`, then wait until the outputs are due (for callers that serve one call at a time)."""
        outputs, due = self.compute(inputs)
        if (hold := due - time.perf_counter()) > 0:
            time.sleep(hold)  # an emulated slow instance: nobody synchronises on this sleep
        return outputs
