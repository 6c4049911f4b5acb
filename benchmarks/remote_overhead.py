"""The frontend's cost through the remote backend: against the local backend and against the model server alone.

Run: .venv/bin/python benchmarks/remote_overhead.py [--rounds 3] [--seconds 8] [--rows ROW,ROW] [--out DIR]

One untrained Base-MLP placeholder run (sum code, k = 2, with a parity model that computes too), exported with
`parm export` to ONNX. Model servers: three `parm instance` processes (base, base, parity-0; REST and gRPC each)
and three KServe ModelServer processes hosting the ONNX export (benchmarks/thirdparty/kserve_onnx.py, ONNX
Runtime, one thread). Rows, each a server the client sends Fashion-MNIST JSON queries to:

- ``kserve-alone`` and ``instance-alone``: the first base server of each kind, called directly;
- ``none-local``, ``none-remote-instance``, ``none-remote-instance-grpc``, ``none-remote-kserve``: `parm serve
  --mode none` with one base instance, local (its own worker process) or remote (that first base server);
- ``parm-local``, ``parm-remote-instance``, ``parm-remote-instance-grpc``, ``parm-remote-kserve``: `parm serve
  --mode parm` with 2 base + 1 parity instances, local or remote (all three servers of a kind).

Every parameter is fixed here before any measurement: wrk -t1 -c32 -d8s --latency (as the hot-path issue's
table), 3 rounds that visit every row in turn, `parm serve`'s defaults otherwise (batch size 8, dynamic
batching). Prints a Markdown table of medians over rounds (requests/s, p50, p99, CPU per query of the process
the client talks to, with its children, and of the model servers behind a remote row) and writes results.json and
remote_overhead.png to --out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import markdown_table
from frontend_throughput import (Load, computing_run, cpu_seconds, descendants, fashion_mnist_body, free_port,
                                 machine, run_wrk)

from parm.export import export_run
from parm.runs import open_run
from parm.serving.backends.remote.cluster import Endpoint, dump_cluster
from parm.serving.core.pools import BASE_POOL, parity_pool
from parm.serving.runtime.deployment import base_model_name, pool_model_name

BENCHMARKS = Path(__file__).resolve().parent
KSERVE = BENCHMARKS / "thirdparty" / "kserve_onnx.py"
POOLS = (BASE_POOL, BASE_POOL, parity_pool(0))
READY_TIMEOUT_S = 300.0
ROWS = ("kserve-alone", "instance-alone", "none-local", "none-remote-instance", "none-remote-instance-grpc",
        "none-remote-kserve", "parm-local", "parm-remote-instance", "parm-remote-instance-grpc", "parm-remote-kserve")


@dataclass
class Process:
    """A server process, the line its log shows once it serves, and where it listens."""

    name: str
    command: list[str]
    port: int
    log: Path
    ready_mark: str
    grpc_port: int | None = None
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.ready_mark not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; its log:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)  # a benchmark waiting for servers to load, not a test synchronising

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid) + sum(cpu_seconds(p) for p in descendants(self.process.pid))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def model_servers(run: Path, repo: Path, logs: Path) -> tuple[list[Process], list[Process]]:
    """Three `parm instance` servers (REST + gRPC) and three KServe servers, for POOLS (both name their models as
    `parm export` does)."""
    instances, kserves = [], []
    for i, pool in enumerate(POOLS):
        port, grpc = free_port(), free_port()
        command = [sys.executable, "-m", "parm", "instance", str(run), "--pool", str(pool), "--port", str(port),
                   "--grpc-port", str(grpc), "--log-format", "text"]
        instances.append(Process(f"instance-{i}", command, port, logs / f"instance-{i}.log", " ready at http://",
                                 grpc_port=grpc))
        port = free_port()
        command = [sys.executable, str(KSERVE), str(repo), "--port", str(port), "--models", pool_model_name(open_run(run), pool)]
        kserves.append(Process(f"kserve-{i}", command, port, logs / f"kserve-{i}.log", "ready http://"))
    return instances, kserves


def frontend(name: str, run: Path, mode: str, logs: Path, cluster: Path | None) -> Process:
    port = free_port()
    command = [sys.executable, "-m", "parm", "serve", str(run), "--mode", mode, "--port", str(port),
               "--log-format", "text", "--instances", "1" if mode == "none" else "2"]
    if cluster is not None:
        command += ["--backend", "remote", "--instances-file", str(cluster)]
    return Process(name, command, port, logs / f"{name}.log", " ready at http://")


def write_cluster(path: Path, servers: list[Process], run: Path, grpc: bool = False) -> Path:
    endpoints = [Endpoint(pool, f"grpc://127.0.0.1:{s.grpc_port}" if grpc else f"http://127.0.0.1:{s.port}",
                          pool_model_name(open_run(run), pool), timeout_s=2.0)
                 for pool, s in zip(POOLS, servers, strict=False)]
    path.write_text(dump_cluster(endpoints))
    return path


@dataclass(frozen=True)
class Row:
    """The server the client calls, the model's name there, and the model servers it calls in turn (remote)."""

    server: Process
    model: str
    behind: tuple[Process, ...] = ()


def build_rows(run: Path, tmp: Path, logs: Path) -> tuple[dict[str, Row], list[Process]]:
    """Every row by name; and the model servers, to start first."""
    repo = tmp / "repo"
    export_run(run, repo)
    base = base_model_name(open_run(run).base.card())  # the name `parm export`, `parm instance` and `parm serve` give F
    instances, kserves = model_servers(run, repo, logs)
    clusters = {
        "instance": lambda n: write_cluster(tmp / f"instance-{n}.yaml", instances[:n], run),
        "instance-grpc": lambda n: write_cluster(tmp / f"grpc-{n}.yaml", instances[:n], run, grpc=True),
        "kserve": lambda n: write_cluster(tmp / f"kserve-{n}.yaml", kserves[:n], run),
    }
    rows = {"kserve-alone": Row(kserves[0], base), "instance-alone": Row(instances[0], base)}
    for mode, n in (("none", 1), ("parm", 3)):
        rows[f"{mode}-local"] = Row(frontend(f"{mode}-local", run, mode, logs, None), base)
        for kind, cluster in clusters.items():
            name = f"{mode}-remote-{kind}"
            behind = tuple((kserves if kind == "kserve" else instances)[:n])
            rows[name] = Row(frontend(name, run, mode, logs, cluster(n)), base, behind)
    return rows, [*instances, *kserves]


def measure(rows: dict[str, Row], rounds: int, seconds: float, script: Path) -> list[dict]:
    """Every row in turn, ``rounds`` times: wrk's figures, and CPU per query of the server called (with its
    children: a local backend's instances) and of the model servers behind it (remote)."""
    records = []
    for round_ in range(1, rounds + 1):
        for name, row in rows.items():
            before, behind = row.server.cpu(), sum(p.cpu() for p in row.behind)
            load: Load = run_wrk(f"http://127.0.0.1:{row.server.port}/v2/models/{row.model}/infer", script, seconds,
                                 32)
            per_query = 1e6 / max(load.requests, 1)
            cpu_us = per_query * (row.server.cpu() - before)
            behind_us = per_query * (sum(p.cpu() for p in row.behind) - behind)
            record = {"round": round_, "row": name, **asdict(load), "cpu_us_per_query": cpu_us,
                      "model_servers_cpu_us_per_query": behind_us}
            print(f"round {round_}/{rounds} {name}: {load.requests_per_s:,.0f} req/s p50 {load.p50_ms:.2f} ms "
                  f"p99 {load.p99_ms:.2f} ms, {cpu_us:,.0f} + {behind_us:,.0f} us CPU/query"
                  + (f"  ERRORS {load.non_2xx} non-2xx {load.socket_errors} socket"
                     if load.non_2xx or load.socket_errors else ""), flush=True)
            records.append(record)
    return records


def medians(records: list[dict]) -> list[dict]:
    by_row: dict[str, list[dict]] = {}
    for record in records:
        by_row.setdefault(record["row"], []).append(record)
    return [{"row": row, **{key: statistics.median(r[key] for r in runs)
                            for key in ("requests_per_s", "p50_ms", "p99_ms", "cpu_us_per_query",
                                        "model_servers_cpu_us_per_query")},
             "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
             "rounds": ", ".join(f"{r['requests_per_s']:,.0f}" for r in runs)} for row, runs in by_row.items()]


def chart(figures: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.4 * len(figures) + 1.5), sharey=True)
    names = [f["row"] for f in figures][::-1]
    left.barh(names, [f["requests_per_s"] for f in figures][::-1], color="tab:blue", alpha=0.75)
    left.set_xlabel("requests/s (median of rounds)")
    right.barh(names, [f["p50_ms"] for f in figures][::-1], color="tab:orange", alpha=0.75)
    right.set_xlabel("p50 latency, ms (wrk, 32 connections)")
    fig.suptitle("parm in front of model servers: remote backend vs local, vs the server alone")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every row (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of wrk per row and round (default: 8)")
    parser.add_argument("--rows", help=f"comma-separated rows to measure (default: all: {', '.join(ROWS)})")
    parser.add_argument("--out", type=Path, default=Path("docs/serving/remote-overhead"),
                        help="folder for results.json and the chart (default: %(default)s)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    picked = args.rows.split(",") if args.rows else list(ROWS)
    unknown = sorted(set(picked) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; rows: {', '.join(ROWS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parm-remote-overhead-") as tmp:
        tmp = Path(tmp)
        run = computing_run(tmp / "run")
        script = fashion_mnist_body().wrk_script(tmp)
        rows, servers = build_rows(run, tmp, args.out / "logs")
        rows = {name: rows[name] for name in picked}
        frontends = [row.server for row in rows.values() if row.server not in servers]
        try:
            for process in servers:  # model servers first: the frontends find them ready
                process.start()
            for process in servers:
                process.wait_ready()
            for process in frontends:
                process.start()
            for process in frontends:
                process.wait_ready()
            records = measure(rows, args.rounds, args.seconds, script)
        finally:
            for process in [*frontends, *servers]:
                process.stop()
    figures = medians(records)
    columns = {"row": "row", "requests_per_s": "requests/s", "p50_ms": "p50 ms", "p99_ms": "p99 ms",
               "cpu_us_per_query": "CPU us/query (server called)",
               "model_servers_cpu_us_per_query": "CPU us/query (model servers behind)", "errors": "errors", "rounds": "requests/s per round"}
    print("\n" + markdown_table(figures, columns))
    (args.out / "results.json").write_text(json.dumps({
        "client": "wrk -t1 -c32 --latency", "seconds": args.seconds, "rounds": args.rounds, "machine": machine(),
        "measurements": records, "medians": figures}, indent=2) + "\n")
    chart(figures, args.out / "remote_overhead.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'remote_overhead.png'}")


if __name__ == "__main__":
    main()
