"""``parm instance``: serve one model of a run (base or parity j) as a model server for the remote backend."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from parm.cli.serve import bind, check_engine_option, require
from parm.serving.core.pools import parse_pool
from parm.serving.engines import ENGINES


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "instance",
        help="serve one model of a run (base or parity J) over the Open Inference Protocol, for --backend remote",
        description="Serve one model of a run, the base model F or parity model J, over the Open Inference Protocol "
        "(REST with Triton's binary tensors), one batch at a time, in this process: the model server to run on each "
        "machine of a cluster that `parm serve --backend remote` fronts. The model is named as `parm export` names "
        "it (BASE for F, BASE-parity-J for parity model J).",
        epilog="examples:\n"
        "  parm instance runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --pool base --port 9001\n"
        "  parm instance runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --pool parity-0 --port 9011\n"
        "then list them in a cluster file for `parm serve RUN --backend remote --instances-file cluster.yaml`",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="RUN", help="a coded run folder, or a base checkpoint folder")
    parser.add_argument("--pool", default="base", help="which model: base, or parity-J (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=9001, help="port (default: %(default)s)")
    parser.add_argument("--grpc-port", type=int, metavar="PORT",
                        help="also serve the protocol's gRPC API on this port (grpc:// URLs in a cluster file)")
    parser.add_argument("--name", help="the served model's name (default: the name `parm export` gives it)")
    parser.add_argument("--threads", type=int, default=1, help="threads that compute the model (default: %(default)s)")
    parser.add_argument("--noop", action="store_true", help="answer zeros without running the model (benchmarks)")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="what computes the model: PyTorch, or ONNX Runtime on an export of the same weights, "
                        "checked against PyTorch at start (needs parm-serving[export]; default: %(default)s)")
    parser.add_argument("--slow-ms", type=float, default=0.0,
                        help="add this many milliseconds to every batch (an emulated slow machine; default: 0)")
    parser.add_argument("--emulation", type=Path, metavar="FILE.json",
                        help="hold each answer to an emulated service time (a JSON `parm.workload.emulation.Emulation`,"
                             " as the bench writes it) instead of the time the computation took")
    parser.add_argument("--instance-id", type=int, default=0,
                        help="which instance's seeded service-time stream --emulation draws (default: %(default)s)")
    parser.add_argument("--max-pending", type=int, default=256,
                        help="requests held at once; more wait, unread (default: %(default)s)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="log lines (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> NoReturn:
    """Bind, load the model, serve until SIGINT or SIGTERM."""
    from parm.serving.http.server import build_server
    from parm.serving.instance_service import build_model_service
    from parm.serving.runtime.logs import configure_logging

    require(1 <= args.port <= 65535, f"--port must be in 1..65535, got {args.port}")
    require(args.grpc_port is None or (1 <= args.grpc_port <= 65535 and args.grpc_port != args.port),
            f"--grpc-port must be in 1..65535 and not --port, got {args.grpc_port}")
    require(args.threads >= 1, f"--threads must be at least 1, got {args.threads}")
    require(args.slow_ms >= 0, f"--slow-ms must be 0 or more milliseconds, got {args.slow_ms}")
    require(args.max_pending >= 1, f"--max-pending must be at least 1, got {args.max_pending}")
    if not args.noop:
        check_engine_option(args.engine)
    emulation = None
    if args.emulation is not None:
        from parm.workload.emulation import Emulation

        emulation = Emulation.from_dict(json.loads(args.emulation.read_text()))
    service = build_model_service(args.source, parse_pool(args.pool), noop=args.noop, delay_s=args.slow_ms / 1000,
                                  threads=args.threads, name=args.name, max_pending=args.max_pending,
                                  emulation=emulation, instance_id=args.instance_id, engine=args.engine)
    with bind(args.host, args.port) as sock:
        if args.grpc_port is not None:
            bind(args.host, args.grpc_port).close()  # in use: one line now, not a failed start-up later
        configure_logging(args.log_format)

        def announce(address: str) -> None:
            grpc = f", gRPC at {args.host}:{args.grpc_port}" if args.grpc_port is not None else ""
            print(f"parm instance: {service.model.name} ({args.pool}) ready at http://{address}{grpc}", flush=True)

        server = build_server(service, host=args.host, sock=sock, on_ready=announce, grpc_port=args.grpc_port)
        server.run(sockets=[sock])
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130 if server.force_exit else 0)  # as `parm serve`: skip the interpreter's teardown of torch
