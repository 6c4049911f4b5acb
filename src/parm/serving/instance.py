"""One model instance's work: load a checkpoint and run batches, whatever process it lives in.

The local backend runs this in a child process and the Ray backend in an actor; both call
`ModelInstance.run`. Emulation knobs (a no-op model, an added service delay, a slowdown factor)
let benchmarks and the demo make an instance slow without a busier machine.
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
    """What one instance runs: a checkpoint (or a no-op model of the given output size) and how slow it is."""

    id: int
    pool: str
    checkpoint: str | None = None
    output_shape: tuple[int, ...] = ()
    delay_s: float = 0.0
    slowdown: float = 1.0
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceSpec:
        return cls(**{**data, "output_shape": tuple(data.get("output_shape", ()))})


class ModelInstance:
    """A loaded model that turns input batches into output batches."""

    def __init__(self, spec: InstanceSpec) -> None:
        self.spec = spec
        torch.set_num_threads(max(1, spec.threads))
        self.model = load_checkpoint(spec.checkpoint)[0] if spec.checkpoint else None
        if self.model is None and not spec.output_shape:
            raise ValueError(f"instance {spec.id}: a no-op instance (no checkpoint) needs an output_shape")

    @torch.inference_mode()
    def run(self, inputs: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if self.model is None:
            outputs = np.zeros((len(inputs), *self.spec.output_shape), dtype=np.float32)
        else:
            outputs = self.model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).numpy()
        extra = self.spec.delay_s + (self.spec.slowdown - 1.0) * (time.perf_counter() - start)
        if extra > 0:
            time.sleep(extra)  # emulated service time: this instance is slow, nobody waits on the sleep
        return outputs
