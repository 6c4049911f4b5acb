"""`parm testbed check`: build a small testbed, measure its links, serve queries through it, tear it down.

What it shows, in one JSON report: that the hosts' links run at the rate they were given (one bulk transfer
between two hosts, timed), that a coded frontend answers every query through the remote backend while
shuffles load the links (instance servers on the hosts, no-op models), and that tear-down leaves nothing.
Runs inside the sandbox (`parm.testbed.sandbox`); the CLI puts it there.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import tritonclient.http as triton

from parm.bench.placeholder import placeholder_run
from parm.bench.scenario import Scenario
from parm.serving import ServeOptions, build_deployment
from parm.testbed import sandbox
from parm.testbed.latency import SHUFFLE_PORT, serve_on, start_agent
from parm.testbed.network import Testbed
from parm.workload.links import LinkSpec, TestbedPlan
from parm.workload.shuffles import ShuffleConfig

TRANSFER_MB = 16


@dataclass(frozen=True)
class CheckOptions:
    hosts: int = 3
    link: LinkSpec = LinkSpec(rate_mbit=200.0)
    queries: int = 200
    shuffles: int = 2


def run_check(options: CheckOptions) -> dict:
    """Build, measure, serve, tear down; the report."""
    sandbox.prepare()
    testbed = Testbed(options.hosts, options.link)
    testbed.up()
    agents: list[subprocess.Popen] = []
    try:
        agents = [start_agent(testbed, host) for host in range(options.hosts)]
        transfer = _timed_push(testbed, 0, 1, TRANSFER_MB)
        serving = _serve_through(testbed, options)
    finally:
        for agent in agents:
            agent.kill()
            agent.wait()
        testbed.down()
    return {"hosts": options.hosts, "link": vars(options.link), "transfer": transfer, "serving": serving,
            "left_after_down": testbed.leftovers()}


def _timed_push(testbed: Testbed, source: int, target: int, megabytes: int) -> dict:
    """``megabytes`` from ``source`` to ``target`` and back, timed: each link carries them once each way."""
    start = time.perf_counter()
    with socket.create_connection((testbed.address(source), SHUFFLE_PORT)) as control:
        control.sendall(b"PUSH %s %d %d\n" % (testbed.address(target).encode(), SHUFFLE_PORT, megabytes * 2**20))
        if control.makefile("rb").readline().strip() != b"DONE":
            raise RuntimeError("the timed transfer did not finish")
    seconds = time.perf_counter() - start
    return {"megabytes": megabytes, "seconds": seconds, "mbit_per_s": megabytes * 2**20 * 8 / 1e6 / seconds}


def _serve_through(testbed: Testbed, options: CheckOptions) -> dict:
    """A coded frontend here, one no-op `parm instance` per host, queries from 8 clients while shuffles run."""
    scenario = Scenario(base_instances=2, testbed=TestbedPlan(options.hosts, options.link),
                        shuffles=ShuffleConfig(count=options.shuffles, min_mb=128, max_mb=256, mode="real"))
    with tempfile.TemporaryDirectory(prefix="parm-testbed-check-") as tmp:
        run = placeholder_run(tmp)
        deployment = build_deployment(run, ServeOptions(instances=scenario.base_instances, noop=True))
        with serve_on(testbed, deployment, scenario, run, True) as (served, shuffles), shuffles:
            kinds, seconds = _send(served.address, deployment.model.name, options.queries)
            endpoints = [e.url for e in served.backend.endpoints]
        moved = shuffles.moved_mb
    counts = {kind: kinds.count(kind) for kind in sorted(set(kinds))}
    return {"queries": options.queries, "answered": len(kinds), "answers": counts,
            "p50_ms": float(np.percentile(seconds, 50) * 1e3), "p99_ms": float(np.percentile(seconds, 99) * 1e3),
            "shuffled_mb": moved, "endpoints": endpoints}


def _send(address: str, model: str, queries: int) -> tuple[list[str], list[float]]:
    x = np.zeros((1, 1, 28, 28), np.float32)

    def one(_: int) -> tuple[str, float]:
        client = triton.InferenceServerClient(address)
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        start = time.perf_counter()
        answer = client.infer(model, [tensor]).get_response()["parameters"]["answer"]
        return answer, time.perf_counter() - start

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(queries)))
    return [kind for kind, _ in results], [s for _, s in results]
