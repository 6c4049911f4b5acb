"""CPU time the frontend spends per query, per mode, with instances that answer at once (no processes, no HTTP).

Run: .venv/bin/python benchmarks/frontend_cpu.py [--queries 5000]
Drives `Frontend.infer` one query at a time against an in-process backend that completes every batch on
the next event-loop turn, for a sum-code run folder (k = 2, 12 base instances), and prints the process
CPU time per query: the coordinator, codec, metrics and event-loop work that each mode adds.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from parm.bench.placeholder import INPUT_SHAPE, placeholder_run
from parm.serving import Frontend, ServeOptions, build_deployment
from parm.serving.backends.base import Backend, BackendEvents
from parm.serving.instance import InstanceSpec


class Instant(Backend):
    """Every batch finishes on the next loop turn with zeros."""

    name = "instant"

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        self.events = events

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        outputs = np.zeros((len(inputs), 10), np.float32)
        asyncio.get_running_loop().call_soon(self.events.on_result, instance, batch_id, outputs)

    def kill(self, instance: int, *, restart: bool = True) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        pass


async def cpu_per_query(run: str, mode: str, queries: int) -> float:
    frontend = Frontend(build_deployment(run, ServeOptions(mode=mode, instances=12, noop=True)), Instant())
    await frontend.start()
    x = np.random.default_rng(0).random((1, *INPUT_SHAPE), dtype=np.float32)
    start = time.process_time()
    for _ in range(queries):
        await frontend.infer(x)
    return (time.process_time() - start) / queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = str(placeholder_run(tmp))
        for mode in ("none", "equal-resources", "hedged", "parm"):
            seconds = asyncio.run(cpu_per_query(run, mode, args.queries))
            print(f"| {mode} | {seconds * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
