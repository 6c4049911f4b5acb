"""Replay test-split queries through a real server and score its answers by kind.

This is `make demo`'s last step and the check that served reconstructions are as accurate as the
offline evaluation says: a local server on loopback, one instance optionally slowed or killed
mid-load, tritonclient senders, and a table of answers (original, reconstructed, default) scored in the task's
headline measure (accuracy, or mean IoU for boxes) against the true targets, with the offline A_d beside them.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import tritonclient.http as triton
from tqdm import tqdm

from parm.bench.cluster import InstanceServers
from parm.bench.harness import serve_locally
from parm.runs import open_run
from parm.serving.backends import build_backend
from parm.serving.backends.remote.cluster import Endpoint, pool_sizes
from parm.serving.core.coordinator import ANSWER_KINDS
from parm.serving.runtime.deployment import INPUT_NAME, OUTPUT_NAME, ServeOptions, build_deployment
from parm.tasks import get_task


RECOVERY_TIMEOUT_S = 60.0


@dataclass
class ReplayReport:
    """What came back: counts and the task's headline measure (``metric``) per answer kind, and offline A_d."""

    run: str
    mode: str
    queries: int
    answered: int
    counts: dict[str, int]
    accuracy: dict[str, float | None]
    killed_instance: int | None = None
    instance_failures: int = 0
    offline_degraded_accuracy: float | None = None
    options: dict = field(default_factory=dict)
    instance_recoveries: int = 0
    wrong_outputs: dict[str, int] | None = None  # with --verify: groups with one wrong output found, or more
    offline_one_lost_accuracy: float | None = None  # offline A_d with one original lost (what a rebuilt wrong one is)
    task: str = "classification"  # `accuracy` and the offline figures are in its headline measure

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def table(self) -> str:
        task = get_task(self.task)
        rows = [f"| answer | queries | {task.metric_label} |", "|---|---|---|"]
        for kind in ANSWER_KINDS:
            accuracy = self.accuracy[kind]
            rows.append(f"| {kind} | {self.counts[kind]} | {'-' if accuracy is None else task.format(accuracy)} |")
        if self.offline_degraded_accuracy is not None:
            rows.append(f"| offline A_d (`parm evaluate`) | | {task.format(self.offline_degraded_accuracy)} |")
        if self.offline_one_lost_accuracy not in (None, self.offline_degraded_accuracy):
            rows.append(f"| offline A_d, one original lost | | {task.format(self.offline_one_lost_accuracy)} |")
        if self.wrong_outputs is not None:
            rows.append(f"| wrong outputs found (--verify) | {self.wrong_outputs['located']} located, "
                        f"{self.wrong_outputs['unresolved']} unresolved | |")
        return "\n".join(rows)


def replay(
    source: str | Path, options: ServeOptions, *, queries: int = 300, concurrency: int = 8,
    kill: tuple[int, int] | None = None, seed: int = 0, progress: bool = True, backend: str = "local",
    endpoints: list[Endpoint] | None = None,
) -> ReplayReport:
    """Serve ``source`` and send it ``queries`` test-split queries; ``kill=(instance, after)`` crashes that
    instance once ``after`` answers are in (SIGKILL of its process; it is started again).

    ``backend="remote"`` reaches the instances as model servers over the Open Inference Protocol: those of
    ``endpoints`` (a cluster file's; a kill is then the frontend's own, as no process here is theirs), else a
    `parm instance` server per instance started here, whose process the kill crashes and starts again."""
    source = Path(source)
    dataset = open_run(source).base.dataset()
    order = np.random.default_rng(seed).permutation(len(dataset.test))[:queries]
    inputs = dataset.preprocess(dataset.test.x[order]).numpy()
    targets = dataset.test.y[order]
    if endpoints is not None:
        options = replace(options, pool_sizes=pool_sizes(endpoints))
    deployment = build_deployment(source, options)
    done, answered, lock = threading.Event(), [0], threading.Lock()
    clients = threading.local()
    bar = tqdm(total=len(inputs), desc=f"replay {options.mode}", unit="query", disable=not progress)

    def send(x: np.ndarray) -> tuple[np.ndarray, str]:
        if not hasattr(clients, "client"):
            clients.client = triton.InferenceServerClient(served.address)
        tensor = triton.InferInput(INPUT_NAME, [1, *x.shape], "FP32")
        tensor.set_data_from_numpy(x[None])
        result = clients.client.infer(deployment.model.name, [tensor])
        with lock:
            answered[0] += 1
            bar.update()
            if kill is not None and answered[0] == kill[1]:
                done.set()
        return result.as_numpy(OUTPUT_NAME)[0], result.get_response()["parameters"]["answer"]

    if backend not in ("local", "remote"):
        raise ValueError(f"replay runs --backend local or remote, got {backend!r}")
    with contextlib.ExitStack() as stack:
        servers = None
        if backend == "remote" and endpoints is None:
            servers = stack.enter_context(
                InstanceServers(source, deployment.pools, noop=options.noop, engine=options.engine))
            endpoints = servers.endpoints()
        remote = build_backend("remote", endpoints=endpoints) if backend == "remote" else None
        served = stack.enter_context(serve_locally(deployment, backend=remote))
        pool = stack.enter_context(ThreadPoolExecutor(concurrency))
        futures = [pool.submit(send, x) for x in inputs]
        if kill is not None and done.wait(timeout=600):
            if servers is not None:  # a crashed machine: its server process dies, and is started again
                servers.kill(kill[0])
                servers.restart(kill[0])
            else:
                served.kill(kill[0])
        results = [future.result() for future in futures]
        if kill is not None:  # the load may end before the crashed instance is back: its return is part of the report
            served.await_recoveries(1, RECOVERY_TIMEOUT_S)
        failures, recoveries = served.instance_failures(), served.instance_recoveries()
        coordinator = served.frontend.coordinator
        wrong = dict(coordinator.wrong_outputs) if coordinator.verifying else None
    bar.close()
    report = _report(source, options, results, targets, dataset.task, kill, failures, recoveries, backend)
    return replace(report, wrong_outputs=wrong)


def _report(source: Path, options: ServeOptions, results: list[tuple[np.ndarray, str]], targets: torch.Tensor,
            task: str, kill: tuple[int, int] | None, failures: int, recoveries: int, backend: str) -> ReplayReport:
    outputs = torch.from_numpy(np.stack([r[0] for r in results]))
    kinds = np.array([r[1] for r in results])
    counts = {kind: int((kinds == kind).sum()) for kind in ANSWER_KINDS}
    per_query = get_task(task).per_sample(outputs, targets).numpy()  # each answer's headline measure, in one call
    accuracy = {kind: float(per_query[kinds == kind].mean()) if counts[kind] else None for kind in ANSWER_KINDS}
    evaluation = source / "evaluation" / "evaluation.json"  # written by `parm evaluate`
    offline = json.loads(evaluation.read_text())[0] if evaluation.is_file() else None
    settings = {k: v for k, v in asdict(options).items() if k not in ("delays", "wrong", "pool_sizes")}
    return ReplayReport(str(source), options.mode, len(targets), len(results), counts, accuracy,
                        kill[0] if kill else None, failures, offline and offline["degraded_accuracy"],
                        settings | {"delays": dict(options.delays), "wrong": dict(options.wrong), "backend": backend},
                        recoveries, offline_one_lost_accuracy=offline and offline["by_lost"][0]["accuracy"], task=task)

