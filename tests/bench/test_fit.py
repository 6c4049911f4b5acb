"""The simulator's testbed model: which calls a shuffle touched, the laws learned, and a simulation drawing from them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from parm.bench.fit import (SEED_OFFSET, RunTrace, fit_profile, fitted_scenario, load_traces, save_traces,
                            shared_level, touched)
from parm.bench.report import AT_FRONTEND
from parm.bench.scenario import Scenario, ScenarioError
from parm.bench.simulator import simulate
from parm.workload.emulation import CallDelay, InstanceClock
from parm.workload.links import LinkSpec, TestbedPlan
from parm.workload.service_time import ServiceTime
from parm.workload.shuffles import ShuffleConfig, ShuffleSchedule

CONSTANT = ServiceTime("constant", mean_s=0.002)
TESTBED = Scenario(base_instances=2, modes=("parm", "none"), rate=100, queries=900, warmup=100, service=CONSTANT,
                   shuffles=ShuffleConfig(count=1, min_mb=16, max_mb=32, mode="real"),
                   testbed=TestbedPlan(hosts=4, link=LinkSpec(rate_mbit=200)))


def test_a_call_is_touched_while_a_transfer_to_or_from_its_host_runs() -> None:
    transfers = np.array([[1.0, 2.0, 0, 1, 64.0], [1.5, 3.0, 2, 3, 64.0]])
    starts = np.array([0.5, 1.0, 1.99, 2.0, 1.6, 2.5, 3.0, 1.7])
    hosts = np.array([0, 0, 1, 1, 3, 2, 2, 1])
    assert touched(starts, hosts, transfers, chunk=3).tolist() == [False, True, True, False, True, True, False, True]
    assert not touched(starts, hosts, np.zeros((0, 5))).any()


def synthetic_trace(rng: np.random.Generator, idle_ms: float, busy_ms: float, overhead_ms: float) -> RunTrace:
    """Calls on hosts 0-3 over 10 s, each taking 2 ms plus ``busy_ms`` while host 0 or 1 is in a transfer (1-6 s),
    else ``idle_ms``; every query's client latency is its frontend latency plus ``overhead_ms``."""
    starts = np.sort(rng.uniform(0, 10, 4000))
    instances = rng.integers(0, 4, 4000)
    busy = (starts >= 1) & (starts < 6) & (instances < 2)
    seconds = 0.002 + np.where(busy, busy_ms, idle_ms) / 1000
    frontend = rng.uniform(0.003, 0.01, 1000)
    return RunTrace(frontend + overhead_ms / 1000, frontend, np.column_stack([starts, seconds, instances]),
                    np.array([[1.0, 6.0, 0, 1, 500.0]]))


def test_the_fit_learns_each_modes_delays_the_client_cost_and_the_goodput() -> None:
    rng = np.random.default_rng(0)
    profile = fit_profile(TESTBED, {"parm": [synthetic_trace(rng, 1.0, 1.0, 0.5)],
                                    "none": [synthetic_trace(rng, 0.25, 0.25, 0.125)]})
    parm, none = profile["modes"]["parm"], profile["modes"]["none"]
    for entry, delay, overhead in ((parm, 1.0, 0.5), (none, 0.25, 0.125)):
        # every call delayed alike: all of it is the shared level, nothing is a call's own
        assert entry["call_delay"]["episodes_ms"] == pytest.approx([delay] * len(entry["call_delay"]["episodes_ms"]))
        for kind in ("idle", "busy"):
            assert max(map(abs, entry["call_delay"][kind]["quantiles_ms"].values())) == pytest.approx(0, abs=1e-9)
        assert entry["batches"]["1"]["quantiles_ms"]["0.999"] == pytest.approx(overhead)
        # half the hosts, half the time, after the warm-up's tenth of the calls (the first second: none busy)
        assert entry["busy_share"] == pytest.approx(0.25 / 0.9, abs=0.02)
    assert profile["shuffle_mb_s"] == pytest.approx(100.0) and profile["hosts"] == 4
    assert profile["batches"] == none["batches"]


def test_a_stall_is_learned_as_a_shared_episode_and_a_slow_host_as_its_calls_own_delay() -> None:
    starts = np.arange(0, 10, 0.002)  # a call every 2 ms
    delays = np.where((starts >= 3) & (starts < 3.2), 0.05, 0.001)  # everything stalls 50 ms for 200 ms
    level, at_call = shared_level(starts, delays)
    assert level[int(3.05 / 0.005)] == pytest.approx(0.05) and level[int(5 / 0.005)] == pytest.approx(0.001)
    assert np.isclose(level, 0.05).sum() == pytest.approx(200 / 5, abs=2)
    slow_host = delays + np.where(np.arange(len(starts)) % 4 == 0, 0.004, 0.0)  # one call in four: 4 ms more
    level, at_call = shared_level(starts, slow_host)
    assert np.median(level) == pytest.approx(0.001) and np.median((slow_host - at_call)[::4]) == pytest.approx(0.004)


def test_a_fit_needs_a_testbed_scenario_with_a_constant_service_time() -> None:
    with pytest.raises(ScenarioError, match="constant service time"):
        fit_profile(replace(TESTBED, service=ServiceTime("exponential", mean_s=0.002)), {})
    with pytest.raises(ScenarioError, match="constant service time"):
        fit_profile(replace(TESTBED, testbed=None, shuffles=ShuffleConfig(count=0)), {})


def test_an_instance_clock_adds_the_busy_delay_while_its_host_is_touched_and_the_idle_one_otherwise() -> None:
    schedule = ShuffleSchedule((np.array([1.0]), np.zeros(0)), (np.array([2.0]), np.zeros(0)), slowdown=1.0)
    delay = CallDelay(ServiceTime("constant", mean_s=0.001), ServiceTime("constant", mean_s=0.004))
    clock = InstanceClock(CONSTANT, schedule, instance=5, seed=0, row=0, delay=delay)
    assert [clock.service_time(1, t) for t in (0.5, 1.5, 2.5)] == pytest.approx([0.003, 0.006, 0.003])
    other = InstanceClock(CONSTANT, schedule, instance=6, seed=0, row=1, delay=delay)
    assert other.service_time(1, 1.5) == pytest.approx(0.003)


def test_shared_episodes_delay_every_instance_at_once_and_are_laid_out_in_whole_blocks() -> None:
    episodes = tuple([0.0] * 100 + [0.02] * 100)  # 1 s of nothing, then 1 s of a 20 ms stall, every 5 ms
    none = ServiceTime("constant", mean_s=0.0)
    delay = CallDelay(none, none, episodes=episodes, step_s=0.005, block_s=1.0).arranged(np.random.default_rng(0), 10)
    assert len(delay.shared) >= 2000 and set(delay.shared) == {0.0, 0.02}
    windows = {tuple(episodes[start:start + 200]) for start in range(len(episodes) - 199)}
    assert all(tuple(block) in windows for block in np.array(delay.shared[:2000]).reshape(-1, 200).tolist())
    clocks = [InstanceClock(CONSTANT, ShuffleSchedule.none(2), i, 0, delay=delay) for i in range(2)]
    t = next(i * 0.005 for i, level in enumerate(delay.shared) if level == 0.02) + 0.001
    assert [clock.service_time(1, t) for clock in clocks] == pytest.approx([0.022, 0.022])


def test_a_fitted_simulation_draws_from_the_laws_with_streams_of_its_own() -> None:
    rng = np.random.default_rng(1)
    profile = fit_profile(TESTBED, {mode: [synthetic_trace(rng, 1.0, 1.0, 0.5)] for mode in ("parm", "none")})
    scenario = fitted_scenario(replace(TESTBED, shuffles=replace(TESTBED.shuffles, count=2)), profile)
    assert scenario.testbed is None and scenario.hosts == 4 and scenario.seed == TESTBED.seed + SEED_OFFSET
    assert scenario.shuffles.mode == "emulated" and scenario.shuffles.slowdown == 1.0
    assert scenario.shuffles.count == 2 and scenario.shuffles.bandwidth_mb_s == pytest.approx(100.0)
    run = simulate(scenario, "none")
    # 2 ms of service and 1 ms of delay on every call, at a load that rarely queues; the client adds 0.5 ms
    assert run.metadata[AT_FRONTEND]["p50"] == pytest.approx(3.0)
    assert np.median(run.latencies) * 1000 == pytest.approx(3.5)


def test_a_fitted_simulation_refuses_what_the_fit_cannot_know() -> None:
    rng = np.random.default_rng(2)
    profile = fit_profile(TESTBED, {"none": [synthetic_trace(rng, 1.0, 1.0, 0.5)]})
    with pytest.raises(ScenarioError, match="no laws for modes"):
        fitted_scenario(TESTBED, profile)
    with pytest.raises(ScenarioError, match="query_size"):
        fitted_scenario(replace(TESTBED, modes=("none",), query_size="paper"), profile)
    with pytest.raises(ScenarioError, match="link sweep"):
        fitted_scenario(replace(TESTBED, modes=("none",), sweep=("link", ({"rate_mbit": 100},))), profile)
    with pytest.raises(ScenarioError, match="testbed"):
        fitted_scenario(replace(TESTBED, modes=("none",), testbed=None, shuffles=ShuffleConfig(count=0)), profile)


def test_traces_round_trip_through_one_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    traces = {"equal-resources": [synthetic_trace(rng, 1.0, 2.0, 0.5), synthetic_trace(rng, 1.0, 2.0, 0.5)],
              "parm": [synthetic_trace(rng, 1.0, 2.0, 0.5)]}
    save_traces(traces, tmp_path / "trace.npz")
    loaded = load_traces(tmp_path / "trace.npz")
    assert list(loaded) == ["equal-resources", "parm"] and len(loaded["equal-resources"]) == 2
    for mode, runs in traces.items():
        for original, again in zip(runs, loaded[mode], strict=True):
            assert all(np.array_equal(getattr(original, name), getattr(again, name))
                       for name in ("client", "frontend", "calls", "transfers"))
