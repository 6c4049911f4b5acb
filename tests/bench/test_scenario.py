"""Scenario files: the standard one parses as documented, and broken ones say what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parm.bench.scenario import ScenarioError, load_scenario

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
])
def test_bad_files_raise_a_scenario_error_that_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert message in str(caught.value)


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
