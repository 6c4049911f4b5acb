"""The frontend on cores of its own: its thread pinned there, every other thread and child process on the rest."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from parm.bench.placement import frontend_on_own_cores, split_cores

CORES = sorted(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(CORES) < 2, reason="pinning the frontend apart needs at least two usable cores")


@needs_two
def test_the_frontend_gets_its_cores_and_everything_else_the_rest_until_the_block_ends() -> None:
    release, started = threading.Event(), threading.Event()

    def frontend() -> None:
        started.set()
        release.wait()

    server = threading.Thread(target=frontend, name="parm-server", daemon=True)
    server.start()
    started.wait()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    before = os.sched_getaffinity(0)
    try:
        with frontend_on_own_cores([CORES[0]]) as placement:
            assert placement == {"frontend": [CORES[0]], "rest": CORES[1:]}
            assert os.sched_getaffinity(server.native_id) == {CORES[0]}
            assert os.sched_getaffinity(0) == set(CORES[1:])  # this thread, and what it starts from now on
            assert os.sched_getaffinity(child.pid) == set(CORES[1:])
        assert os.sched_getaffinity(0) == before and os.sched_getaffinity(server.native_id) == before
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        release.set()
        server.join(timeout=30)


def test_without_frontend_cores_nothing_moves() -> None:
    before = os.sched_getaffinity(0)
    with frontend_on_own_cores(None) as placement:
        assert placement is None and os.sched_getaffinity(0) == before


@pytest.mark.parametrize("cores", [[], [max(CORES) + 1], CORES])
def test_cores_that_leave_nothing_for_the_rest_or_are_not_ours_are_refused(cores: list[int]) -> None:
    with pytest.raises(ValueError, match="leaving at least one for everything else"):
        split_cores(cores)


@needs_two
def test_pinning_needs_the_frontend_served_in_this_process() -> None:
    with pytest.raises(RuntimeError, match="no thread named 'parm-server'"):
        with frontend_on_own_cores([CORES[0]]):
            pass


def test_frontend_cores_is_a_scenario_setting() -> None:
    from parm.bench.scenario import ScenarioError, scenario_from_dict

    assert scenario_from_dict({"frontend_cores": [0]}).frontend_cores == (0,)
    assert scenario_from_dict({}).frontend_cores is None
    for bad in ([], [-1], ["zero"], 0):
        with pytest.raises(ScenarioError, match="frontend_cores as a list of CPU numbers"):
            scenario_from_dict({"frontend_cores": bad})
