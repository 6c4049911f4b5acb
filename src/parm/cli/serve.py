"""``parm serve``: the coded prediction-serving frontend over the Open Inference Protocol."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from parm.serving.core.coordinator import CoordinatorConfig
from parm.serving.core.pools import MODES
from parm.serving.runtime.deployment import ServeOptions


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve a trained model with coded redundancy (ParM) over the Open Inference Protocol",
        description=textwrap.fill(width=100, text="Serve a trained model over HTTP (Open Inference Protocol / KServe v2, with Triton's binary "
        "tensor extension: tritonclient.http works unchanged). Queries are grouped k at a time; each goes to a base "
        "instance at once, each full group's r parity queries go to parity instances, and every query is answered "
        "by the first of its own prediction, its reconstruction, or the default at its deadline. The response "
        "parameter `answer` says which (original, reconstructed, default). Metrics at /metrics (Prometheus)."),
        epilog="examples:\n"
        "  parm serve runs/parity/fashion-mnist-base-mlp-sum-k2-r1                 # ParM, 2 base + 1 parity instance\n"
        "  parm serve runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --mode equal-resources\n"
        "  parm serve runs/base/fashion-mnist-base-mlp --mode none --instances 4\n"
        "  parm serve RUN --backend ray --address 127.0.0.1:6379                   # instances as Ray actors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_deployment_options(parser)
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="local: one process per instance on this machine; ray: Ray actors (default: %(default)s)")
    parser.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    parser.add_argument("--instance-processes", type=int, metavar="N",
                        help="--backend local: host the instances in N processes (default: one per instance); "
                             "sharing saves memory and CPU on a small machine, at the cost of isolation")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--max-pending", type=int, default=4096,
                        help="queries in flight before new ones get 503 + Retry-After (default: %(default)s)")
    parser.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body (default: %(default)s)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="log lines (default: %(default)s)")
    parser.set_defaults(run=run)


def add_deployment_options(parser: argparse.ArgumentParser) -> None:
    """What to serve and how: shared by `parm serve` and `parm replay`."""
    parser.add_argument("source", type=Path, metavar="RUN",
                        help="a coded run folder (parm train-parity / train-coder), or a base checkpoint folder for "
                        "--mode none, equal-resources or hedged")
    parser.add_argument("--mode", choices=MODES, default="parm",
                        help="parm: parity instances; equal-resources: the same extra instances as copies of F; "
                        "none: no redundancy; hedged: extra copies of F and a backup request after --hedge-after-ms "
                        "(default: %(default)s)")
    parser.add_argument("--instances", type=int, default=2,
                        help="base instances; every mode but none adds r*ceil(instances/k) more (default: %(default)s)")
    parser.add_argument("--k", type=int, default=2, help="k for sizing uncoded modes from a checkpoint (a run's code sets it)")
    parser.add_argument("--r", type=int, default=1, help="r for sizing uncoded modes from a checkpoint (a run's code sets it)")
    parser.add_argument("--batch-size", type=int, default=1, help="most queries per instance call (default: %(default)s)")
    parser.add_argument("--group-wait-ms", type=float, default=5.0,
                        help="encode a coding group that has not filled after this long (default: %(default)s)")
    parser.add_argument("--deadline-ms", type=float,
                        help="answer with the default prediction after this long (default: no deadline)")
    parser.add_argument("--hedge-after-ms", type=float, default=20.0,
                        help="--mode hedged: send a backup request after this long (default: %(default)s)")
    parser.add_argument("--default-class", type=int, default=0, help="class of the default prediction (default: %(default)s)")
    parser.add_argument("--slow", action="append", default=[], metavar="INSTANCE=MS",
                        help="emulate a straggler: instance INSTANCE holds each answer MS longer (repeatable)")
    parser.add_argument("--noop", action="store_true",
                        help="instances return zeros without running a model (to measure the frontend's own overhead)")
    parser.add_argument("--name", help="model name in URLs (default: DATASET-MODEL of the base checkpoint)")


def parse_delays(items: list[str]) -> dict[int, float]:
    """``["0=50"]`` -> ``{0: 0.05}``: instance ids and added service times in seconds."""
    delays = {}
    for item in items:
        instance, sep, ms = item.partition("=")
        if not sep or not instance.strip().isdigit():
            raise ValueError(f"--slow takes INSTANCE=MS, e.g. --slow 0=50, got {item!r}")
        delays[int(instance)] = float(ms) / 1000
    return delays


def serve_options(args: argparse.Namespace) -> ServeOptions:
    ms = 1e-3
    coding = CoordinatorConfig(
        k=args.k, r=args.r, batch_size=args.batch_size, group_wait=args.group_wait_ms * ms,
        deadline=args.deadline_ms * ms if args.deadline_ms is not None else None, hedge_after=args.hedge_after_ms * ms,
    )
    return ServeOptions(mode=args.mode, instances=args.instances, coding=coding, default_class=args.default_class,
                        noop=args.noop, delays=parse_delays(args.slow), name=args.name)


def run(args: argparse.Namespace) -> int:
    from parm.serving import Frontend, build_backend, build_deployment, build_server, configure_logging

    configure_logging(args.log_format)
    deployment = build_deployment(args.source, serve_options(args))
    backend = build_backend(args.backend, args.address, args.instance_processes)
    frontend = Frontend(deployment, backend, max_pending=args.max_pending)

    def announce(address: str) -> None:
        print(f"parm serve: {deployment.model.name} ready at http://{address} "
              f"(mode {deployment.mode}, {len(deployment.instances)} instances)", flush=True)

    server = build_server(frontend, host=args.host, port=args.port, max_body_bytes=int(args.max_body_mb * 2**20),
                          on_ready=announce)
    server.run()
    return 0
