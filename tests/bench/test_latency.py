"""`parm bench latency` on loopback: every run handed on as it ends, so that a failing run loses only itself."""

from __future__ import annotations

import contextlib
import dataclasses
import os

import pytest

from parm.bench.latency import bench_latency, local_serving
from parm.bench.scenario import Scenario
from parm.workload.service_time import ServiceTime

pytestmark = pytest.mark.slow
TINY = Scenario(name="tiny", base_instances=2, modes=("parm", "none"), rate=200, queries=60, warmup=10,
                service=ServiceTime("constant", mean_s=0.002), instance_processes=1)


def test_each_run_is_handed_on_as_it_ends_and_a_failing_run_loses_only_itself() -> None:
    seen: list[list] = []
    calls = []

    @contextlib.contextmanager
    def failing_second(deployment, scenario, source, noop):
        calls.append(deployment.mode)
        if len(calls) == 2:
            raise RuntimeError("the second run's servers did not start")
        with local_serving(deployment, scenario, source, noop) as served:
            yield served

    with pytest.raises(RuntimeError, match="second run"):
        bench_latency(TINY, progress=False, serving=failing_second, on_run=lambda runs: seen.append(list(runs)))
    assert [[run.mode for run in runs] for runs in seen] == [["parm"]]
    assert len(seen[0][0].latencies) == 60 and seen[0][0].metadata["failed_requests"] == 0
    cpu = seen[0][0].metadata["machine_cpu"]  # the cores' time over the load, by kind
    assert 0 < cpu["busy"] <= 1 and cpu["busy"] == pytest.approx(1 - cpu["idle"] - cpu["iowait"], abs=1e-3)
    assert set(seen[0][0].metadata["machine_speed"]) == {"python_ns", "copy_us", "syscall_us", "torch_cpu"}
    assert isinstance(seen[0][0].metadata["latency_drift"], float)  # how fast latency grew over the run


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning the frontend apart needs at least two cores")
def test_a_run_with_frontend_cores_pins_the_frontend_and_says_where_everything_ran() -> None:
    cores = sorted(os.sched_getaffinity(0))
    scenario = dataclasses.replace(TINY, modes=("parm",), frontend_cores=(cores[-1],))
    (run,) = bench_latency(scenario, progress=False)
    assert len(run.latencies) == 60 and run.metadata["failed_requests"] == 0
    assert run.metadata["placement"] == {"frontend": [cores[-1]], "rest": cores[:-1]}
    assert os.sched_getaffinity(0) == set(cores)  # given back after the run
