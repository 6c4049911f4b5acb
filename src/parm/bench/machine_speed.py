"""How fast this machine is on a fixed reference workload, so that figures from two machines can be told apart.

A run's latency and throughput depend on the machine under it as much as on the code: the same benchmark of the same
commit spent 2.2-2.5 times the CPU per query on one VM as on another (docs/RESULTS.md, testbed item 23), and a shared
host is slower on a busy day. Three figures, each the median of a few rounds, stand for what serving spends its
time on: the interpreter (a fixed loop of Python bytecode), memory (copying one paper-size query, 600 KB), and the
kernel (a one-byte pipe write and read: two system calls, which mitigations and virtualisation make dearer); and
the vector instructions PyTorch's CPU kernels use here (AVX2 or AVX512: a model's compute depends on it).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

LOOP = 100_000  # iterations of the reference loop per round
COPIES = 50  # copies of a paper-size query (3x224x224 float32) per round
PIPE_TRIPS = 2_000  # one-byte pipe round trips per round


@dataclass(frozen=True)
class MachineSpeed:
    """Lower is faster: ns per reference-loop iteration, µs per 600 KB copy, µs per pipe write + read; and
    ``torch_cpu``, PyTorch's CPU capability (``torch.backends.cpu.get_cpu_capability()``)."""

    python_ns: float
    copy_us: float
    syscall_us: float
    torch_cpu: str

    def as_dict(self) -> dict[str, float | str]:
        return {name: round(value, 3) if isinstance(value, float) else value for name, value in asdict(self).items()}


def machine_speed(rounds: int = 5) -> MachineSpeed:
    """The reference workload's figures on this machine, now (about 20 ms a round); medians over ``rounds``."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    source = np.ones((3, 224, 224), dtype=np.float32)
    target = np.empty_like(source)
    read, write = os.pipe()
    try:
        figures = [(_loop(), _copies(source, target), _pipe_trips(read, write)) for _ in range(rounds)]
    finally:
        os.close(read)
        os.close(write)
    python_ns, copy_us, syscall_us = (statistics.median(column) for column in zip(*figures))
    return MachineSpeed(python_ns, copy_us, syscall_us, torch.backends.cpu.get_cpu_capability())


def _loop() -> float:
    started = time.perf_counter_ns()
    total = 0
    for i in range(LOOP):
        total += i * i
    return (time.perf_counter_ns() - started) / LOOP


def _copies(source: np.ndarray, target: np.ndarray) -> float:
    started = time.perf_counter_ns()
    for _ in range(COPIES):
        np.copyto(target, source)
    return (time.perf_counter_ns() - started) / COPIES / 1e3


def _pipe_trips(read: int, write: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(PIPE_TRIPS):
        os.write(write, b"x")
        os.read(read, 1)
    return (time.perf_counter_ns() - started) / PIPE_TRIPS / 1e3
