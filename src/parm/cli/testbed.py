"""``parm testbed``: hosts in network namespaces on shaped links, on this machine, inside a sandbox of their own."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "testbed", help="a multi-host testbed on this machine (network namespaces, shaped links; needs root)",
        description="Hosts on one machine: one network namespace per host, each on a link shaped with tc to a "
        "bridge, all inside a sandbox (unshare --net --mount --pid) that the kernel removes when the command "
        "ends, however it ends: its addresses exist nowhere else and nothing is left behind.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="build a small testbed, time a transfer on its links, serve queries through it, tear it down",
        description="Build HOSTS hosts on links of RATE, time one 16 MB transfer between two hosts and back, "
        "serve QUERIES queries through a coded frontend whose no-op instances run on the hosts while shuffles of "
        "128-256 MB load the links, tear everything down, and print the report as JSON.",
        epilog="example: parm testbed check --hosts 3 --rate-mbit 200 --queries 200")
    check.add_argument("--hosts", type=int, default=3, help="hosts (default: %(default)s)")
    check.add_argument("--rate-mbit", type=float, default=200.0, help="each link's rate, each way (default: 200)")
    check.add_argument("--qdisc", choices=("pfifo", "bfifo", "tbf"), default="pfifo",
                       help="the links' queue: pfifo/bfifo under an htb shaper, or tbf (default: %(default)s)")
    check.add_argument("--limit", type=int, default=1000,
                       help="queue length: packets (pfifo), bytes (bfifo) or ms (tbf) (default: %(default)s)")
    check.add_argument("--queries", type=int, default=200, help="queries to serve (default: %(default)s)")
    check.add_argument("--out", type=Path, help="also write the report here")
    fit = actions.add_parser(
        "fit", help="learn the simulator's model of the testbed from one scenario run on it",
        description="Run a testbed scenario with a constant service time (every mode), record each call's time at "
        "the frontend and each shuffle transfer, and write the laws a simulation draws from: per mode, a call's "
        "delay beyond the service time while a shuffle touches its host and while none does, the client's cost "
        "beyond the frontend's latency, and the shuffles' goodput. `parm simulate SCENARIO --fit PROFILE` then "
        "predicts other testbed scenarios from them. Also writes the run's latency report and its raw trace.",
        epilog="example: parm testbed fit benchmarks/scenarios/testbed-fit.yaml --out benchmarks/profiles/testbed-2core.json")
    fit.add_argument("scenario", type=Path, metavar="CONFIG.yaml", help="testbed scenario with a constant service time")
    fit.add_argument("--out", type=Path, required=True, help="profile JSON to write")
    fit.add_argument("--report", type=Path, help="folder for the run's latency report and trace.npz "
                     "(default: runs/testbed-fit/<scenario name>)")
    fit.add_argument("--queries", type=int, help="measured queries per mode (default: the scenario's)")
    fit.add_argument("--from-trace", type=Path, metavar="TRACE.npz",
                     help="fit from the trace.npz of an earlier run of the same scenario instead of running it")
    fit.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parm.testbed import sandbox

    if args.action == "fit" and args.from_trace is not None:
        return run_fit(args)  # a computation on a saved trace: no testbed needed
    if not sandbox.inside():
        return sandbox.rerun_inside("the testbed cannot run here")
    if args.action == "fit":
        return run_fit(args)
    from parm.testbed.check import CheckOptions, run_check
    from parm.workload.links import LinkSpec

    options = CheckOptions(hosts=args.hosts, link=LinkSpec(args.rate_mbit, args.qdisc, args.limit),
                           queries=args.queries)
    text = json.dumps(run_check(options), indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from parm.bench.fit import fit_profile, load_traces, save_traces
    from parm.bench.report import write_report
    from parm.bench.scenario import load_scenario
    from parm.serving.runtime.logs import configure_logging
    from parm.testbed.latency import bench_on_testbed

    configure_logging("text", "warning")
    scenario = load_scenario(args.scenario, queries=args.queries)
    report = args.report or Path("runs/testbed-fit") / scenario.name
    if args.from_trace is not None:
        traces = load_traces(args.from_trace)
    else:
        runs = bench_on_testbed(scenario, progress=not args.no_progress)
        traces = {}
        for run in runs:
            traces.setdefault(run.mode, []).append(run.trace)
        write_report(runs, report, title=f"parm testbed fit: {scenario.name}")
        save_traces(traces, report / "trace.npz")
    profile = fit_profile(scenario, traces)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(profile, indent=1) + "\n")
    for mode, entry in profile["modes"].items():
        idle, busy = (entry["call_delay"][kind]["quantiles_ms"] for kind in ("idle", "busy"))
        print(f"{mode}: call delay idle p50 {idle['0.5']:.2f} / p99.9 {idle['0.999']:.2f} ms, busy p50 "
              f"{busy['0.5']:.2f} / p99.9 {busy['0.999']:.2f} ms ({entry['busy_share']:.0%} of calls busy)")
    print(f"shuffle goodput {profile['shuffle_mb_s'] or 0:.0f} MB/s; profile written to {args.out}"
          + ("" if args.from_trace else f", report and trace to {report}/"))
    return 0
