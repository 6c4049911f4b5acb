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
        "frontend with local emulated instances: for each sweep value and each mode, start the server, replay the "
        "same Poisson arrivals over the Open Inference Protocol from a separate load-generator process, and "
        "record every query's latency and answer kind. Writes results.json, results.md, cdf.png and, for a "
        "sweep, latency_vs_<key>.png.",
        epilog="example: parm bench latency benchmarks/scenarios/standard.yaml --queries 5000",
    )
    add_scenario_options(latency)
    latency.set_defaults(run=run)


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
    scenario = load_scenario(args.scenario, queries=args.queries, rate=args.rate, modes=modes)
    if args.rate is not None and scenario.sweep is not None and scenario.sweep[0] == "rate":
        scenario = replace(scenario, sweep=None)  # an explicit rate replaces a rate sweep
    return scenario


def run(args: argparse.Namespace) -> int:
    from parm.bench.latency import bench_latency
    from parm.bench.report import write_report
    from parm.serving.logs import configure_logging

    configure_logging("text", "warning")
    scenario = load(args)
    runs = bench_latency(scenario, progress=not args.no_progress)
    out = args.out or Path("runs/bench") / scenario.name
    paths = write_report(runs, out, title=f"parm bench latency: {scenario.name}",
                         sweep_key=scenario.sweep[0] if scenario.sweep else None)
    print((out / "results.md").read_text())
    print(f"results written to {out}/ ({', '.join(p.name for p in paths)})")
    return 0
