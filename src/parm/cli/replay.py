"""``parm replay``: send test-split queries through a local coded server and score the answers."""

from __future__ import annotations

import argparse
from pathlib import Path

from parm.cli.serve import add_deployment_options, serve_options
from parm.serving.backends.remote.cluster import load_cluster, order_endpoints


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay test-split queries through a local server (a slow or killed instance) and score the answers",
        description="Start `parm serve` on loopback with local instances, send test-split queries with tritonclient "
        "from several threads, optionally SIGKILL one instance mid-load, and print how many answers were original, "
        "reconstructed or default, each scored against the true targets in the task's measure (accuracy, or mean IoU "
        "for boxes) with the offline A_d "
        "(`parm evaluate`) beside them.",
        epilog="example: parm replay runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --queries 300 --slow 0=50",
    )
    add_deployment_options(parser)
    parser.add_argument("--queries", type=int, default=300, help="test-split queries to send (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default: %(default)s)")
    parser.add_argument("--kill", metavar="INSTANCE@ANSWERS",
                        help="SIGKILL instance INSTANCE once ANSWERS answers are in, e.g. 0@100 (it is restarted)")
    parser.add_argument("--backend", choices=("local", "remote"), default="local",
                        help="local: worker processes; remote: model servers over the Open Inference Protocol, those "
                             "of --instances-file, else one `parm instance` server per instance started here, "
                             "whose process --kill crashes and starts again (default: %(default)s)")
    parser.add_argument("--instances-file", type=Path, metavar="CLUSTER.yaml",
                        help="--backend remote: model servers that run already (see `parm serve --help`)")
    parser.add_argument("--seed", type=int, default=0, help="which test queries, in which order (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the report here as JSON (and .md beside it)")
    parser.set_defaults(run=run)


def parse_kill(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    instance, sep, after = text.partition("@")
    if not sep or not instance.isdigit() or not after.isdigit():
        raise ValueError(f"--kill takes INSTANCE@ANSWERS, e.g. --kill 0@100, got {text!r}")
    return int(instance), int(after)


def run(args: argparse.Namespace) -> int:
    from parm.bench.replay import replay
    from parm.serving.runtime.logs import configure_logging

    configure_logging("text", "warning")
    if args.instances_file is not None and args.backend != "remote":
        raise ValueError("--instances-file goes with --backend remote")
    endpoints = order_endpoints(load_cluster(args.instances_file)) if args.instances_file is not None else None
    report = replay(args.source, serve_options(args), queries=args.queries, concurrency=args.concurrency,
                    kill=parse_kill(args.kill), seed=args.seed, backend=args.backend, endpoints=endpoints)
    print(f"{report.answered} of {report.queries} queries answered (mode {report.mode}"
          + (f", instance {report.killed_instance} killed mid-load" if report.killed_instance is not None else "")
          + f", {report.instance_failures} instance failure(s) and {report.instance_recoveries} recovery(ies) seen)")
    print(report.table())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report.to_json())
        args.out.with_suffix(".md").write_text(report.table() + "\n")
        print(f"report written to {args.out}")
    return 0
