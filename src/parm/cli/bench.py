"""``parm bench latency``: tail latency of the real frontend per redundancy mode, from a scenario file."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("bench", help="measure the serving system (latency under load)",
                                 description="Measure parm serving on this machine.")
    kinds = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    latency = kinds.add_parser(
        "latency",
        help="open-loop Poisson load over HTTP against each mode; p50..p99.9 per mode, with plots",
        description="Run a scenario (cluster, workload, service times, background shuffles, faults) on the real "
        "frontend with local emulated instances (or, for a scenario with a testbed: section, `parm instance` servers "
        "on hosts in network namespaces on shaped links; needs root): for each sweep value and each mode, start the server, replay the "
        "same Poisson arrivals over the Open Inference Protocol from a separate load-generator process, and "
        "record every query's latency and answer kind. Writes results.json, results.md, cdf.png and, for a "
        "sweep, latency_vs_<key>.png; results.md names any run that fell behind its arrivals (a growing queue).",
        epilog="example: parm bench latency benchmarks/scenarios/standard.yaml --queries 5000",
    )
    add_scenario_options(latency)
    latency.add_argument("--repeats", type=int,
                         help="runs per mode, interleaved; each statistic is the median over runs (default: the scenario's)")
    latency.set_defaults(run=run)
    calibrate = kinds.add_parser(
        "calibrate",
        help="measure the real frontend's own per-query cost, as a profile for `parm simulate`",
        description="Run each of the scenario's modes on its cluster and load with a constant 2 ms emulated "
        "service time and no shuffles or faults; each query's latency minus 2 ms is what the frontend, loopback, "
        "instance processes and operating system add in that mode. Writes the quantiles per mode as a profile "
        "that a scenario names under `frontend: {profile: PATH}`, so the simulator adds the same cost.",
        epilog="example: parm bench calibrate benchmarks/scenarios/standard.yaml --out benchmarks/profiles/frontend.json",
    )
    calibrate.add_argument("scenario", type=Path, metavar="CONFIG.yaml", help="scenario file (cluster size and rate)")
    calibrate.add_argument("--queries", type=int, default=20_000, help="measured queries (default: %(default)s)")
    calibrate.add_argument("--out", type=Path, required=True, help="profile JSON to write")
    calibrate.add_argument("--no-progress", action="store_true", help="no progress bars")
    calibrate.set_defaults(run=run_calibrate)


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """Overrides shared by `parm bench latency` and `parm simulate`."""
    parser.add_argument("scenario", type=Path, metavar="CONFIG.yaml", help="scenario file (see benchmarks/scenarios/)")
    parser.add_argument("--queries", type=int, help="measured queries per mode (default: the scenario's)")
    parser.add_argument("--rate", type=float, help="arrival rate in queries/s (default: the scenario's)")
    parser.add_argument("--modes", help="comma-separated modes to run (default: the scenario's)")
    parser.add_argument("--out", type=Path, help="report folder (default: runs/<command>/<scenario name>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def load(args: argparse.Namespace):
    from parm.bench.scenario import load_scenario

    modes = tuple(args.modes.split(",")) if args.modes else None
    scenario = load_scenario(args.scenario, queries=args.queries, rate=args.rate, modes=modes,
                             repeats=getattr(args, "repeats", None))
    if args.rate is not None and scenario.sweep is not None and scenario.sweep[0] == "rate":
        scenario = replace(scenario, sweep=None)  # an explicit rate replaces a rate sweep
    return scenario


def run(args: argparse.Namespace) -> int:
    from parm.bench.latency import bench_latency
    from parm.bench.report import write_report
    from parm.serving.runtime.logs import configure_logging
    from parm.testbed import sandbox

    configure_logging("text", "warning")
    scenario = load(args)
    if scenario.testbed is not None and not sandbox.inside():  # the testbed lives in a sandbox of its own
        return sandbox.rerun_inside("the scenario runs on the testbed, which cannot run here")
    out = args.out or Path("runs/bench") / scenario.name
    sweep_key = scenario.sweep[0] if scenario.sweep else None
    total = len(scenario.variants()) * len(scenario.modes) * scenario.repeats

    def partial_report(runs: list) -> None:  # kept after every run: a run that fails loses only itself
        if len(runs) < total:
            write_report(runs, out, title=f"parm bench latency: {scenario.name} (partial: {len(runs)} of {total} runs)",
                         sweep_key=sweep_key)

    if scenario.testbed is not None:
        from parm.testbed.latency import bench_on_testbed

        runs = bench_on_testbed(scenario, progress=not args.no_progress, on_run=partial_report)
    else:
        runs = bench_latency(scenario, progress=not args.no_progress, on_run=partial_report)
    paths = write_report(runs, out, title=f"parm bench latency: {scenario.name}", sweep_key=sweep_key)
    print((out / "results.md").read_text())
    print(f"results written to {out}/ ({', '.join(p.name for p in paths)})")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    import json

    from parm.bench.latency import calibrate_overhead
    from parm.bench.scenario import load_scenario
    from parm.serving.runtime.logs import configure_logging

    configure_logging("text", "warning")
    profile = calibrate_overhead(load_scenario(args.scenario, queries=args.queries), progress=not args.no_progress)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(profile, indent=1) + "\n")
    for mode, entry in profile["modes"].items():
        quantiles = entry["batches"]["1"]["quantiles_ms"]
        print(f"{mode}: frontend overhead median {quantiles['0.5']:.2f} ms, p99 {quantiles['0.99']:.2f} ms, "
              f"p99.9 {quantiles['0.999']:.2f} ms")
    print(f"profile written to {args.out}")
    return 0
