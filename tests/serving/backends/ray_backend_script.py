"""Drives a RayBackend through start, faults and stop; run by test_ray_backend.py inside a loopback-only netns.

Usage: ``python ray_backend_script.py WORKDIR``. Prints one line ``SUMMARY {json}`` at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import ray
import torch

from parm.models import ModelCard, build_model, load_checkpoint, save_checkpoint
from parm.serving.backends.ray import RayBackend
from parm.serving.core.pools import BASE_POOL
from parm.serving.instance import InstanceSpec

INPUT_SHAPE = (1, 4, 4)
DELAY_S = 0.5  # no-op instances take this long per batch, so a kill right after a submit lands mid-batch


class Recorder:
    """BackendEvents that keeps everything it hears and lets the scenario await a condition on it."""

    def __init__(self) -> None:
        self.results: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.failures: list[tuple[int, list[int], str]] = []
        self.ready: list[int] = []
        self.sequence: dict[int, list[str]] = {}
        self._changed = asyncio.Event()

    def on_result(self, instance: int, batch_id: int, outputs: np.ndarray) -> None:
        self.results.setdefault(batch_id, []).append((instance, outputs))
        self._poke()

    def on_failure(self, instance: int, lost_batches: Sequence[int], reason: str) -> None:
        self.failures.append((instance, list(lost_batches), reason))
        self.sequence.setdefault(instance, []).append("failure")
        self._poke()

    def on_ready(self, instance: int) -> None:
        self.ready.append(instance)
        self.sequence.setdefault(instance, []).append("ready")
        self._poke()

    def answers(self, batch_id: int) -> int:
        """How many times ``batch_id`` was answered or reported lost (exactly once is right)."""
        return len(self.results.get(batch_id, [])) + sum(lost.count(batch_id) for _, lost, _ in self.failures)

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def make_checkpoint(workdir: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("logistic-regression", INPUT_SHAPE, 3)
    card = ModelCard("logistic-regression", INPUT_SHAPE, ("a", "b", "c"), "synthetic", 0)
    return save_checkpoint(model, card, workdir / "ckpt")


async def scenario(workdir: Path) -> dict:
    checkpoint = make_checkpoint(workdir)
    model = load_checkpoint(checkpoint)[0]
    specs = [
        InstanceSpec(id=0, pool=BASE_POOL, checkpoint=None, output_shape=(3,), delay_s=DELAY_S),
        InstanceSpec(id=1, pool=BASE_POOL, checkpoint=None, output_shape=(3,), delay_s=DELAY_S),
        InstanceSpec(id=2, pool=BASE_POOL, checkpoint=str(checkpoint), output_shape=(3,)),
    ]
    rec, backend = Recorder(), RayBackend(num_cpus_per_instance=0.5)
    rng, ids = np.random.default_rng(0), itertools.count()
    submitted: dict[int, tuple[int, np.ndarray]] = {}

    def submit(instance: int) -> int:
        batch_id, inputs = next(ids), rng.random((4, *INPUT_SHAPE), dtype=np.float32)
        submitted[batch_id] = (instance, inputs)
        backend.submit(instance, batch_id, inputs)
        return batch_id

    def all_answered() -> bool:
        return all(rec.answers(b) for b in submitted)

    t0 = time.perf_counter()
    await backend.start(specs, rec)
    started_s = time.perf_counter() - t0

    # Everyone serves.
    for instance in range(3):
        submit(instance)
    await rec.until(all_answered)

    # One batch at a time per actor: two batches on a DELAY_S instance take twice DELAY_S.
    t = time.perf_counter()
    pair = [submit(0), submit(0)]
    await rec.until(all_answered)
    pair_s = time.perf_counter() - t

    # Fault injection through kill(), mid-batch; a batch sent before the replacement is ready is lost too.
    killed_inflight, sent_while_down = submit(0), None
    backend.kill(0)
    sent_while_down = submit(0)
    await rec.until(lambda: 0 in rec.ready)
    t = time.perf_counter()
    served_after_kill = [submit(0)]

    # An actor killed behind the backend's back, mid-batch (the failing batch or the watcher notices) ...
    external_inflight = submit(1)
    ray.kill(backend._slots[1].actor, no_restart=True)
    # ... and an idle one, which only the watcher can notice.
    ray.kill(backend._slots[2].actor, no_restart=True)
    await rec.until(lambda: {1, 2} <= set(rec.ready))
    served_after_kill += [submit(1), submit(2), submit(2)]
    await rec.until(all_answered)
    restarted_s = time.perf_counter() - t

    await backend.stop()
    return {
        "started_s": round(started_s, 2),
        "restarted_s": round(restarted_s, 2),
        "pair_s": round(pair_s, 2),
        "pair": pair,
        "answers": {b: rec.answers(b) for b in submitted},
        "lost": sorted(b for _, lost, _ in rec.failures for b in lost),
        "expected_lost": sorted([killed_inflight, sent_while_down, external_inflight]),
        "failures": [[i, lost] for i, lost, _ in rec.failures],
        "reasons": [reason for _, _, reason in rec.failures],
        "sequence": rec.sequence,
        "ready": sorted(rec.ready),
        "served_after_kill": [b in rec.results for b in served_after_kill],
        "wrong_outputs": wrong_outputs(rec, submitted, model),
        "wrong_instance": [b for b, got in rec.results.items() if got[0][0] != submitted[b][0]],
        "ray_still_up": ray.is_initialized(),
    }


def wrong_outputs(rec: Recorder, submitted: dict[int, tuple[int, np.ndarray]], model: torch.nn.Module) -> list[int]:
    """Batches whose outputs differ from a no-op's zeros or from the checkpoint's model run here."""
    wrong = []
    for batch_id, [(instance, outputs), *_] in rec.results.items():
        inputs = submitted[batch_id][1]
        if instance == 2:
            with torch.inference_mode():
                expected = model(torch.from_numpy(inputs)).numpy()
        else:
            expected = np.zeros((len(inputs), 3), dtype=np.float32)
        if outputs.shape != expected.shape or not np.allclose(outputs, expected, atol=1e-5):
            wrong.append(batch_id)
    return wrong


def main() -> None:
    summary = asyncio.run(asyncio.wait_for(scenario(Path(sys.argv[1])), timeout=120))
    print("SUMMARY " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
