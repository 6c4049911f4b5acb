"""``parm simulate``: the latency experiment of a scenario file on a discrete-event model of the cluster."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from parm.cli.bench import add_scenario_options, load


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "simulate",
        help="simulate a latency scenario (modes, load, shuffles, faults) at any scale, in seconds",
        description="Run every variant and mode of a scenario file on a discrete-event model of the cluster: the "
        "serving coordinator itself on a virtual clock, with instance service times drawn from the scenario's "
        "profile, slowed by background shuffles, and the scenario's failures. Writes results.json, results.md, "
        "cdf.png and, for a sweep, latency_vs_<key>.png (paper Fig. 12), like `parm bench latency`.",
        epilog="example: parm simulate benchmarks/scenarios/standard.yaml --base-instances 10000 --queries 1000000",
    )
    add_scenario_options(parser)
    parser.add_argument("--base-instances", type=int, help="base-model instances (default: the scenario's)")
    parser.add_argument("--fit", type=Path, metavar="PROFILE.json",
                        help="predict a testbed scenario from the laws `parm testbed fit` learned on another one "
                        "(call delays while a shuffle touches a host and while none does, the client's cost), "
                        "with random streams of the simulation's own")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from parm.bench.report import write_report
    from parm.bench.simulator import simulate

    scenario = load(args)
    if args.fit is not None:
        from parm.bench.fit import fitted_scenario

        scenario = fitted_scenario(scenario, args.fit)
    if args.base_instances is not None:
        scenario = replace(scenario, base_instances=args.base_instances)
    plan = [(label, variant, mode) for label, variant in scenario.variants() for mode in scenario.modes]
    runs = [simulate(variant, mode, label=label, progress=not args.no_progress)
            for label, variant, mode in tqdm(plan, desc=f"simulate {scenario.name}", unit="run",
                                             disable=args.no_progress)]
    out = args.out or Path("runs") / "simulate" / scenario.name
    title = (f"parm simulate: {scenario.name} ({scenario.base_instances} base instances, {scenario.queries:,} queries"
             + (f", fitted on {args.fit.name})" if args.fit is not None else ")"))
    paths = write_report(runs, out, title=title, sweep_key=scenario.sweep[0] if scenario.sweep else None)
    print(paths[1].read_text())  # results.md: the table and parm's change against each baseline
    print(f"results written to {out}/ ({', '.join(path.name for path in paths)})")
    return 0
