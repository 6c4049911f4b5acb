"""`parm bench latency`: the real frontend under an open-loop load, mode after mode, same arrivals.

For every variant of a scenario (a sweep value) and every mode, it starts the frontend with local
instance processes (emulated service times with background shuffles, as the scenario says),
replays the same Poisson arrival sequence over HTTP from a separate load-generator process,
injects the scenario's faults, and records each query's latency and answer kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from parm.bench.fit import RunTrace
from parm.bench.harness import Served, serve_locally
from parm.bench.loadgen import infer_request, open_loop
from parm.bench.machine_load import CpuShares
from parm.bench.machine_speed import machine_speed
from parm.bench.placement import frontend_on_own_cores
from parm.bench.placeholder import placeholder_run
from parm.bench.report import AT_FRONTEND, LatencyRun, latency_drift, percentiles
from parm.bench.scenario import Scenario
from parm.runs import open_run
from parm.serving.runtime.deployment import INPUT_NAME, Deployment, ServeOptions, build_deployment
from parm.workload.arrivals import arrival_times
from parm.workload.emulation import Emulation
from parm.workload.faults import fault_times, wrong_instances
from parm.workload.service_time import ServiceTime
from parm.workload.shuffle_traffic import RealShuffles
from parm.workload.shuffles import ShuffleSchedule

MODEL_NAME = "bench"
PAPER_SHAPE, PAPER_CLASSES = (3, 224, 224), 1000  # the paper's queries and outputs (its models return 1,000 values)
SCHEDULE_SLACK_S = 900.0  # shuffles are drawn this far beyond the arrivals, to cover start-up and stragglers


# How a measured deployment is served: a context that yields the running server and its background load
# (`local_serving`: local instance processes; the testbed's puts `parm instance` servers on its hosts).
Serving = Callable[[Deployment, Scenario, Path, bool], contextlib.AbstractContextManager[
    tuple[Served, contextlib.AbstractContextManager]]]


@contextlib.contextmanager
def local_serving(deployment: Deployment, scenario: Scenario, source: Path,
                  noop: bool) -> Iterator[tuple[Served, contextlib.AbstractContextManager]]:
    """``deployment`` on local instance processes, with real shuffles between them if the scenario has them."""
    with serve_locally(deployment, processes=scenario.instance_processes, max_pending=1 << 20) as served:
        yield served, _background_load(scenario, served)


def bench_latency(scenario: Scenario, *, progress: bool = True, serving: Serving = local_serving,
                  on_run: Callable[[list[LatencyRun]], None] | None = None) -> list[LatencyRun]:
    """Measure every variant x mode of ``scenario`` on the real system, ``repeats`` times, modes interleaved
    (so that the machine's slow moments fall on every mode alike); one `LatencyRun` each. ``on_run`` gets the runs
    so far after each one (to keep a partial report: a run that fails loses only itself)."""
    variants = scenario.variants()
    bar = tqdm(total=len(variants) * len(scenario.modes) * scenario.repeats, desc=f"bench {scenario.name}",
               unit="run", disable=not progress)
    runs = []
    with tempfile.TemporaryDirectory(prefix="parm-bench-") as tmp:
        for label, variant in variants:
            source, noop = _source(variant, Path(tmp) / label)
            requests = _requests(variant, source, noop)
            for repeat in range(variant.repeats):
                for mode in variant.modes:
                    bar.set_postfix_str(f"{label} {mode} ({repeat + 1}/{variant.repeats})")
                    runs.append(measure(variant, label, mode, source, noop, requests, serving))
                    bar.update()
                    if on_run is not None:
                        on_run(runs)
    bar.close()
    return runs


def serve_options(scenario: Scenario, mode: str, noop: bool) -> ServeOptions:
    """How the bench serves ``mode`` of ``scenario`` (its instances emulated after, by `emulated`)."""
    return ServeOptions(mode=mode, instances=scenario.base_instances, coding=scenario.coordinator_config(mode),
                        noop=noop, name=MODEL_NAME, engine=scenario.engine)


def measure(scenario: Scenario, label: str, mode: str, source: Path, noop: bool, requests: list[bytes],
            serving: Serving = local_serving) -> LatencyRun:
    """One mode under the scenario's load: start, warm up, measure, stop. Its metadata's ``machine_cpu``: the whole
    machine's core time by kind over the load, warm-up included (`parm.bench.machine_load`); ``machine_speed``: the
    reference workload's figures just before (`parm.bench.machine_speed`), to compare runs across machines;
    ``latency_drift``: how fast latency grew over the run (`parm.bench.report.latency_drift`: > 0 for a growing queue);
    ``placement``: the frontend's cores and the rest's, with ``frontend_cores`` (`parm.bench.placement`), else None."""
    speed = machine_speed().as_dict()
    deployment = emulated(build_deployment(source, serve_options(scenario, mode, noop)), scenario)
    started = time.perf_counter()
    with serving(deployment, scenario, source, noop) as (served, background), _load_process() as pool:
        total = scenario.warmup + scenario.queries
        with frontend_on_own_cores(scenario.frontend_cores) as placement, background as shuffles, CpuShares() as cpu:
            load = pool.submit(_generate_load, served.address, requests, scenario.rate, total, scenario.seed)
            _schedule_faults(served, scenario, len(deployment.instances))
            samples = load.result()
    samples.sort()  # by send time: the warm-up is the first queries sent
    measured = samples[scenario.warmup:]
    sent, latencies, statuses, answers, frontend = (np.array(column) for column in zip(*measured, strict=True))
    at_frontend = frontend[~np.isnan(frontend)]  # failed requests report none
    return LatencyRun(
        mode=mode, label=label, latencies=latencies, answers=answers, trace=_trace(served, shuffles, latencies, frontend),
        metadata={"system": "real", "instances": len(deployment.instances),
                  "failed_requests": int((statuses != 200).sum()), "wall_s": time.perf_counter() - started,
                  "shuffled_mb": getattr(shuffles, "moved_mb", 0.0), "machine_cpu": cpu.shares,
                  "machine_speed": speed, "latency_drift": latency_drift(sent, latencies), "placement": placement,
                  **({AT_FRONTEND: percentiles(at_frontend)} if at_frontend.size else {})},
    )


def _trace(served: Served, shuffles: object, latencies: np.ndarray, frontend: np.ndarray) -> RunTrace | None:
    """The run's calls and transfers, when its backend recorded them (the testbed's does: `parm.bench.fit`)."""
    calls = getattr(served.backend, "call_log", None)
    if calls is None:
        return None
    transfers = getattr(shuffles, "transfers", [])
    return RunTrace(latencies, frontend, np.array(calls, dtype=np.float64).reshape(-1, 3),
                    np.array(transfers, dtype=np.float64).reshape(-1, 5))


def emulated(deployment: Deployment, scenario: Scenario) -> Deployment:
    """``deployment`` with every instance holding its answers to the scenario's service times, slowed by the
    emulated shuffles, or running a shuffle endpoint when the scenario's shuffles are real; byzantine ones wrong."""
    epoch, real = time.time(), scenario.shuffles.mode == "real"
    instances = len(deployment.instances)
    schedule = ShuffleSchedule.none(instances) if real else ShuffleSchedule.draw(
        scenario.shuffles, instances, scenario.duration_s + SCHEDULE_SLACK_S, seed=scenario.seed)
    wrong = wrong_instances(scenario.faults)
    specs = tuple(
        replace(spec, shuffle_endpoint=real, wrong=wrong.get(spec.id),
                emulation=Emulation.for_instance(scenario.service, schedule, spec.id, epoch, scenario.seed))
        for spec in deployment.instances
    )
    return replace(deployment, instances=specs)


def _background_load(scenario: Scenario, served: Served) -> contextlib.AbstractContextManager:
    """Real shuffles between the instance processes while the load runs (emulated ones need nothing here)."""
    if scenario.shuffles.mode != "real":
        return contextlib.nullcontext()
    instances = list(range(len(served.frontend.deployment.instances)))
    return RealShuffles(scenario.shuffles, instances, served.backend.shuffle_port, seed=scenario.seed)


def _source(scenario: Scenario, tmp: Path) -> tuple[Path, bool]:
    """The run folder to serve (``model`` may name k and r as ``{k}``/``{r}``), or a placeholder with no-op instances
    (of the paper's query size with ``query_size: paper``)."""
    if scenario.query_size == "paper":
        return placeholder_run(tmp, scenario.k, scenario.r, model="lenet5", input_shape=PAPER_SHAPE,
                               classes=PAPER_CLASSES), True
    if scenario.model is None:
        return placeholder_run(tmp, scenario.k, scenario.r), True
    path = Path(scenario.model.format(k=scenario.k, r=scenario.r))
    if not path.exists():
        raise FileNotFoundError(f"the scenario's model {path} does not exist: train it (see `make demo`) "
                                "or drop `model:` to run no-op instances")
    return path, False


def _requests(scenario: Scenario, source: Path, noop: bool, count: int = 256) -> list[bytes]:
    """Prebuilt infer requests: real test-split inputs when the model is real, random ones otherwise."""
    base = open_run(source).base
    if noop:
        inputs = np.random.default_rng(scenario.seed).random((count, *base.card().input_shape), dtype=np.float32)
    else:
        dataset = base.dataset()
        inputs = dataset.preprocess(dataset.test.x[:count]).numpy()
    return [infer_request(MODEL_NAME, INPUT_NAME, x[None]) for x in inputs]


def _schedule_faults(served: Served, scenario: Scenario, instances: int) -> None:
    """Arm the scenario's faults (the simulator's failure times), timed from the load's start.

    A crash-restart instance with a process of its own comes back when its new process has loaded its model;
    one in a shared process (``instance_processes``) after the fault's ``restart_s``, as in the simulator.
    """
    for at, instance, fault in fault_times(scenario.faults, instances, scenario.duration_s, scenario.seed):
        served.inject(fault, instance, after_s=at)


def _load_process() -> ProcessPoolExecutor:
    """A separate process for the load generator, so that it does not share the frontend's GIL."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def _generate_load(address: str, requests: list[bytes], rate: float, total: int,
                   seed: int) -> list[tuple[float, float, int, str, float]]:
    gc.disable()  # a collection pausing the load generator would be measured as the server's latency
    try:
        samples = asyncio.run(open_loop(address, requests, arrival_times(rate, total, seed)))
    finally:
        gc.enable()
    return [(s.sent, s.latency, s.status, s.answer, s.at_frontend) for s in samples]



CALIBRATION_SERVICE_S = 0.002
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0)


def calibrate_overhead(scenario: Scenario, *, progress: bool = True) -> dict:
    """The real system's own per-query cost on this machine, per mode, as a profile the simulator draws from.

    Runs each of the scenario's modes on its cluster and load with a constant emulated service time and no
    shuffles or faults, so each query's latency minus that constant is what the frontend, loopback,
    instance processes and operating system add; modes that send more calls (parities, backups) cost more
    on a small machine. With ``repeats`` > 1 the modes are interleaved and each quantile is the median over
    the runs. Returns a profile dict: ``modes -> batches -> quantiles_ms``, and mode none's (or the first
    mode's) at the top level.
    """
    variant = replace(scenario, service=ServiceTime("constant", mean_s=CALIBRATION_SERVICE_S),
                      shuffles=replace(scenario.shuffles, count=0), faults=(), sweep=None)
    source, noop = _source(variant, Path(tempfile.mkdtemp(prefix="parm-calibrate-")))
    requests = _requests(variant, source, noop)
    overheads: dict[str, list[np.ndarray]] = {mode: [] for mode in variant.modes}
    bar = tqdm(total=variant.repeats * len(variant.modes), desc="calibrate", unit="run", disable=not progress)
    for _ in range(variant.repeats):  # modes interleaved, as in `bench_latency`
        for mode in variant.modes:
            run = measure(variant, "calibration", mode, source, noop, requests)
            overheads[mode].append(np.clip(run.latencies - CALIBRATION_SERVICE_S, 0, None) * 1000)
            bar.update()
    bar.close()
    modes = {}
    for mode, runs in overheads.items():  # each quantile: the median over the repeats
        quantiles = {str(q): float(np.median([np.quantile(ms, q) for ms in runs])) for q in QUANTILES}
        modes[mode] = {"batches": {"1": {"n": int(sum(map(len, runs))), "repeats": len(runs),
                                         "mean_ms": float(np.median([ms.mean() for ms in runs])),
                                         "quantiles_ms": quantiles}}}
    return {
        "what": "per-query latency the real frontend adds to an instance's service time (client send to answer, "
                "minus a constant 2 ms emulated service), per mode, no shuffles",
        "scenario": scenario.name, "instances": scenario.base_instances, "rate": scenario.rate,
        "batches": modes.get("none", next(iter(modes.values())))["batches"], "modes": modes,
    }
