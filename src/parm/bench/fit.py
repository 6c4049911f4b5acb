"""The simulator's model of a real cluster, learned from one measured scenario of it (nothing shared with its runs).

A testbed run with a constant emulated service time S records every answered call's time at the frontend and
every shuffle's transfer. What a call took beyond S is what the cluster added to it: the links and their queues,
and the CPU that the frontend, the instances, the load generator and the shuffles share. `fit_profile` learns the
law of that delay per mode, apart for calls that start while a shuffle touches the instance's host and calls that
start while none does, around a shared level that delays every call of a moment together (a stalled frontend, a
busy CPU); beside them, the client's cost on top of the frontend's latency, and the shuffles' goodput.
`fitted_scenario` turns another scenario of the same cluster (another load, k, shuffle count) into a simulation
that draws from those laws with random streams of its own: a model, validated only on scenarios it was not fitted on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from parm.bench.scenario import ANY_MODE, Scenario, ScenarioError
from parm.workload.emulation import CallDelay
from parm.workload.service_time import ServiceTime
from parm.workload.shuffles import ShuffleConfig

# A fitted simulation's seed is the scenario's plus this, so that none of its random streams (arrivals, shuffle pairs
# and sizes, service times) is one the measured runs drew from.
SEED_OFFSET = 1_000_003
# The shared level is the median delay of each call's 9 nearest calls (about 20 ms of calls at 270 queries/s), kept
# per 5 ms; a simulation lays the measured level out in blocks of 1 s (longer than the episodes seen, so they stay whole).
SHARED_NEIGHBOURS, EPISODE_STEP_S, EPISODE_BLOCK_S = 9, 0.005, 1.0
# Quantile levels of each fitted law: dense in the tail, where p99.9 is decided.
FIT_LEVELS = tuple(sorted({*np.round(np.linspace(0, 0.99, 100), 6), *np.round(np.linspace(0.99, 1, 101), 6)}))


@dataclass(frozen=True)
class RunTrace:
    """What one real run recorded beside its latencies (seconds, perf_counter clock): per measured query its
    latency at the client and at the frontend; per answered call (start, seconds, instance), warm-up included;
    per finished shuffle transfer (start, end, host a, host b, megabytes moved)."""

    client: np.ndarray
    frontend: np.ndarray
    calls: np.ndarray
    transfers: np.ndarray


def save_traces(traces: dict[str, Sequence[RunTrace]], path: Path) -> None:
    """Every run's trace in one compressed .npz (``{mode}-{run}-{field}``), to redo or inspect a fit."""
    np.savez_compressed(path, **{f"{mode}-{i}-{name}": getattr(trace, name)
                                 for mode, runs in traces.items() for i, trace in enumerate(runs)
                                 for name in ("client", "frontend", "calls", "transfers")})


def load_traces(path: Path) -> dict[str, list[RunTrace]]:
    """The traces `save_traces` wrote."""
    traces: dict[str, list[RunTrace]] = {}
    with np.load(path) as data:
        keys = sorted({key.rsplit("-", 1)[0] for key in data.files}, key=lambda k: (k.rsplit("-", 1)[0],
                                                                                   int(k.rsplit("-", 1)[1])))
        for key in keys:
            mode = key.rsplit("-", 1)[0]
            traces.setdefault(mode, []).append(RunTrace(*(data[f"{key}-{name}"] for name in
                                                         ("client", "frontend", "calls", "transfers"))))
    return traces


def touched(starts: np.ndarray, hosts: np.ndarray, transfers: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each call (start time, host), whether a shuffle transfer to or from that host was running then."""
    busy = np.zeros(len(starts), dtype=bool)
    if not len(transfers):
        return busy
    t_start, t_end, a, b = (transfers[:, j] for j in range(4))
    for i in range(0, len(starts), chunk):  # calls x transfers, a chunk of calls at a time
        s, h = starts[i:i + chunk, None], hosts[i:i + chunk, None]
        busy[i:i + chunk] = ((t_start <= s) & (s < t_end) & ((a == h) | (b == h))).any(axis=1)
    return busy


def fit_profile(scenario: Scenario, traces: dict[str, Sequence[RunTrace]]) -> dict[str, Any]:
    """The fitted laws (ms) from ``traces`` (per mode, one or more runs) of ``scenario``, which must have a constant
    service time and a testbed; a JSON-ready profile that `fitted_scenario` and ``frontend: {profile: ...}`` read."""
    if scenario.testbed is None or scenario.service.distribution != "constant":
        raise ScenarioError("a fit needs a testbed scenario with a constant service time (its calls' time beyond it "
                            "is the delay learned): see benchmarks/scenarios/testbed-fit.yaml")
    service_s, hosts = scenario.service.mean(), scenario.testbed.hosts
    modes, transferred, seconds = {}, 0.0, 0.0
    for mode, runs in traces.items():
        delays: dict[str, list[np.ndarray]] = {"idle": [], "busy": []}
        overheads, episodes = [], []
        for trace in runs:
            calls = trace.calls[np.argsort(trace.calls[:, 0])]
            calls = calls[int(len(calls) * scenario.warmup / (scenario.warmup + scenario.queries)):]  # warm-up out
            busy = touched(calls[:, 0], calls[:, 2].astype(int) % hosts, trace.transfers)
            delay = np.clip(calls[:, 1] - service_s, 0, None)
            level, at_call = shared_level(calls[:, 0], delay)
            episodes.append(level)
            spread = delay - at_call  # each call's own part, around the moment's shared level
            delays["idle"].append(spread[~busy])
            delays["busy"].append(spread[busy])
            overheads.append(np.clip(trace.client - trace.frontend, 0, None)[np.isfinite(trace.frontend)])
            if len(trace.transfers):
                transferred += float(trace.transfers[:, 4].sum())
                seconds += float((trace.transfers[:, 1] - trace.transfers[:, 0]).sum())
        idle, busy_delays = np.concatenate(delays["idle"]), np.concatenate(delays["busy"])
        modes[mode] = {"batches": {"1": _law(np.concatenate(overheads))},
                       "call_delay": {"idle": _law(idle), "busy": _law(busy_delays),
                                      "episodes_ms": np.round(np.concatenate(episodes) * 1000, 3).tolist()},
                       "busy_share": float(len(busy_delays) / max(len(idle) + len(busy_delays), 1))}
    return {
        "what": "laws learned from a testbed run (ms): per mode, 'batches' is the client's latency beyond the "
                "frontend's; 'call_delay' splits a call's time at the frontend beyond the constant service time into "
                "the shared level of its moment ('episodes_ms', every 5 ms) and its own part, while a shuffle touches "
                "the instance's host (busy) and while none does (idle)",
        "scenario": scenario.name, "hosts": hosts, "rate": scenario.rate, "query_size": scenario.query_size,
        "link": vars(scenario.testbed.link), "service_ms": service_s * 1000,
        "shuffle_mb_s": transferred / seconds if seconds else None,
        "batches": modes.get("none", next(iter(modes.values())))["batches"], "modes": modes,
    }


def shared_level(starts: np.ndarray, delays: np.ndarray, *, neighbours: int = SHARED_NEIGHBOURS,
                 step_s: float = EPISODE_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """The cluster-wide delay level over time: the median delay of each call's ``neighbours`` nearest calls in start
    order, averaged per ``step_s`` bin (an empty bin keeps the level before it). Returns (level per bin, the level
    at each call); calls sorted by start."""
    half = neighbours // 2
    around = np.lib.stride_tricks.sliding_window_view(np.pad(delays, half, mode="edge"), 2 * half + 1)
    median = np.median(around, axis=1)
    bins = ((starts - starts[0]) / step_s).astype(int)
    count = np.bincount(bins)
    level = np.bincount(bins, weights=median) / np.maximum(count, 1)
    filled = np.maximum.accumulate(np.where(count > 0, np.arange(len(count)), 0))  # last bin with calls
    level = level[filled]
    return level, level[bins]


def _law(values_s: np.ndarray) -> dict[str, Any]:
    if not len(values_s):
        return {"n": 0, "mean_ms": 0.0, "quantiles_ms": {"0.0": 0.0, "1.0": 0.0}}
    ms = values_s * 1000
    return {"n": int(len(ms)), "mean_ms": float(ms.mean()),
            "quantiles_ms": {str(level): float(q) for level, q in zip(FIT_LEVELS, np.quantile(ms, FIT_LEVELS),
                                                                       strict=True)}}


def fitted_scenario(scenario: Scenario, profile: dict[str, Any] | str | Path) -> Scenario:
    """``scenario`` (a testbed scenario of the fitted cluster) as a simulation drawing from ``profile``'s laws: shuffles
    among the testbed's hosts at the fitted goodput with no slowdown factor, each call delayed by its mode's idle
    or busy law, each query's client cost from its mode's law; seeded apart from the measured runs (`SEED_OFFSET`)."""
    if not isinstance(profile, dict):
        profile = json.loads(Path(profile).read_text())
    if scenario.testbed is None:
        raise ScenarioError("--fit predicts testbed scenarios (a testbed: section); this one has none")
    if scenario.sweep is not None and scenario.sweep[0] == "link":
        raise ScenarioError(f"the fit learned one link ({profile['link']}); a link sweep cannot be predicted from it")
    if scenario.query_size != profile["query_size"]:
        raise ScenarioError(f"the fit was made at query_size {profile['query_size']}, the scenario has "
                            f"{scenario.query_size}: fit on a scenario of its size")
    missing = [mode for mode in scenario.modes if mode not in profile["modes"]]
    if missing:
        raise ScenarioError(f"the fit has no laws for modes {missing}: fit on a scenario that runs them")
    laws = {mode: profile["modes"][mode] for mode in scenario.modes}
    shuffles = ShuffleConfig(count=scenario.shuffles.count, min_mb=scenario.shuffles.min_mb,
                             max_mb=scenario.shuffles.max_mb, bandwidth_mb_s=profile["shuffle_mb_s"] or 1.0,
                             slowdown=1.0)
    return replace(scenario, testbed=None, hosts=scenario.testbed.hosts, shuffles=shuffles,
                   seed=scenario.seed + SEED_OFFSET,
                   frontend={ANY_MODE: ServiceTime("constant", mean_s=0.0),
                             **{mode: _service(law["batches"]["1"]) for mode, law in laws.items()}},
                   call_delay={mode: _call_delay(law["call_delay"]) for mode, law in laws.items()})


def _call_delay(law: dict[str, Any]) -> CallDelay:
    return CallDelay(_service(law["idle"]), _service(law["busy"]),
                     episodes=tuple(ms / 1000 for ms in law.get("episodes_ms", ())), step_s=EPISODE_STEP_S,
                     block_s=EPISODE_BLOCK_S)


def _service(law: dict[str, Any]) -> ServiceTime:
    return ServiceTime.from_quantiles_ms(law["quantiles_ms"])
