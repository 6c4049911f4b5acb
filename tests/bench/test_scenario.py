"""Scenario files: the standard one parses as documented, and broken ones say what to fix."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from parm.bench.scenario import ScenarioError, load_scenario
from parm.cli import main

STANDARD = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "standard.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_standard_scenario_parses() -> None:
    scenario = load_scenario(STANDARD)
    assert (scenario.name, scenario.base_instances, scenario.k, scenario.r) == ("standard", 12, 2, 1)
    assert scenario.modes == ("parm", "equal-resources", "none", "hedged")
    assert (scenario.rate, scenario.queries, scenario.warmup) == (270, 20_000, 1_000)
    for mode in scenario.modes:  # the calibration profile measured every mode
        assert scenario.frontend_for(mode).distribution == "profile" and 0 < scenario.frontend_for(mode).mean() < 0.01
    assert scenario.service.distribution == "profile" and 0.001 < scenario.service.mean() < 0.005
    assert (scenario.shuffles.count, scenario.shuffles.slowdown, scenario.shuffles.hit_probability) == (4, 3.5, 0.1)
    assert Path(scenario.model).is_absolute() and scenario.instance_processes == 1
    assert scenario.variants() == [("standard", scenario)]


def test_overrides_replace_values_and_none_keeps_the_file() -> None:
    scenario = load_scenario(STANDARD, queries=500, base_instances=None)
    assert (scenario.queries, scenario.base_instances) == (500, 12)


def test_sweep_variants_are_labelled_by_value(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "modes: [parm]\nshuffles: {count: 2, slowdown: 2}\n"
                                             "sweep: {shuffles: [0, 8]}\n"))
    variants = scenario.variants()
    assert [label for label, _ in variants] == ["shuffles=0", "shuffles=8"]
    assert [(v.shuffles.count, v.shuffles.slowdown, v.sweep) for _, v in variants] == [(0, 2, None), (8, 2, None)]


@pytest.mark.parametrize(("text", "message"), [
    ("rate: [1, 2\n", "not valid YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("rates: 100\n", "unknown settings ['rates']"),
    ("modes: [parm, fastest]\n", "unknown modes ['fastest']"),
    ("rate: 0\n", "need rate > 0"),
    ("sweep: {seed: [1, 2]}\n", "sweep must name one of"),
    ("sweep: {rate: 100}\n", "with a list of values"),
    ("service: {mean: 2}\n", "bad service settings"),
    ("service: {distribution: gamma}\n", "unknown service-time distribution 'gamma'"),
    ("service: {profile: missing.json}\n", "missing.json"),
    ("shuffles: {count: -1}\n", "bad shuffles settings"),
    ("faults: [{kind: fail-stop, at: 1}]\n", "bad faults settings"),
    ("faults: [{kind: fail-stop, at_s: 1, rate_per_s: 2}]\n", "exactly one of at_s"),
    ("faults: [{kind: meteor, at_s: 1}]\n", "fault kind 'meteor'"),
    ("instance_processes: 0\n", "instance_processes must be at least 1"),
    ("instance_processes: 1\nshuffles: {count: 2, mode: real}\n", "leave instance_processes out"),
    ("", "the scenario file is empty: see benchmarks/scenarios/standard.yaml"),
    ("# only comments\n", "the scenario file is empty"),
    ("cluster: {k: 0}\n", "need k >= 1 (a whole number), got 0"),
    ("cluster: {k: two}\n", "need k >= 1 (a whole number), got 'two'"),
    ("cluster: 5\n", "bad cluster settings: need a mapping, got 5"),
    ("workload: [1, 2]\n", "bad workload settings: need a mapping"),
    ("r: 0\n", "need r >= 1"),
    ("base_instances: 2.5\n", "need base_instances >= 1 (a whole number), got 2.5"),
    ("batch_size: 0\n", "need batch_size >= 1"),
    ("workload: {queries: 0}\n", "need queries >= 1"),
    ("workload: {warmup: -1}\n", "need warmup >= 0"),
    ("rate: fast\n", "need rate > 0 (a number), got 'fast'"),
    ("rate: .inf\n", "need rate > 0"),
    ("group_wait_ms: -1\n", "need group_wait_ms >= 0"),
    ("deadline_ms: 0\n", "need deadline_ms > 0 (a number, or null for no deadline)"),
    ("hedge_after_ms: soon\n", "need hedge_after_ms > 0"),
    ("seed: -1\n", "need seed >= 0"),
    ("repeats: 0\n", "need repeats >= 1"),
    ("k: yes\n", "need k >= 1 (a whole number), got True"),  # YAML 1.1: yes is a boolean
    ("modes: parm\n", "need modes as a list"),
    ("modes: []\n", "need at least one mode"),
    ("instance_processes: two\n", "instance_processes must be at least 1"),
    ("name: 2024\n", "need name as text"),
    ("model: 5\n", "need model as the path of a run folder"),
    ("sweep: {k: [2, zero]}\n", "bad sweep value: need k >= 1 (a whole number), got 'zero'"),
    ("sweep: {shuffles: [2, -1]}\n", "bad sweep value: need shuffles >= 0"),
    ("sweep: {rate: [0]}\n", "bad sweep value: need rate > 0"),
    ("sweep: {batch_size: []}\n", "sweep batch_size needs at least one value"),
    ("cluster: {batching: lazy}\n", "batching must be one of dynamic, fixed, got 'lazy'"),
    ("sweep: {batching: [fixed, 2]}\n", "bad sweep value: batching must be one of dynamic, fixed, got 2"),
    ("sweep: {batching: []}\n", "e.g. sweep: {batching: [dynamic, fixed]}"),
    ("engine: tensorrt\n", "engine must be one of torch, onnx"),
    ("sweep: {engine: [onnx, jax]}\n", "bad sweep value: engine must be one of torch, onnx, got 'jax'"),
    ("service: 2\n", "bad service settings: need a mapping, got 2"),
    ("frontend: constant\n", "bad frontend settings: need a mapping"),
    ("shuffles: many\n", "bad shuffles settings: need a mapping, got 'many'"),
    ("faults: {kind: fail-stop, at_s: 1}\n", "bad faults settings: need a list"),
    ("faults: [5]\n", "bad faults settings: need a mapping, got 5"),
])
def test_bad_files_raise_a_scenario_error_that_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert message in str(caught.value)


def test_valid_edge_values_are_accepted(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "cluster: {k: 1, group_wait_ms: 0}\nworkload: {warmup: 0, rate: 0.5}\n"
                                             "deadline_ms: null\nshuffles: 3\nfaults: null\n"))
    assert (scenario.k, scenario.group_wait_ms, scenario.warmup, scenario.rate) == (1, 0, 0, 0.5)
    assert (scenario.deadline_ms, scenario.shuffles.count, scenario.faults) == (None, 3, ())


def test_overrides_are_checked_like_the_file() -> None:
    with pytest.raises(ScenarioError, match="need queries >= 1"):
        load_scenario(STANDARD, queries=0)
    with pytest.raises(ScenarioError, match="need base_instances >= 1"):
        replace(load_scenario(STANDARD), base_instances=0)


def test_simulate_on_a_bad_file_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["simulate", str(write(tmp_path, "cluster: {k: 0}\n")), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "parm simulate: error: need k >= 1 (a whole number), got 0: e.g. k: 2\n"
    assert captured.out == ""


def test_a_missing_file_points_at_the_examples(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="benchmarks/scenarios"):
        load_scenario(tmp_path / "nope.yaml")


def test_a_frontend_profile_measured_per_mode_gives_each_mode_its_own_cost(tmp_path) -> None:
    def entry(ms: float) -> dict:
        return {"batches": {"1": {"quantiles_ms": {"0.0": ms, "1.0": ms}}}}

    profile = {"batches": entry(1.0)["batches"], "modes": {"none": entry(1.0), "parm": entry(3.0)}}
    (tmp_path / "frontend.json").write_text(json.dumps(profile))
    path = write(tmp_path, "frontend: {profile: frontend.json}\n")
    scenario = load_scenario(path)
    assert scenario.frontend_for("parm").mean() == pytest.approx(0.003)
    assert scenario.frontend_for("none").mean() == pytest.approx(0.001)
    assert scenario.frontend_for("hedged").mean() == pytest.approx(0.001)  # not measured: the top-level law


def test_a_testbed_section_is_read_and_its_shuffles_must_be_real() -> None:
    from parm.bench.scenario import scenario_from_dict

    scenario = scenario_from_dict({"testbed": {"hosts": 6, "link": {"rate_mbit": 1000, "qdisc": "tbf", "limit": 50}},
                                   "shuffles": {"count": 4, "mode": "real"}})
    assert scenario.testbed.hosts == 6 and scenario.testbed.link.qdisc == "tbf"
    assert [scenario.testbed.host_of(i) for i in (0, 5, 6, 13)] == [0, 5, 0, 1]
    with pytest.raises(ScenarioError, match="no emulated slowdown.*mode: real"):
        scenario_from_dict({"testbed": {"hosts": 6}, "shuffles": {"count": 4}})
    with pytest.raises(ScenarioError, match="unknown testbed settings"):
        scenario_from_dict({"testbed": {"hosts": 6, "rate": 1}})
    with pytest.raises(ScenarioError, match="2 to 200 hosts"):
        scenario_from_dict({"testbed": {"hosts": 1}})
    with pytest.raises(ScenarioError, match="pfifo, bfifo, tbf"):
        scenario_from_dict({"testbed": {"hosts": 2, "link": {"qdisc": "fq_codel"}}})


def test_the_papers_query_size_is_a_setting_and_a_sweep(tmp_path) -> None:
    from parm.bench.latency import _source
    from parm.bench.scenario import scenario_from_dict
    from parm.runs import open_run

    scenario = scenario_from_dict({"sweep": {"query_size": ["model", "paper"]}})
    labels = [label for label, _ in scenario.variants()]
    assert labels == ["query_size=model", "query_size=paper"]
    source, noop = _source(scenario.variants()[1][1], tmp_path)
    card = open_run(source).base.card()
    assert noop and card.input_shape == (3, 224, 224) and card.num_classes == 1000
    with pytest.raises(ScenarioError, match="query_size must be one of model, paper"):
        scenario_from_dict({"query_size": "large"})
    with pytest.raises(ScenarioError, match="query_size must be one of model, paper"):
        scenario_from_dict({"sweep": {"query_size": ["huge"]}})


def test_the_engine_is_a_setting_and_a_sweep_that_reaches_the_instances(tmp_path) -> None:
    from parm.bench.latency import emulated, serve_options
    from parm.bench.placeholder import placeholder_run
    from parm.bench.scenario import scenario_from_dict
    from parm.serving.runtime.deployment import build_deployment

    scenario = scenario_from_dict({"base_instances": 2, "sweep": {"engine": ["torch", "onnx"]}})
    assert [label for label, _ in scenario.variants()] == ["engine=torch", "engine=onnx"]
    onnx = scenario.variants()[1][1]
    deployment = emulated(build_deployment(placeholder_run(tmp_path), serve_options(onnx, "parm", False)), onnx)
    assert {spec.engine for spec in deployment.instances} == {"onnx"}


def test_a_link_sweep_varies_the_testbeds_links() -> None:
    from parm.bench.scenario import scenario_from_dict

    scenario = scenario_from_dict({"testbed": {"hosts": 4}, "shuffles": {"count": 2, "mode": "real"},
                                   "sweep": {"link": [{"rate_mbit": 1000}, {"rate_mbit": 100, "qdisc": "tbf",
                                                                            "limit": 50}]}})
    (first, a), (second, b) = scenario.variants()
    assert (first, second) == ("link=1000mbit-pfifo-1000", "link=100mbit-tbf-50")
    assert b.testbed.link.qdisc == "tbf" and b.testbed.hosts == 4 and a.testbed.link.rate_mbit == 1000
    with pytest.raises(ScenarioError, match="bad sweep value"):
        scenario_from_dict({"testbed": {"hosts": 4}, "sweep": {"link": [{"qdisc": "sfq"}]}})
    with pytest.raises(ScenarioError, match="needs a testbed"):
        scenario_from_dict({"sweep": {"link": [{"rate_mbit": 100}]}}).variants()


def test_a_byzantine_fault_is_wrong_from_the_start_and_verify_needs_two_parities() -> None:
    from parm.bench.scenario import Scenario, ScenarioError
    from parm.workload.faults import Fault, fault_times, wrong_instances

    with pytest.raises(ValueError, match="wrong from the start"):
        Fault("byzantine", instance=0, at_s=5.0)
    faults = (Fault("byzantine", instance=1, at_s=0.0, wrong="stale"), Fault("fail-stop", instance=0, at_s=3.0))
    assert wrong_instances(faults) == {1: "stale"}
    assert [fault.kind for _, _, fault in fault_times(faults, 4, 10.0, seed=0)] == ["fail-stop"]
    with pytest.raises(ScenarioError, match="r >= 2"):
        Scenario(r=1, verify=0.05)
    assert Scenario(r=2, verify=0.05).coordinator_config("parm").verify == 0.05
    assert Scenario(r=2, verify=0.05).coordinator_config("equal-resources").verify is None


def test_the_bench_makes_a_scenarios_byzantine_instances_wrong(tmp_path) -> None:
    from parm.bench.latency import emulated
    from parm.bench.placeholder import placeholder_run
    from parm.bench.scenario import Scenario
    from parm.serving.runtime.deployment import ServeOptions, build_deployment
    from parm.workload.faults import Fault

    scenario = Scenario(base_instances=2, r=2, verify=0.05, faults=(Fault("byzantine", instance=1, at_s=0.0),))
    options = ServeOptions(mode="parm", instances=2, coding=scenario.coordinator_config("parm"), noop=True)
    deployment = emulated(build_deployment(placeholder_run(tmp_path, 2, 2), options), scenario)
    assert [spec.wrong for spec in deployment.instances] == [None, "noise", None, None]
    assert deployment.config.verify == 0.05
