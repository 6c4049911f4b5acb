"""``parm serve``: the coded prediction-serving frontend over the Open Inference Protocol."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import socket
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from parm.serving.backends.remote.cluster import Endpoint, load_cluster, order_endpoints, pool_sizes
from parm.serving.core.coordinator import BATCHING, CoordinatorConfig
from parm.serving.core.pools import MODES
from parm.serving.engines import ENGINES, check_engine
from parm.serving.runtime.deployment import OUT_OF_RANGE, ServeOptions


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
        "  parm serve RUN --backend ray --address 127.0.0.1:6379                   # instances as Ray actors\n"
        "  parm serve RUN --backend remote --instances-file cluster.yaml           # in front of Triton or KServe",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_deployment_options(parser, batch_size=SERVE_BATCH_SIZE)
    parser.add_argument("--backend", choices=("local", "ray", "remote"), default="local",
                        help="local: one process per instance on this machine; ray: Ray actors; remote: model servers "
                             "that run already (Triton, KServe, `parm instance`), listed in --instances-file "
                             "(default: %(default)s)")
    parser.add_argument("--instances-file", type=Path, metavar="CLUSTER.yaml",
                        help="--backend remote: the model servers, one entry per instance (url, model, pool); "
                             "`parm export` writes a template. Sets the instances per pool (--instances is ignored)")
    parser.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    parser.add_argument("--instance-processes", type=int, metavar="N",
                        help="--backend local: host the instances in N processes (default: one per instance); "
                             "sharing saves memory and CPU on a small machine, at the cost of isolation")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--grpc-port", type=int, metavar="PORT",
                        help="also serve the protocol's gRPC API (KServe v2 GRPCInferenceService; tritonclient.grpc "
                             "works unchanged) on this port (default: REST only)")
    parser.add_argument("--max-pending", type=int, default=4096,
                        help="requests (and queries) served at once; more wait, unread (default: %(default)s)")
    parser.add_argument("--max-waiting", type=int,
                        help="requests that may wait for a place before new ones get 503 + Retry-After at once "
                             "(default: 4 x --max-pending)")
    parser.add_argument("--max-wait-ms", type=float, default=1000.0,
                        help="longest wait for a place before a 503 + Retry-After (default: %(default)s)")
    parser.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body (default: %(default)s)")
    parser.add_argument("--log-format", choices=("json", "text"), default="json", help="log lines (default: %(default)s)")
    parser.set_defaults(run=run)


SERVE_BATCH_SIZE = 8  # a server batches when queries queue up; replay, like the paper's runs, sends one per call


def add_deployment_options(parser: argparse.ArgumentParser, *, batch_size: int = 1) -> None:
    """What to serve and how: shared by `parm serve` and `parm replay`."""
    parser.add_argument("source", type=Path, metavar="RUN",
                        help="a coded run folder (parm train-parity / train-coder / make-run), or a base checkpoint folder for "
                        "--mode none, equal-resources or hedged")
    parser.add_argument("--mode", choices=MODES, default="parm",
                        help="parm: parity instances; equal-resources: the same extra instances as copies of F; "
                        "none: no redundancy; hedged: extra copies of F and a backup request after --hedge-after-ms "
                        "(default: %(default)s)")
    parser.add_argument("--instances", type=int, default=2,
                        help="base instances; every mode but none adds r*ceil(instances/k) more (default: %(default)s)")
    parser.add_argument("--k", type=int, default=2, help="k for sizing uncoded modes from a checkpoint (a run's code sets it)")
    parser.add_argument("--r", type=int, default=1, help="r for sizing uncoded modes from a checkpoint (a run's code sets it)")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="queries per instance call: with dynamic batching a maximum (an idle instance takes up to "
                        "this many queued queries, never waiting for more), with fixed batching exactly this many "
                        "(default: %(default)s)")
    parser.add_argument("--batching", choices=BATCHING, default="dynamic",
                        help="dynamic, or fixed: the paper's batches of exactly --batch-size (a batch waits at most "
                        "--group-wait-ms to fill), query i of each of k batches coded together (default: %(default)s)")
    parser.add_argument("--group-wait-ms", type=float, default=5.0,
                        help="encode a coding group that has not filled after this long (default: %(default)s)")
    parser.add_argument("--deadline-ms", type=float,
                        help="answer with the default prediction after this long (default: no deadline)")
    parser.add_argument("--hedge-after-ms", type=float, default=20.0,
                        help="--mode hedged: send a backup request after this long (default: %(default)s)")
    parser.add_argument("--verify", type=float, metavar="TOLERANCE",
                        help="check each coding group's k + r outputs against each other and rebuild one wrong "
                        "(Byzantine) output from the rest; a group counts as consistent while its syndrome is within "
                        "TOLERANCE of its outputs' norm (e.g. 0.05). Needs a linear or Berrut run with r >= 2; "
                        "queries then wait for their whole group, up to --verify-wait-ms (default: off)")
    parser.add_argument("--verify-wait-ms", type=float, default=100.0,
                        help="--verify: answer a group still short of outputs this long after its parities left as "
                        "without --verify (default: %(default)s)")
    parser.add_argument("--default-class", type=int,
                        help="a classifier's class of the default answer (default: the task's own, from the training "
                        "split: a classifier's most common class, a box regressor's mean box)")
    parser.add_argument("--slow", action="append", default=[], metavar="INSTANCE=MS",
                        help="emulate a straggler: instance INSTANCE holds each answer MS longer (repeatable)")
    parser.add_argument("--byzantine", action="append", default=[], metavar="INSTANCE=KIND",
                        help="emulate a wrong (Byzantine) instance: INSTANCE answers with noise added to its outputs "
                        "(KIND noise) or with its previous call's outputs (KIND stale); repeatable")
    parser.add_argument("--noop", action="store_true",
                        help="instances return zeros without running a model (to measure the frontend's own overhead)")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="what computes each instance's model: PyTorch, or ONNX Runtime on an export of the same "
                        "weights, checked against PyTorch at start (needs parm-serving[export]; default: %(default)s)")
    parser.add_argument("--name", help="model name in URLs (default: DATASET-MODEL of the base checkpoint)")
    parser.add_argument("--out-of-range", choices=OUT_OF_RANGE, default="refuse",
                        help="inputs outside the range the model was trained on: refuse them with a 400 or clip "
                             "them into it (non-finite ones are always refused; default: %(default)s)")


def require(ok: bool, message: str) -> None:
    """Refuse an option unless ``ok``: `parm` prints the ValueError as one line and exits 2, before anything starts."""
    if not ok:
        raise ValueError(message)


def parse_delays(items: list[str]) -> dict[int, float]:
    """``["0=50"]`` -> ``{0: 0.05}``: instance ids and added service times in seconds."""
    delays = {}
    for item in items:
        instance, sep, ms = item.partition("=")
        try:
            delay = float(ms) / 1000
        except ValueError:
            delay = math.nan
        require(bool(sep) and instance.strip().isdigit() and delay >= 0,
                f"--slow takes INSTANCE=MS with MS >= 0, e.g. --slow 0=50, got {item!r}")
        delays[int(instance)] = delay
    return delays


def parse_wrong(items: list[str]) -> dict[int, str]:
    """``["0=noise"]`` -> ``{0: "noise"}``: the Byzantine instances and how they answer."""
    from parm.serving.instance import WRONG_KINDS

    wrong = {}
    for item in items:
        instance, sep, kind = item.partition("=")
        require(bool(sep) and instance.strip().isdigit() and kind in WRONG_KINDS,
                f"--byzantine takes INSTANCE=KIND with KIND one of {', '.join(WRONG_KINDS)}, e.g. --byzantine 0=noise, "
                f"got {item!r}")
        wrong[int(instance)] = kind
    return wrong


def check_deployment_options(args: argparse.Namespace) -> None:
    """The options of `add_deployment_options` that no deployment can take, each refused naming its flag."""
    for flag, value in (("--instances", args.instances), ("--k", args.k), ("--r", args.r),
                        ("--batch-size", args.batch_size)):
        require(value >= 1, f"{flag} must be at least 1, got {value}")
    require(args.verify is None or args.verify > 0, f"--verify takes a tolerance more than 0, e.g. --verify 0.05, "
                                                    f"got {args.verify}")
    for flag, value in (("--group-wait-ms", args.group_wait_ms), ("--hedge-after-ms", args.hedge_after_ms),
                        ("--verify-wait-ms", args.verify_wait_ms)):
        require(value >= 0, f"{flag} must be 0 or more milliseconds, got {value}")  # NaN fails too
    require(args.deadline_ms is None or args.deadline_ms > 0,
            f"--deadline-ms must be more than 0 milliseconds (or left out: no deadline), got {args.deadline_ms}")
    if not args.noop:
        check_engine_option(args.engine)


def check_serve_options(args: argparse.Namespace) -> None:
    """`parm serve`'s own options that cannot work, each refused naming its flag (the host is checked by `bind`)."""
    require(1 <= args.port <= 65535, f"--port must be in 1..65535, got {args.port}")
    require(args.grpc_port is None or (1 <= args.grpc_port <= 65535 and args.grpc_port != args.port),
            f"--grpc-port must be in 1..65535 and not --port, got {args.grpc_port}")
    require(args.max_pending >= 1, f"--max-pending must be at least 1 (the requests served at once), "
                                   f"got {args.max_pending}")
    require(args.max_waiting is None or args.max_waiting >= 0,
            f"--max-waiting must be 0 or more requests, got {args.max_waiting}")
    require(math.isfinite(args.max_wait_ms) and args.max_wait_ms >= 0,
            f"--max-wait-ms must be 0 or more milliseconds, got {args.max_wait_ms}")
    require(math.isfinite(args.max_body_mb) and args.max_body_mb > 0,
            f"--max-body-mb must be a number of megabytes more than 0, got {args.max_body_mb}")
    require(args.instance_processes is None or args.instance_processes >= 1,
            f"--instance-processes must be at least 1 (or left out: one per instance), got {args.instance_processes}")


def check_engine_option(engine: str) -> None:
    """--engine ENGINE refused, naming the fix, when it cannot run here (`check_engine`)."""
    try:
        check_engine(engine)
    except ValueError as err:
        raise ValueError(f"--engine {engine}: {err}; or leave --engine out (PyTorch)") from None


BIND_FIXES = {
    errno.EADDRINUSE: "another process listens there: stop it, or pick another --port",
    errno.EACCES: "ports below 1024 need privileges: pick a --port from 1024 on",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address: pick --host 127.0.0.1 (this machine "
                         "only) or 0.0.0.0 (every interface)",
}


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any instance starts: a port in use or a wrong host costs one line."""
    from parm.serving.http.server import listen

    try:
        return listen(host, port)
    except socket.gaierror as err:
        raise ValueError(f"--host {host} does not resolve ({err.strerror}): give a name or address of this "
                         "machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
    except OSError as err:
        fix = BIND_FIXES.get(err.errno, "check --host and --port")
        raise ValueError(f"cannot listen on {host}:{port} ({err.strerror}): {fix}") from None


def remote_endpoints(args: argparse.Namespace) -> list[Endpoint] | None:
    """The cluster file's model servers in instance order, for --backend remote (None for the other backends)."""
    require((args.instances_file is not None) == (args.backend == "remote"),
            "--backend remote needs --instances-file CLUSTER.yaml (the model servers; `parm export` writes a "
            "template), and --instances-file goes with --backend remote only")
    return order_endpoints(load_cluster(args.instances_file)) if args.instances_file is not None else None


def serve_options(args: argparse.Namespace) -> ServeOptions:
    check_deployment_options(args)
    ms = 1e-3
    coding = CoordinatorConfig(
        k=args.k, r=args.r, batch_size=args.batch_size, batching=args.batching, group_wait=args.group_wait_ms * ms,
        deadline=args.deadline_ms * ms if args.deadline_ms is not None else None, hedge_after=args.hedge_after_ms * ms,
        verify=args.verify, verify_wait=args.verify_wait_ms * ms,
    )
    return ServeOptions(mode=args.mode, instances=args.instances, coding=coding, default_class=args.default_class,
                        noop=args.noop, delays=parse_delays(args.slow), wrong=parse_wrong(args.byzantine), name=args.name,
                        out_of_range=args.out_of_range, engine=args.engine)


def run(args: argparse.Namespace) -> NoReturn:
    """Check every option, bind the port, start the instances, serve until SIGINT or SIGTERM, drain, stop."""
    from parm.serving import Frontend, build_backend, build_deployment, build_server, configure_logging

    check_serve_options(args)
    options = serve_options(args)
    endpoints = remote_endpoints(args)
    if endpoints is not None:
        options = replace(options, pool_sizes=pool_sizes(endpoints))
    with bind(args.host, args.port) as sock:
        if args.grpc_port is not None:
            bind(args.host, args.grpc_port).close()  # in use: one line now, not a failed start-up later
        configure_logging(args.log_format)
        deployment = build_deployment(args.source, options)
        backend = build_backend(args.backend, args.address, args.instance_processes, endpoints)
        frontend = Frontend(deployment, backend, max_pending=args.max_pending, max_waiting=args.max_waiting,
                            max_wait_s=args.max_wait_ms / 1000)

        def announce(address: str) -> None:
            grpc = f", gRPC at {args.host}:{args.grpc_port}" if args.grpc_port is not None else ""
            print(f"parm serve: {deployment.model.name} ready at http://{address}{grpc} "
                  f"(mode {deployment.mode}, {len(deployment.instances)} instances)", flush=True)

        server = build_server(frontend, host=args.host, sock=sock, max_body_bytes=int(args.max_body_mb * 2**20),
                              on_ready=announce, grpc_port=args.grpc_port)
        server.run(sockets=[sock])
    code = 0
    if server.force_exit:  # a second Ctrl-C: uvicorn skipped the drain
        print("parm serve: stopped without draining (a second Ctrl-C): queries in flight were dropped", file=sys.stderr)
        code = 130
    # Nothing is left to release (the instances stopped; a worker still running exits as its stdin closes with this
    # process): skip the interpreter's teardown of torch, the models and the app, 0.3-0.5 s of CPU that every Ctrl-C
    # would wait out, as multiprocessing's children do.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
