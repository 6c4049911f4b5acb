"""`parm bench latency` on the testbed: the scenario's instances as `parm instance` servers on its hosts.

The same measurement as on loopback (`parm.bench.latency`: the frontend here, the same seeded arrivals from a
separate load-generator process, every mode in turn), with the cluster made of hosts: instance i is a process
on host i mod hosts, reached through the remote backend over that host's shaped link, and the scenario's
shuffles are threads that move 128-256 MB between random pairs of hosts and back through their links. No
slowdown factor: an instance is slow only because its link or its CPU is busy. Service times are emulated
from the scenario's profile (each answer held to a drawn time) on top of the model's real compute.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from parm.bench.cluster import InstanceServers
from parm.bench.harness import Served, serve_locally
from parm.bench.latency import bench_latency
from parm.bench.report import LatencyRun
from parm.bench.scenario import Scenario
from parm.runs import CoderRun, open_run
from parm.serving.backends.remote import RemoteBackend
from parm.serving.runtime.deployment import Deployment
from parm.testbed import sandbox
from parm.testbed.network import Testbed
from parm.workload.shuffle_traffic import RealShuffles

SHUFFLE_PORT = 7000


def bench_on_testbed(scenario: Scenario, *, progress: bool = True) -> list[LatencyRun]:
    """Build the scenario's testbed, measure every variant x mode on it, tear it down (inside the sandbox)."""
    if scenario.testbed is None:
        raise ValueError("the scenario has no testbed: section; run it with `parm bench latency` on loopback")
    sandbox.prepare()
    testbed = Testbed(scenario.testbed.hosts, scenario.testbed.link)
    testbed.up()
    agents = []
    try:
        agents = [start_agent(testbed, host) for host in range(testbed.hosts)]
        return bench_latency(scenario, progress=progress, serving=partial(serve_on, testbed))
    finally:
        for agent in agents:
            agent.kill()
            agent.wait()
        testbed.down()


def start_agent(testbed: Testbed, host: int) -> subprocess.Popen:
    """``host``'s shuffle endpoint, waited for on its ``ready`` line."""
    command = testbed.exec(host, [sys.executable, "-m", "parm.workload.shuffle_traffic", "--host",
                                  testbed.address(host), "--port", str(SHUFFLE_PORT)])
    agent = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    if not agent.stdout.readline().startswith("ready"):  # type: ignore[union-attr]
        raise RuntimeError(f"the shuffle endpoint of host {host} did not start")
    return agent


def shuffles_between_hosts(testbed: Testbed, scenario: Scenario) -> RealShuffles:
    return RealShuffles(scenario.shuffles, list(range(testbed.hosts)), lambda _: SHUFFLE_PORT, seed=scenario.seed,
                        host_of=testbed.address)


@contextlib.contextmanager
def serve_on(testbed: Testbed, deployment: Deployment, scenario: Scenario, source: Path,
             noop: bool) -> Iterator[tuple[Served, contextlib.AbstractContextManager]]:
    """``deployment`` served here with its instances on the hosts (a `parm.bench.latency.Serving`)."""
    plan = scenario.testbed
    emulations = {spec.id: spec.emulation for spec in deployment.instances if spec.emulation is not None}
    run = open_run(source)
    card = run.base.card()
    with InstanceServers(source, deployment.pools, noop=noop, emulations=emulations,
                         placement=lambda i: (testbed.exec(plan.host_of(i), []), testbed.address(plan.host_of(i)))
                         ) as servers:
        endpoints = servers.endpoints(f"{card.dataset}-{card.model}", runs_base=isinstance(run, CoderRun))
        with serve_locally(deployment, backend=RemoteBackend(endpoints), max_pending=1 << 20) as served:
            yield served, shuffles_between_hosts(testbed, scenario) if scenario.shuffles.count else \
                contextlib.nullcontext()
