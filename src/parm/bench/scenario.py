"""Scenario files: one YAML description of a cluster, its workload and its faults.

`parm bench latency` (the real system, instances emulated or not) and `parm simulate` (a
discrete-event model of it) read the same file, so their figures can be compared line by line.
See ``benchmarks/scenarios/standard.yaml`` for a commented example.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from parm.serving.core.coordinator import BATCHING, CoordinatorConfig
from parm.serving.core.pools import MODES
from parm.serving.engines import ENGINES
from parm.workload.emulation import CallDelay
from parm.workload.faults import Fault
from parm.workload.links import LinkSpec, TestbedPlan
from parm.workload.service_time import ServiceTime
from parm.workload.shuffles import ShuffleConfig

SWEEPABLE = ("rate", "k", "shuffles", "batch_size", "batching", "query_size", "engine", "link")
QUERY_SIZES = ("model", "paper")  # the model's own queries, or the paper's: 3x224x224 in, 1,000 out (no-op instances)
CHOICES = {"batching": BATCHING, "query_size": QUERY_SIZES, "engine": ENGINES}  # the settings that name one of a few
CHOICE_NOTES = {"query_size": " (paper: 3x224x224 inputs as binary tensors and 1,000 outputs, on no-op instances)",
                "engine": " (onnx: ONNX Runtime on an export of the model)"}
ANY_MODE = "*"
# Groupings of top-level settings in the file (flattened on reading), with an example of each.
SECTIONS = {"cluster": "{base_instances: 12, k: 2}", "workload": "{rate: 270, queries: 20000}"}
EXAMPLE = "benchmarks/scenarios/standard.yaml"
SERVICE_EXAMPLE = "{profile: ../profiles/resnet18-224-h200.json} or {distribution: constant, mean_ms: 2}"
FRONTEND_EXAMPLE = "{profile: ../profiles/frontend-2core.json} or {distribution: constant, mean_ms: 0.5}"
T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with what to change."""


@dataclass(frozen=True)
class Rule:
    """What one numeric setting accepts: a whole number or any number, above (or at) a bound, maybe null."""

    whole: bool
    low: float
    inclusive: bool = True
    null: str | None = None  # what null (or leaving the setting out) means, when it is allowed
    example: str = ""

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` cannot be ``name``, naming the setting and a valid line; None when it is fine."""
        if value is None and self.null is not None:
            return None
        if _is_number(value, whole=self.whole) and (value >= self.low if self.inclusive else value > self.low):
            return None
        bound = f"{'>=' if self.inclusive else '>'} {self.low:g}"
        kind = "a whole number" if self.whole else "a number"
        null = f", or null {self.null}" if self.null is not None else ""
        return f"need {name} {bound} ({kind}{null}), got {value!r}: e.g. {name}: {self.example}"


# Every numeric top-level setting; a sweep's values follow the rule of the setting they replace.
RULES = {
    "base_instances": Rule(whole=True, low=1, example="12"),
    "k": Rule(whole=True, low=1, example="2"),
    "r": Rule(whole=True, low=1, example="1"),
    "batch_size": Rule(whole=True, low=1, example="1"),
    "group_wait_ms": Rule(whole=False, low=0, example="5"),
    "deadline_ms": Rule(whole=False, low=0, inclusive=False, null="for no deadline", example="50"),
    "hedge_after_ms": Rule(whole=False, low=0, inclusive=False, null="for the service time's p95", example="10"),
    "verify": Rule(whole=False, low=0, inclusive=False, null="for no verification", example="0.05"),
    "verify_wait_ms": Rule(whole=False, low=0, example="100"),
    "rate": Rule(whole=False, low=0, inclusive=False, example="270"),
    "queries": Rule(whole=True, low=1, example="20000"),
    "warmup": Rule(whole=True, low=0, example="1000"),
    "seed": Rule(whole=True, low=0, example="0"),
    "repeats": Rule(whole=True, low=1, example="3"),
}
SWEEP_RULES = {**RULES, "shuffles": Rule(whole=True, low=0, example="4")}  # a shuffles sweep gives counts


def _is_number(value: Any, *, whole: bool) -> bool:
    """A finite number (a whole one if ``whole``); YAML's ``yes``/``no`` are booleans, which are no numbers here."""
    kind = numbers.Integral if whole else numbers.Real
    return isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Scenario:
    """Everything one latency experiment needs; times in the file are in ms unless named ``_s``."""

    name: str = "scenario"
    description: str = ""
    base_instances: int = 12
    k: int = 2
    r: int = 1
    batch_size: int = 1
    batching: str = "dynamic"
    group_wait_ms: float = 5.0
    instance_processes: int | None = None
    deadline_ms: float | None = None
    hedge_after_ms: float | None = None
    verify: float | None = None  # parm mode: check each group's k + r outputs (a tolerance; r >= 2), `CoordinatorConfig`
    verify_wait_ms: float = 100.0
    modes: tuple[str, ...] = ("parm", "equal-resources")
    rate: float = 270.0
    queries: int = 20_000
    warmup: int = 1_000
    seed: int = 0
    repeats: int = 1
    service: ServiceTime = field(default_factory=lambda: ServiceTime("constant", mean_s=0.002))
    frontend: ServiceTime | dict[str, ServiceTime] = field(default_factory=lambda: ServiceTime("constant", mean_s=0.0))
    shuffles: ShuffleConfig = field(default_factory=lambda: ShuffleConfig(count=0))
    faults: tuple[Fault, ...] = ()
    model: str | None = None
    sweep: tuple[str, tuple[Any, ...]] | None = None
    testbed: TestbedPlan | None = None  # run on hosts in network namespaces on shaped links (`parm.testbed`)
    query_size: str = "model"
    engine: str = "torch"  # what computes the instances' models (`parm.serving.engines`)
    frontend_cores: tuple[int, ...] | None = None  # the frontend's own cores, all else on the rest (`bench.placement`)
    # Simulation only, set by `parm.bench.fit.fitted_scenario`: the hosts the shuffles pick from (instance i on host
    # i mod hosts; default one per instance) and, per mode, the delay a real cluster adds to each call.
    hosts: int | None = None
    call_delay: dict[str, CallDelay] | None = None

    def __post_init__(self) -> None:
        """Check every setting here, so that the file, the command-line overrides and a sweep's variants
        (all `dataclasses.replace`) fail as one line naming the setting, not deep inside a run."""
        if isinstance(self.frontend, ServiceTime):  # one law for every mode
            object.__setattr__(self, "frontend", {ANY_MODE: self.frontend})
        for name in ("name", "description"):
            if not isinstance(getattr(self, name), str):
                raise ScenarioError(f"need {name} as text, got {getattr(self, name)!r}: e.g. {name}: \"k2 at 270 qps\" "
                                    "(quoted when it reads as a number)")
        if not self.modes:
            raise ScenarioError(f"need at least one mode: e.g. modes: [parm, equal-resources] "
                                f"(known: {', '.join(MODES)})")
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ScenarioError(f"unknown modes {unknown}: use some of {', '.join(MODES)}")
        for name, rule in RULES.items():
            if (problem := rule.problem(name, getattr(self, name))) is not None:
                raise ScenarioError(problem)
        for name, allowed in CHOICES.items():
            if (value := getattr(self, name)) not in allowed:
                raise ScenarioError(f"{name} must be one of {', '.join(allowed)}{CHOICE_NOTES.get(name, '')}, got "
                                    f"{value!r}")
        cores = self.frontend_cores
        if cores is not None and not (isinstance(cores, tuple) and cores and all(
                _is_number(core, whole=True) and core >= 0 for core in cores)):
            raise ScenarioError(f"need frontend_cores as a list of CPU numbers (or null to share every core), got "
                                f"{cores!r}: e.g. frontend_cores: [0]")
        processes = self.instance_processes
        if processes is not None and not (_is_number(processes, whole=True) and processes >= 1):
            raise ScenarioError(f"instance_processes must be at least 1 (a whole number), or left out for one process "
                                f"per instance; got {self.instance_processes!r}")
        if self.model is not None and not isinstance(self.model, str):
            raise ScenarioError(f"need model as the path of a run folder, got {self.model!r}")
        if self.sweep is not None:
            _check_sweep(*self.sweep)
        if self.instance_processes is not None and self.shuffles.mode == "real" and self.shuffles.count:
            raise ScenarioError("real shuffles load each instance's own process: leave instance_processes out")
        if self.verify is not None and self.r < 2:
            raise ScenarioError(f"verify needs r >= 2 (one parity shows that an output is wrong, not which), got r: "
                                f"{self.r}")
        if self.testbed is not None:
            if any(fault.kind == "byzantine" for fault in self.faults):
                raise ScenarioError("byzantine instances run on loopback only for now: drop the testbed: section or "
                                    "the byzantine fault")
            if self.instance_processes is not None:
                raise ScenarioError("on the testbed each instance is a `parm instance` process on its host: leave "
                                    "instance_processes out")
            if self.shuffles.count and self.shuffles.mode != "real":
                raise ScenarioError("the testbed has no emulated slowdown: its shuffles move real bytes over the "
                                    "hosts' links; set shuffles: {mode: real, ...}")

    def coordinator_config(self, mode: str) -> CoordinatorConfig:
        """The coordinator's switches for ``mode``, in seconds: the same for the real bench and the simulator."""
        return CoordinatorConfig(
            k=self.k, r=self.r, batch_size=self.batch_size, batching=self.batching, group_wait=self.group_wait_ms / 1000,
            deadline=None if self.deadline_ms is None else self.deadline_ms / 1000,
            hedge_after=self.hedge_after_s if mode == "hedged" else None,
            verify=self.verify if mode == "parm" else None, verify_wait=self.verify_wait_ms / 1000,
        )

    def frontend_for(self, mode: str) -> ServiceTime:
        """The real frontend's per-query cost in ``mode`` (measured per mode when the profile has modes)."""
        return self.frontend.get(mode, self.frontend[ANY_MODE])

    @property
    def hedge_after_s(self) -> float:
        """The backup delay: as configured, else the service time's 95th percentile ("The Tail at Scale")."""
        if self.hedge_after_ms is not None:
            return self.hedge_after_ms / 1000
        import numpy as np

        return float(np.quantile(self.service.sample(np.random.default_rng(0), 20_000, self.batch_size), 0.95))

    @property
    def duration_s(self) -> float:
        """How long the arrivals last, on average."""
        return (self.queries + self.warmup) / self.rate

    def variants(self) -> list[tuple[str, Scenario]]:
        """One scenario per sweep value (just this one without a sweep), labelled ``name=value``."""
        if self.sweep is None:
            return [(self.name, self)]
        key, values = self.sweep
        return [(f"{key}={_label(value)}", self.with_value(key, value)) for value in values]

    def with_value(self, key: str, value: Any) -> Scenario:
        if key == "link":
            if self.testbed is None:
                raise ScenarioError("a link sweep needs a testbed: section (the hosts whose links it varies)")
            return replace(self, testbed=replace(self.testbed, link=_link(value)), sweep=None)
        if key == "shuffles":
            return replace(self, shuffles=replace(self.shuffles, count=int(value)), sweep=None)
        return replace(self, **{key: value}, sweep=None)


def load_scenario(path: str | Path, **overrides: Any) -> Scenario:
    """Read a scenario YAML file; ``overrides`` (e.g. ``queries=2000``) replace top-level values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"no scenario file at {path}: see benchmarks/scenarios/ for examples") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(f"cannot read the scenario file {path} ({err}): see {EXAMPLE}") from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path} is not valid YAML: {err}") from None
    if data is None:  # no settings at all (or only comments): running the defaults would hide a wrong file
        raise ScenarioError(f"the scenario file is empty: see {EXAMPLE} ({path})")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path} must hold a mapping of settings")
    return replace(scenario_from_dict(data, base=path.parent), **{k: v for k, v in overrides.items() if v is not None})


def scenario_from_dict(data: dict[str, Any], base: Path = Path(".")) -> Scenario:
    """A scenario from the file's mapping; relative paths are resolved against ``base``."""
    data = dict(data)
    flat: dict[str, Any] = {}
    for name, example in SECTIONS.items():  # the sections only group settings: flatten them
        section = data.pop(name, None)
        flat.update({} if section is None else _mapping(name, section, example))
    flat.update(data)
    known = {f.name for f in fields(Scenario)}
    unknown = sorted(str(key) for key in set(flat) - known)
    if unknown:
        raise ScenarioError(f"unknown settings {unknown}; known: {sorted(known)}")
    if "service" in flat:
        flat["service"] = _section(
            "service", lambda spec: _service(_mapping("service", spec, SERVICE_EXAMPLE), base), flat["service"])
    if "frontend" in flat:
        flat["frontend"] = _section(
            "frontend", lambda spec: _frontend(_mapping("frontend", spec, FRONTEND_EXAMPLE), base), flat["frontend"])
    if "shuffles" in flat:
        flat["shuffles"] = _section("shuffles", _shuffles, flat["shuffles"])
    if "faults" in flat:
        flat["faults"] = _section("faults", _faults, flat["faults"])
    if flat.get("testbed") is not None:
        flat["testbed"] = _section("testbed", lambda spec: TestbedPlan.from_dict(
            dict(_mapping("testbed", spec, "{hosts: 6, link: {rate_mbit: 1000}}"))), flat["testbed"])
    if isinstance(flat.get("frontend_cores"), list):  # anything else is refused by Scenario
        flat["frontend_cores"] = tuple(flat["frontend_cores"])
    if "modes" in flat:
        if not isinstance(flat["modes"], list):
            raise ScenarioError(f"need modes as a list, got {flat['modes']!r}: e.g. modes: [parm, equal-resources]")
        flat["modes"] = tuple(flat["modes"])
    if isinstance(flat.get("model"), str):  # anything else is refused by Scenario
        flat["model"] = str((base / flat["model"]).resolve()) if not Path(flat["model"]).is_absolute() else flat["model"]
    if "sweep" in flat and flat["sweep"] is not None:
        sweep = flat["sweep"]
        if not isinstance(sweep, dict) or len(sweep) != 1 or next(iter(sweep)) not in SWEEPABLE \
                or not isinstance(next(iter(sweep.values())), list):
            raise ScenarioError(f"sweep must name one of {SWEEPABLE} with a list of values, e.g. sweep: {{rate: [150, 270]}}")
        key, values = next(iter(sweep.items()))
        flat["sweep"] = (key, tuple(values))
    try:
        return Scenario(**flat)
    except TypeError as err:
        raise ScenarioError(f"bad scenario settings: {err}") from None


def _section(name: str, build: Callable[[Any], T], spec: Any) -> T:
    """One section built from the file, with what its constructor rejects (an unknown key, a bad value, a
    missing profile) as a ScenarioError naming the section, not a traceback."""
    try:
        return build(spec)
    except ScenarioError:
        raise
    except (TypeError, ValueError, KeyError, OSError) as err:
        raise ScenarioError(f"bad {name} settings: {err}") from None


def _check_sweep(key: str, values: tuple[Any, ...]) -> None:
    """A sweep names one sweepable setting and at least one value, each valid for that setting."""
    if key not in SWEEPABLE:
        raise ScenarioError(f"sweep must name one of {SWEEPABLE}, not {key!r}: e.g. sweep: {{rate: [150, 270]}}")
    if not values:
        raise ScenarioError(f"sweep {key} needs at least one value: "
                            f"e.g. sweep: {{{key}: [{', '.join(CHOICES[key]) if key in CHOICES else SWEEP_RULES[key].example}]}}")
    for value in values:
        if key == "link":
            _link(value)
        elif key in CHOICES:
            allowed = CHOICES[key]
            if value not in allowed:
                raise ScenarioError(f"bad sweep value: {key} must be one of {', '.join(allowed)}, got {value!r}")
        elif (problem := SWEEP_RULES[key].problem(key, value)) is not None:
            raise ScenarioError(f"bad sweep value: {problem}")


def _label(value: Any) -> str:
    """A sweep value as a label: a link's fields joined (``1000mbit-pfifo-1000``), anything else as written."""
    if isinstance(value, Mapping):
        link = _link(value)
        return f"{link.rate_mbit:g}mbit-{link.qdisc}-{link.limit}"
    return str(value)


def _link(value: Any) -> LinkSpec:
    """One value of a link sweep: a mapping of `LinkSpec` fields."""
    try:
        return LinkSpec(**_mapping("sweep link", value, "[{rate_mbit: 1000, qdisc: pfifo, limit: 1000}]"))
    except TypeError as err:
        raise ScenarioError(f"bad sweep value: {err}") from None
    except ValueError as err:
        raise ScenarioError(f"bad sweep value: {err}") from None


def _mapping(name: str, spec: Any, example: str) -> Mapping[str, Any]:
    """``spec`` if it is a mapping, else a ScenarioError showing the section's form."""
    if not isinstance(spec, Mapping):
        raise ScenarioError(f"bad {name} settings: need a mapping, got {spec!r}: e.g. {name}: {example}")
    return spec


def _shuffles(spec: Any) -> ShuffleConfig:
    """The shuffles section: a mapping of `ShuffleConfig` fields, or just the count of shuffles."""
    if _is_number(spec, whole=True):
        return ShuffleConfig(count=spec)
    return ShuffleConfig(**_mapping("shuffles", spec, "{count: 4, slowdown: 3.5} (or a count: shuffles: 4)"))


def _faults(faults: Any) -> tuple[Fault, ...]:
    """The faults section: a list of mappings of `Fault` fields (empty or null for none)."""
    if faults is None:
        return ()
    if not isinstance(faults, list):
        raise ScenarioError(f"bad faults settings: need a list, got {faults!r}: "
                            "e.g. faults: [{kind: fail-stop, at_s: 20}]")
    return tuple(Fault(**_mapping("faults", fault, "[{kind: fail-stop, at_s: 20}]")) for fault in faults)


def _frontend(spec: dict[str, Any], base: Path) -> dict[str, ServiceTime]:
    """The frontend's cost per mode: a profile from `parm bench calibrate` holds one law per mode it measured."""
    law = _service(spec, base)
    if "profile" not in spec:
        return {ANY_MODE: law}
    path = Path(spec["profile"]) if Path(spec["profile"]).is_absolute() else base / spec["profile"]
    modes = json.loads(path.read_text()).get("modes", {})
    return {ANY_MODE: law, **{mode: ServiceTime.from_profile(path, mode=mode) for mode in modes}}


def _service(spec: dict[str, Any], base: Path) -> ServiceTime:
    """A service-time law: a measured ``profile`` (scaled), or a ``distribution`` with its ``mean_ms``."""
    spec = dict(spec)
    if "profile" in spec:
        profile = Path(spec.pop("profile"))
        return ServiceTime.from_profile(profile if profile.is_absolute() else base / profile, **spec)
    if "mean_ms" in spec:
        spec["mean_s"] = spec.pop("mean_ms") / 1000
    return ServiceTime(**spec)
