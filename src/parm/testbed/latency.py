"""`parm bench latency` on the testbed: the scenario's instances as `parm instance` servers on its hosts.

The same measurement as on loopback (`parm.bench.latency`: the frontend here, the same seeded arrivals from a
separate load-generator process, every mode in turn), with the cluster made of hosts: instance i is a process
on host i mod hosts, reached through the remote backend over that host's shaped link, and the scenario's
shuffles are threads that move 128-256 MB between random pairs of hosts and back through their links. No
slowdown factor: an instance is slow only because its link or its CPU is busy. Service times are emulated
from the scenario's profile (each answer held to a drawn time) on top of the model's real compute. Faults are
real too (`OnHosts`): a SIGKILLed server process, an unplugged link.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from parm.bench.cluster import InstanceServers
from parm.bench.harness import Served, serve_locally
from parm.bench.latency import bench_latency
from parm.bench.report import LatencyRun
from parm.bench.scenario import Scenario
from parm.serving.backends.remote import RemoteBackend
from parm.serving.runtime.deployment import Deployment
from parm.testbed import sandbox
from parm.testbed.network import Testbed
from parm.workload.faults import Fault
from parm.workload.links import TestbedPlan
from parm.workload.shuffle_traffic import RealShuffles

SHUFFLE_PORT = 7000


def bench_on_testbed(scenario: Scenario, *, progress: bool = True,
                     on_run: Callable[[list[LatencyRun]], None] | None = None) -> list[LatencyRun]:
    """Build the scenario's testbed, measure every variant x mode on it, tear it down (inside the sandbox)."""
    if scenario.testbed is None:
        raise ValueError("the scenario has no testbed: section; run it with `parm bench latency` on loopback")
    sandbox.prepare()
    testbed = Testbed(scenario.testbed.hosts, scenario.testbed.link)
    testbed.up()
    agents = []
    try:
        agents = [start_agent(testbed, host) for host in range(testbed.hosts)]
        return bench_latency(scenario, progress=progress, serving=partial(serve_on, testbed), on_run=on_run)
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


@dataclass(frozen=True)
class OnHosts(Served):
    """A deployment served with its instances on the testbed's hosts, where faults happen for real: a crash
    SIGKILLs the instance's server process (a crash-restart starts it again at once: it is back once it has
    loaded its model), a link-down unplugs its host's link for ``restart_s``."""

    servers: InstanceServers
    testbed: Testbed
    plan: TestbedPlan

    def inject(self, fault: Fault, instance: int, after_s: float) -> None:
        _timer(after_s, self._strike, fault, instance)

    def _strike(self, fault: Fault, instance: int) -> None:
        if fault.kind == "link-down":
            host = self.plan.host_of(instance)
            self.testbed.set_link(host, up=False)
            _timer(fault.restart_s, self.testbed.set_link, host, True)
            return
        self.servers.kill(instance)
        if fault.kind == "crash-restart":
            self.servers.restart(instance)


def _timer(after_s: float, action: Callable[..., None], *args: object) -> None:
    """``action(*args)`` on a timer thread ``after_s`` from now: the fault comes from outside the frontend."""
    timer = threading.Timer(after_s, action, args)
    timer.daemon = True
    timer.start()


@contextlib.contextmanager
def serve_on(testbed: Testbed, deployment: Deployment, scenario: Scenario, source: Path,
             noop: bool) -> Iterator[tuple[Served, contextlib.AbstractContextManager]]:
    """``deployment`` served here with its instances on the hosts (a `parm.bench.latency.Serving`)."""
    plan = scenario.testbed
    testbed.shape(plan.link)  # this variant's links (a link sweep varies them)
    emulations = {spec.id: spec.emulation for spec in deployment.instances if spec.emulation is not None}
    with InstanceServers(source, deployment.pools, noop=noop, emulations=emulations, engine=scenario.engine,
                         placement=lambda i: (testbed.exec(plan.host_of(i), []), testbed.address(plan.host_of(i)))
                         ) as servers:
        endpoints = servers.endpoints()
        with serve_locally(deployment, backend=RemoteBackend(endpoints, record_calls=True),
                           max_pending=1 << 20) as served:
            on_hosts = OnHosts(served.address, served.frontend, served.backend, servers, testbed, plan)
            yield on_hosts, shuffles_between_hosts(testbed, scenario) if scenario.shuffles.count else \
                contextlib.nullcontext()
