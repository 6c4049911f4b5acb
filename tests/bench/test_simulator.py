"""The simulator: its arrivals, a queue with a closed-form answer, shuffle slowdowns, faults and hedging."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from parm.bench.report import KIND_CODES
from parm.bench.scenario import Fault, Scenario
from parm.bench.simulator import arrival_times, draw_shuffles, simulate
from parm.cli import simulate as simulate_command
from parm.serving.core.coordinator import DEFAULT, ORIGINAL, RECONSTRUCTED
from parm.workload.service_time import ServiceTime
from parm.workload.shuffles import ShuffleConfig

CONSTANT = ServiceTime("constant", mean_s=0.002)
PROFILE = ServiceTime("profile", {1: ((0.0, 0.5, 1.0), (0.0015, 0.002, 0.0035)),
                                  4: ((0.0, 1.0), (0.002, 0.004))})


def small(**changes: object) -> Scenario:
    """A 4-instance cluster under moderate load, with shuffles slowing some calls."""
    base = Scenario(base_instances=4, rate=600, queries=4000, warmup=200, service=PROFILE,
                    shuffles=ShuffleConfig(count=2, min_mb=5, max_mb=20, slowdown=5.0))
    return replace(base, **changes)


def test_arrivals_are_poisson_at_the_rate() -> None:
    rate, count = 500.0, 100_000
    arrivals = arrival_times(rate, count, seed=3)
    gaps = np.diff(arrivals, prepend=0.0)
    assert count / arrivals[-1] == pytest.approx(rate, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)  # exponential: coefficient of variation 1
    ordered = np.sort(gaps)
    ks = np.max(np.abs(np.arange(1, count + 1) / count - (1 - np.exp(-rate * ordered))))
    assert ks < 1.63 / math.sqrt(count)  # the Kolmogorov-Smirnov test would not reject at the 1% level
    assert np.array_equal(arrivals, arrival_times(rate, count, seed=3))


def erlang_c_latency(servers: int, rate: float, mean_service: float) -> float:
    """Mean time in an M/M/c queue: service plus the Erlang C mean wait."""
    load = rate * mean_service
    top = load**servers / math.factorial(servers) / (1 - load / servers)
    waiting = top / (sum(load**n / math.factorial(n) for n in range(servers)) + top)
    return mean_service + waiting / (servers / mean_service - rate)


@pytest.mark.parametrize("servers", [1, 4])
def test_mode_none_is_an_m_m_c_queue(servers: int) -> None:
    mean_service = 0.01
    rate = 0.7 * servers / mean_service
    scenario = Scenario(base_instances=servers, modes=("none",), rate=rate, queries=200_000, warmup=2000,
                        service=ServiceTime("exponential", mean_s=mean_service))
    result = simulate(scenario, "none")
    expected = erlang_c_latency(servers, rate, mean_service)
    assert result.latencies.size == 200_000 and (result.answers == KIND_CODES[ORIGINAL]).all()
    assert result.latencies.mean() == pytest.approx(expected, rel=0.03)  # about two standard errors


def test_idle_instances_answer_in_the_service_time_plus_the_frontend_cost() -> None:
    scenario = Scenario(base_instances=50, rate=100, queries=2000, warmup=100, service=CONSTANT,
                        frontend=ServiceTime("constant", mean_s=0.0006))
    result = simulate(scenario, "none", label="light")
    assert result.label == "light" and result.latencies.size == 2000
    assert result.latencies == pytest.approx(np.full(2000, 0.0026), abs=1e-12)


def test_calls_starting_in_a_shuffle_take_slowdown_times_longer_and_nothing_else_changes() -> None:
    """One live instance (two fail at once, but still count for the shuffles): a FIFO single server by hand."""
    shuffles = ShuffleConfig(count=1, min_mb=100, max_mb=300, slowdown=3.0)
    scenario = Scenario(base_instances=3, rate=20, queries=3000, warmup=0, service=CONSTANT, shuffles=shuffles,
                        faults=(Fault("fail-stop", instance=1, at_s=0.0), Fault("fail-stop", instance=2, at_s=0.0)))
    result = simulate(scenario, "none")
    arrivals = arrival_times(scenario.rate, 3000, scenario.seed)
    schedule = draw_shuffles(scenario, 3, arrivals[-1] + 10)
    expected, free = [], 0.0
    for arrival in arrivals:
        start = max(arrival, free)
        free = start + 0.002 * schedule.factor(0, start)
        expected.append(free - arrival)
    assert result.latencies == pytest.approx(np.array(expected), rel=1e-9)
    slowed = np.isclose(result.latencies, 0.006)
    assert 0.2 < slowed.mean() < 0.9 and np.isclose(result.latencies, 0.002).sum() > 300


def test_no_shuffles_or_no_slowdown_is_the_run_without_shuffles() -> None:
    quiet = simulate(small(shuffles=ShuffleConfig(count=0)), "parm")
    for shuffles in (ShuffleConfig(count=0, slowdown=5.0), ShuffleConfig(count=4, slowdown=1.0)):
        same = simulate(small(shuffles=shuffles), "parm")
        assert np.array_equal(same.latencies, quiet.latencies) and np.array_equal(same.answers, quiet.answers)
    slowed = simulate(small(), "parm")
    assert slowed.latencies.mean() > quiet.latencies.mean()


def test_runs_are_deterministic_and_drop_the_warm_up() -> None:
    first, second = simulate(small(), "parm"), simulate(small(), "parm")
    assert first.latencies.size == 4000 and first.metadata["answers"] == 4200
    assert np.array_equal(first.latencies, second.latencies) and np.array_equal(first.answers, second.answers)


def assert_answered_once(result, scenario: Scenario) -> None:
    assert result.metadata["answers"] == scenario.warmup + scenario.queries
    assert result.latencies.size == scenario.queries and np.isfinite(result.latencies).all()


def test_parm_answers_every_query_once_when_a_base_instance_fails_for_good() -> None:
    scenario = small(faults=(Fault("fail-stop", instance=0, at_s=2.0),))
    result = simulate(scenario, "parm")
    assert_answered_once(result, scenario)
    assert result.metadata["failures"] == 1
    assert result.shares()[RECONSTRUCTED] > 0.05 and result.shares()[DEFAULT] == 0


def test_crashed_instances_restart_and_random_faults_strike() -> None:
    scenario = small(faults=(Fault("crash-restart", instance=1, at_s=1.0, restart_s=0.5),
                             Fault("crash-restart", rate_per_s=2.0, restart_s=0.2)))
    for mode in ("parm", "equal-resources"):
        result = simulate(scenario, mode)
        assert_answered_once(result, scenario)
        assert result.metadata["failures"] > 5


def test_a_query_nobody_can_serve_gets_its_default_or_an_error() -> None:
    dead = small(base_instances=1, faults=(Fault("fail-stop", instance=0, at_s=1.0),))
    with pytest.raises(ValueError, match="never answered"):
        simulate(dead, "none")
    result = simulate(replace(dead, deadline_ms=50), "none")
    assert_answered_once(result, dead)
    assert result.shares()[DEFAULT] > 0.5 and result.latencies.max() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="fault on instance 7, but this mode runs instances 0..5"):
        simulate(small(faults=(Fault("fail-stop", instance=7, at_s=1.0),)), "parm")


def test_hedged_mode_sends_backups() -> None:
    scenario = small(hedge_after_ms=2.5)
    hedged, plain = simulate(scenario, "hedged"), simulate(scenario, "equal-resources")
    assert_answered_once(hedged, scenario)
    assert hedged.metadata["tasks"] > plain.metadata["tasks"] == 4200
    assert np.percentile(hedged.latencies, 99) < np.percentile(plain.latencies, 99)


def test_batches_of_several_queries() -> None:
    scenario = small(batch_size=4, rate=3000)
    result = simulate(scenario, "parm")
    assert_answered_once(result, scenario)
    assert result.metadata["tasks"] > result.metadata["calls"]
    assert set(np.unique(result.answers)) <= {KIND_CODES[ORIGINAL], KIND_CODES[RECONSTRUCTED]}


def test_the_command_runs_every_variant_and_mode_and_writes_the_report(tmp_path: Path, capsys) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("name: tiny\nmodes: [parm, none]\nqueries: 300\nwarmup: 20\nsweep: {rate: [100, 200]}\n")
    parser = argparse.ArgumentParser()
    simulate_command.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", str(config), "--base-instances", "6", "--out", str(tmp_path / "out"),
                              "--no-progress"])
    assert args.run(args) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert [(row["variant"], row["mode"], row["count"]) for row in rows] == [
        ("rate=100", "parm", 300), ("rate=100", "none", 300), ("rate=200", "parm", 300), ("rate=200", "none", 300)]
    assert (tmp_path / "out" / "latency_vs_rate.png").exists()
    printed = capsys.readouterr().out
    assert "| rate=200 | none | 300 |" in printed and "6 base instances" in printed
    assert f"results written to {tmp_path / 'out'}/" in printed


def test_verify_waits_for_every_output_of_a_group_and_a_byzantine_instance_fails_nothing() -> None:
    """Simulated verification costs its wait for the group's slowest output; a wrong instance is no failure."""
    base = small(r=2, shuffles=ShuffleConfig(count=0), modes=("parm",))
    plain = simulate(base, "parm")
    checked = simulate(replace(base, verify=0.05, faults=(Fault("byzantine", instance=0, at_s=0.0),)), "parm")
    assert checked.metadata["failures"] == 0 and not np.isnan(checked.latencies).any()
    assert np.median(checked.latencies) > np.median(plain.latencies)
    assert checked.shares()["reconstructed"] == 0.0  # no values in a simulation: every group checks out
