"""Scenario files: one YAML description of a cluster, its workload and its faults.

`parm bench latency` (the real system, instances emulated or not) and `parm simulate` (a
discrete-event model of it) read the same file, so their figures can be compared line by line.
See ``benchmarks/scenarios/standard.yaml`` for a commented example.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from parm.serving.core.coordinator import CoordinatorConfig
from parm.serving.core.pools import MODES
from parm.workload.faults import Fault
from parm.workload.service_time import ServiceTime
from parm.workload.shuffles import ShuffleConfig

SWEEPABLE = ("rate", "k", "shuffles", "batch_size")
ANY_MODE = "*"
T = TypeVar("T")


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with what to change."""


@dataclass(frozen=True)
class Scenario:
    """Everything one latency experiment needs; times in the file are in ms unless named ``_s``."""

    name: str = "scenario"
    description: str = ""
    base_instances: int = 12
    k: int = 2
    r: int = 1
    batch_size: int = 1
    group_wait_ms: float = 5.0
    instance_processes: int | None = None
    deadline_ms: float | None = None
    hedge_after_ms: float | None = None
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

    def __post_init__(self) -> None:
        if isinstance(self.frontend, ServiceTime):  # one law for every mode
            object.__setattr__(self, "frontend", {ANY_MODE: self.frontend})
        unknown = [mode for mode in self.modes if mode not in MODES]
        if unknown:
            raise ScenarioError(f"unknown modes {unknown}: use some of {', '.join(MODES)}")
        if self.rate <= 0 or self.queries < 1 or self.warmup < 0 or self.base_instances < 1 or self.repeats < 1:
            raise ScenarioError("need rate > 0, queries >= 1, warmup >= 0, base_instances >= 1 and repeats >= 1")
        if self.instance_processes is not None and self.instance_processes < 1:
            raise ScenarioError("instance_processes must be at least 1, or left out for one process per instance")
        if self.instance_processes is not None and self.shuffles.mode == "real" and self.shuffles.count:
            raise ScenarioError("real shuffles load each instance's own process: leave instance_processes out")

    def coordinator_config(self, mode: str) -> CoordinatorConfig:
        """The coordinator's switches for ``mode``, in seconds: the same for the real bench and the simulator."""
        return CoordinatorConfig(
            k=self.k, r=self.r, batch_size=self.batch_size, group_wait=self.group_wait_ms / 1000,
            deadline=None if self.deadline_ms is None else self.deadline_ms / 1000,
            hedge_after=self.hedge_after_s if mode == "hedged" else None,
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
        return [(f"{key}={value}", self.with_value(key, value)) for value in values]

    def with_value(self, key: str, value: Any) -> Scenario:
        if key == "shuffles":
            return replace(self, shuffles=replace(self.shuffles, count=int(value)), sweep=None)
        return replace(self, **{key: value}, sweep=None)


def load_scenario(path: str | Path, **overrides: Any) -> Scenario:
    """Read a scenario YAML file; ``overrides`` (e.g. ``queries=2000``) replace top-level values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ScenarioError(f"no scenario file at {path}: see benchmarks/scenarios/ for examples") from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path} must hold a mapping of settings")
    return replace(scenario_from_dict(data, base=path.parent), **{k: v for k, v in overrides.items() if v is not None})


def scenario_from_dict(data: dict[str, Any], base: Path = Path(".")) -> Scenario:
    """A scenario from the file's mapping; relative paths are resolved against ``base``."""
    data = dict(data)
    cluster, workload = data.pop("cluster", {}) or {}, data.pop("workload", {}) or {}
    known = {f.name for f in fields(Scenario)}
    flat = {**cluster, **workload, **data}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ScenarioError(f"unknown settings {unknown}; known: {sorted(known)}")
    if "service" in flat:
        flat["service"] = _section("service", lambda spec: _service(spec, base), flat["service"])
    if "frontend" in flat:
        flat["frontend"] = _section("frontend", lambda spec: _frontend(spec, base), flat["frontend"])
    if "shuffles" in flat:
        flat["shuffles"] = _section("shuffles", lambda spec: ShuffleConfig(**spec) if isinstance(spec, dict)
                                    else ShuffleConfig(count=int(spec)), flat["shuffles"])
    if "faults" in flat:
        flat["faults"] = _section("faults", lambda faults: tuple(Fault(**fault) for fault in faults or ()),
                                  flat["faults"])
    if "modes" in flat:
        flat["modes"] = tuple(flat["modes"])
    if flat.get("model") is not None:
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


def _frontend(spec: dict[str, Any], base: Path) -> dict[str, ServiceTime]:
    """The frontend's cost per mode: a profile from `parm bench calibrate` holds one law per mode it measured."""
    law = _service(spec, base)
    if "profile" not in spec:
        return {ANY_MODE: law}
    path = Path(spec["profile"]) if Path(spec["profile"]).is_absolute() else base / spec["profile"]
    modes = json.loads(path.read_text()).get("modes", {})
    return {ANY_MODE: law, **{mode: ServiceTime.from_profile(path, mode=mode) for mode in modes}}


def _service(spec: dict[str, Any], base: Path) -> ServiceTime:
    spec = dict(spec)
    if "profile" in spec:
        profile = Path(spec.pop("profile"))
        return ServiceTime.from_profile(profile if profile.is_absolute() else base / profile, **spec)
    if "mean_ms" in spec:
        spec["mean_s"] = spec.pop("mean_ms") / 1000
    return ServiceTime(**spec)
