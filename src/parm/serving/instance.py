"""One model instance's work: load a checkpoint and run batches, whatever process it lives in.

The local backend runs instances in worker processes (`parm.serving.worker`, which holds answers
until `ModelInstance.compute` says they are due, so one process can host many instances) and the
Ray backend in an actor (`ModelInstance.run`, which sleeps until then). Emulation knobs (a no-op
model, an added delay, an emulated service-time law with background-shuffle slowdowns) let
benchmarks and the demo make instances slow without a busier machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from parm.models import load_checkpoint


@dataclass(frozen=True)
class InstanceSpec:
    """What one instance runs: a checkpoint (or a no-op model of the given output size) and how slow it is.

    ``delay_s`` is added to every call; ``emulation`` (an `Emulation` as a dict) holds each answer to an
    emulated service time instead of the time the computation took; ``shuffle_endpoint`` runs a loopback
    endpoint for real background shuffles (`parm.serving.shuffle_endpoint`, local backend only).
    """

    id: int
    pool: str
    checkpoint: str | None = None
    output_shape: tuple[int, ...] = ()
    delay_s: float = 0.0
    emulation: dict[str, Any] | None = None
    shuffle_endpoint: bool = False
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceSpec:
        return cls(**{**data, "output_shape": tuple(data.get("output_shape", ()))})


class ModelInstance:
    """A loaded model that turns input batches into output batches."""

    def __init__(self, spec: InstanceSpec, model: torch.nn.Module | None = None) -> None:
        """``model``: the spec's checkpoint already loaded (instances of one process share it), else loaded here."""
        self.spec = spec
        torch.set_num_threads(max(1, spec.threads))
        self.model = model if model is not None or not spec.checkpoint else load_checkpoint(spec.checkpoint)[0]
        if self.model is None and not spec.output_shape:
            raise ValueError(f"instance {spec.id}: a no-op instance (no checkpoint) needs an output_shape")
        self.clock = None
        if spec.emulation is not None:
            from parm.serving.emulation import Emulation, EmulatedClock

            self.clock = EmulatedClock(Emulation.from_dict(spec.emulation), spec.id)

    @torch.inference_mode()
    def compute(self, inputs: np.ndarray) -> tuple[np.ndarray, float]:
        """The outputs and when (a `time.perf_counter` time) they may leave: an emulated or delayed instance
        holds them until its service time (plus ``delay_s``) has passed since the call started."""
        start, started_wall = time.perf_counter(), time.time()
        if self.model is None:
            outputs = np.zeros((len(inputs), *self.spec.output_shape), dtype=np.float32)
        else:
            outputs = self.model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).numpy()
        service = self.clock.service_time(len(inputs), started_wall) if self.clock is not None else 0.0
        return outputs, start + max(service, time.perf_counter() - start) + self.spec.delay_s

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """`compute`, then wait until the outputs are due (for callers that serve one call at a time)."""
        outputs, due = self.compute(inputs)
        if (hold := due - time.perf_counter()) > 0:
            time.sleep(hold)  # an emulated slow instance: nobody synchronises on this sleep
        return outputs
