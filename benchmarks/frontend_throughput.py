"""Requests/s of parm's HTTP frontend against bare ASGI echo servers of the same query, side by side.

Run: .venv/bin/python benchmarks/frontend_throughput.py [--rounds 3] [--seconds 8] [--rows ROW,ROW] [--no-paper-size]
Starts every row's server on its own loopback port once: bare echo apps (benchmarks/echo_apps.py: standard
json or orjson under uvicorn, orjson under granian) and `parm serve` of placeholder runs (sum code, k = 2) in
modes none and parm, with no-op instances and with real untrained Base-MLP ones (computed by PyTorch, and by ONNX
Runtime: `--engine onnx`). Then, in rounds that visit every row in turn so that all see the same machine noise, it
measures each with wrk (32 keep-alive connections; parm's own closed-loop client when wrk is missing): requests/s,
p50/p99 latency, and the server's CPU per query from /proc (the frontend process, and parm's instance processes
apart). Fashion-MNIST queries travel as JSON
(10 KB); paper-size ones (3 x 224 x 224, 1,000 classes) as binary tensors (600 KB). Parm's six Fashion-MNIST
rows are also driven open loop at --rate queries/s (seeded Poisson arrivals) for their CPU per query at a fixed
load. Prints Markdown tables of the medians over rounds and writes results.json and throughput.png to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from common import markdown_table

from parm.bench.loadgen import TRANSPORT_FAILURE, Sample, closed_loop, open_loop
from parm.bench.machine_speed import machine_speed
from parm.bench.placeholder import placeholder_run
from parm.bench.placement import descendants
from parm.models import build_model
from parm.runs import open_run
from parm.serving.http.protocol import HEADER_LENGTH
from parm.workload.arrivals import arrival_times

BENCHMARKS = Path(__file__).resolve().parent
MODEL = "bench"
PATH = f"/v2/models/{MODEL}/infer"
PAPER_SHAPE, PAPER_CLASSES = (3, 224, 224), 1000
UVICORN = ["-m", "uvicorn", "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
GRANIAN = ["-m", "granian", "--interface", "asgi", "--workers", "1", "--no-ws", "--log-level", "warning"]
READY_TIMEOUT_S, STOP_TIMEOUT_S = 300.0, 30.0


# --- query bodies ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """One query's HTTP body and the headers that go with it."""

    name: str
    payload: bytes
    headers: dict[str, str]

    def http_request(self) -> bytes:
        """The complete HTTP/1.1 request, for parm's own load generator."""
        lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in self.headers.items()),
                 f"Content-Length: {len(self.payload)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.payload

    def wrk_script(self, folder: Path) -> Path:
        """A wrk Lua script posting this body (read from a file next to it)."""
        payload = folder / f"{self.name}.body"
        payload.write_bytes(self.payload)
        headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in self.headers.items())
        script = folder / f"{self.name}.lua"
        script.write_text(f'wrk.method = "POST"\n{headers}local f = io.open([[{payload}]], "rb")\n'
                          "wrk.body = f:read(\"*a\")\nf:close()\n")
        return script


def fashion_mnist_body(seed: int = 0) -> Body:
    """A Fashion-MNIST-looking query as JSON: about half the pixels 0, the rest k/255, each float32's full repr."""
    rng = np.random.default_rng(seed)
    pixels = np.where(rng.random(784) < 0.5, 0, rng.integers(1, 256, 784)).astype(np.float32) / np.float32(255)
    query = {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": pixels.tolist()}]}
    return Body("fashion-mnist", json.dumps(query).encode(), {"Content-Type": "application/json"})


def paper_body(seed: int = 0) -> Body:
    """A paper-size query (1 x 3 x 224 x 224 FP32 in [0, 1)) as a binary tensor after its JSON header."""
    x = np.random.default_rng(seed).random((1, *PAPER_SHAPE), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape),
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    return Body("paper", header + x.tobytes(),
                {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))})


# --- rows and their servers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A server to measure: its command (the port is added at start) and the body it is sent."""

    name: str
    body: str
    command: tuple[str, ...]
    mode: str | None = None  # parm's mode for a `parm serve`, whose children are instances; None for an echo
    skip: str | None = None

    @property
    def parm(self) -> bool:
        return self.mode is not None


def echo_row(name: str, body: str, server: str, app: str) -> Row:
    """A bare echo app under uvicorn or granian (granian skipped, with the reason, when it is not installed)."""
    command = (*UVICORN, f"echo_apps:{app}") if server == "uvicorn" else (*GRANIAN, f"echo_apps:{app}")
    missing = importlib.util.find_spec(server) is None
    return Row(name, body, command, skip=f"{server} is not importable" if missing else None)


def parm_row(name: str, body: str, run: Path, mode: str, noop: bool, extra: tuple[str, ...] = ()) -> Row:
    """`parm serve RUN --mode MODE [--noop] EXTRA...`."""
    command = ("-m", "parm", "serve", str(run), "--mode", mode, "--name", MODEL, "--log-format", "text",
               *(("--noop",) if noop else ()), *extra)
    return Row(name, body, command, mode=mode)


def all_rows(small: Path, paper: Path, extra: tuple[str, ...] = ()) -> list[Row]:
    """Every row, in measuring order: Fashion-MNIST-size ones, then paper-size ones (``extra``: more `parm serve`
    options)."""
    return [
        echo_row("echo-json-uvicorn", "fashion-mnist", "uvicorn", "json_app"),
        echo_row("echo-orjson-uvicorn", "fashion-mnist", "uvicorn", "orjson_app"),
        echo_row("echo-orjson-granian", "fashion-mnist", "granian", "orjson_app"),
        *(parm_row(f"parm-{mode}{'-noop' * noop}", "fashion-mnist", small, mode, noop, extra)
          for noop in (True, False) for mode in ("none", "parm")),
        *(parm_row(f"parm-{mode}-onnx", "fashion-mnist", small, mode, False, ("--engine", "onnx", *extra))
          for mode in ("none", "parm")),
        echo_row("echo-orjson-uvicorn-paper", "paper", "uvicorn", "orjson_app"),
        *(parm_row(f"parm-{mode}-noop-paper", "paper", paper, mode, True, extra) for mode in ("none", "parm")),
    ]


ROW_NAMES = [row.name for row in all_rows(Path("RUN"), Path("RUN"))]


def computing_run(root: Path) -> Path:
    """A placeholder run whose parity instance can compute too: an untrained parity model next to it."""
    run = open_run(placeholder_run(root))
    card = run.base.card()
    run.save_parity_model(0, build_model(card.model, card.input_shape, card.num_classes), card)
    return run.path


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A row's server process, its port and its log."""

    row: Row
    port: int
    log: Path
    process: subprocess.Popen
    helpers: list[tuple[int, bytes]] = field(default_factory=list)  # (pid, cmdline) of its children once ready

    @classmethod
    def start(cls, row: Row, logs: Path) -> Server:
        port, log = free_port(), logs / f"{row.name}.log"
        command = [sys.executable, *row.command, "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=None if row.parm else BENCHMARKS)
        return cls(row, port, log, process)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        """Until `parm serve` prints "ready at", or an echo server accepts connections; fail with its log."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (("ready at" in self.log.read_text(errors="replace")) if self.row.parm else self._accepts()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.row.name} did not start (exit code {self.process.poll()}); "
                                   f"its log:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        self.helpers = [(pid, _cmdline(pid)) for pid in descendants(self.process.pid)]

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def check(self, body: Body) -> None:
        """One query, which must be answered 200."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", PATH, body=body.payload, headers=body.headers)
            answer = connection.getresponse()
            text = answer.read()[:2000].decode(errors="replace")
        finally:
            connection.close()
        if answer.status != 200:
            raise RuntimeError(f"{self.row.name} answered a check query with {answer.status}: {text}")

    def stop(self) -> None:
        """SIGINT, then SIGKILL after a timeout; then any of its children still left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid, cmdline in self.helpers:
            _reap(pid, cmdline)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _reap(pid: int, cmdline: bytes, grace_s: float = 5.0) -> None:
    """Kill ``pid`` if it outlives its parent by ``grace_s`` and is still the same program."""
    deadline = time.monotonic() + grace_s
    while _cmdline(pid) == cmdline and time.monotonic() < deadline:
        time.sleep(0.1)
    if _cmdline(pid) == cmdline:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def running(rows: list[Row], logs: Path) -> Iterator[list[Server]]:
    """Every row's server started and checked ready; all stopped on the way out, whatever happens."""
    servers: list[Server] = []
    try:
        for row in rows:
            servers.append(Server.start(row, logs))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


# --- CPU time from /proc --------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time (fields 14 and 15 of /proc/PID/stat); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(server: Server) -> tuple[float, float]:
    """(frontend, instances) CPU seconds so far: for parm the instances are its children; an echo's are its own."""
    below = sum(cpu_seconds(pid) for pid in descendants(server.process.pid))
    own = cpu_seconds(server.process.pid)
    return (own, below) if server.row.parm else (own + below, 0.0)


# --- load -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one timed run of a load client saw."""

    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0


TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def _ms(value: str, unit: str) -> float:
    return float(value) * TIME_UNITS[unit]


def parse_wrk(text: str) -> Load:
    """Requests, requests/s, p50/p99 (from --latency), non-2xx responses and socket errors of wrk's report."""
    percentile = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return Load(requests=int(re.search(r"(\d+) requests in", text)[1]),
                requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1]),
                p50_ms=percentile["50"], p99_ms=percentile["99"], non_2xx=int(non_2xx[1]) if non_2xx else 0,
                socket_errors=sum(map(int, errors.groups())) if errors else 0)


def wrk_command(url: str, script: Path, seconds: float, connections: int) -> list[str]:
    """wrk posting ``script``'s body on ``connections`` connections from one thread, with latency percentiles."""
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> Load:
    """One wrk run; its report parsed."""
    done = subprocess.run(wrk_command(url, script, seconds, connections), capture_output=True, text=True,
                          timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk against {url} failed (exit code {done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def summarize(samples: list[Sample], wall_s: float) -> Load:
    """The figures of parm's load generator's samples (latencies of the queries answered 200; a query whose connection
    failed counts as a socket error, as wrk counts it)."""
    latency = [1000 * s.latency for s in samples if s.status == 200] or [float("nan")]
    failed = sum(s.status == TRANSPORT_FAILURE for s in samples)
    return Load(len(samples), len(samples) / wall_s, float(np.percentile(latency, 50)),
                float(np.percentile(latency, 99)), non_2xx=sum(s.status not in (200, TRANSPORT_FAILURE) for s in samples),
                socket_errors=failed)


async def closed_loop_for(address: str, request: bytes, seconds: float, connections: int) -> Load:
    """``connections`` closed-loop clients for about ``seconds``, the count sized from a first pass."""
    probe = await closed_loop(address, [request], concurrency=connections, total=connections * 20)
    total = int(len(probe) / max(s.sent + s.latency for s in probe) * seconds)
    started = time.perf_counter()
    samples = await closed_loop(address, [request], concurrency=connections, total=max(total, connections))
    return summarize(samples, time.perf_counter() - started)


async def open_loop_at(address: str, request: bytes, rate: float, seconds: float) -> Load:
    """Open-loop queries at seeded Poisson arrivals, ``rate`` per second for ``seconds``."""
    started = time.perf_counter()
    samples = await open_loop(address, [request], arrival_times(rate, int(rate * seconds), seed=0))
    return summarize(samples, time.perf_counter() - started)


def measure(server: Server, load: Callable[[], Load]) -> dict:
    """``load`` against ``server``, with the server's CPU per query over it."""
    before = server_cpu(server)
    result = load()
    after = server_cpu(server)
    per_query = [1e6 * (a - b) / max(result.requests, 1) for a, b in zip(after, before)]
    return {**asdict(result), "frontend_cpu_us": per_query[0], "instances_cpu_us": per_query[1] if server.row.parm
            else None}


# --- rounds ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How to load the servers: from the command line, plus the client and its files."""

    rounds: int
    seconds: float
    connections: int
    rate: float
    rate_seconds: float
    client: str
    scripts: dict[str, Path]
    bodies: dict[str, Body]


def throughput_load(plan: Plan, server: Server) -> Callable[[], Load]:
    """A closed-loop run of ``plan.seconds`` against ``server``: wrk, or parm's load generator."""
    body = server.row.body
    if plan.client == "wrk":
        return lambda: run_wrk(f"http://{server.address}{PATH}", plan.scripts[body], plan.seconds, plan.connections)
    request = plan.bodies[body].http_request()
    return lambda: asyncio.run(closed_loop_for(server.address, request, plan.seconds, plan.connections))


def rate_load(plan: Plan, server: Server) -> Callable[[], Load]:
    """An open-loop run at ``plan.rate`` queries/s of Fashion-MNIST queries against ``server``."""
    request = plan.bodies["fashion-mnist"].http_request()
    return lambda: asyncio.run(open_loop_at(server.address, request, plan.rate, plan.rate_seconds))


def fixed_rate_rows(servers: list[Server]) -> list[Server]:
    """Parm's Fashion-MNIST rows: the ones measured at a fixed rate."""
    return [s for s in servers if s.row.parm and s.row.body == "fashion-mnist"]


def describe(record: dict) -> str:
    """One progress line's figures."""
    errors = record["non_2xx"] + record["socket_errors"]
    instances = record["instances_cpu_us"]
    instances = f", {instances:,.0f} us instances CPU/query" if instances is not None else ""
    return (f"{record['requests_per_s']:,.0f} req/s p50 {record['p50_ms']:.2f} ms p99 {record['p99_ms']:.2f} ms, "
            f"{record['frontend_cpu_us']:,.0f} us CPU/query{instances}"
            + (f"  ERRORS: {record['non_2xx']} non-2xx, {record['socket_errors']} socket" if errors else ""))


def measure_rounds(plan: Plan, servers: list[Server]) -> list[dict]:
    """Every measurement, in the order made: per round each row's throughput, then parm's at the fixed rate."""
    records = []
    for round_ in range(1, plan.rounds + 1):
        for server in servers:
            record = {"round": round_, "row": server.row.name, "kind": "throughput",
                      **measure(server, throughput_load(plan, server))}
            print(f"round {round_}/{plan.rounds} {server.row.name}: {describe(record)}", flush=True)
            records.append(record)
        for server in fixed_rate_rows(servers):
            record = {"round": round_, "row": server.row.name, "kind": "rate",
                      **measure(server, rate_load(plan, server))}
            print(f"round {round_}/{plan.rounds} {server.row.name} @ {plan.rate:g} q/s: {describe(record)}", flush=True)
            records.append(record)
    return records


# --- figures --------------------------------------------------------------------------------------------------


FIGURES = ("requests_per_s", "p50_ms", "p99_ms", "frontend_cpu_us", "instances_cpu_us")


def medians(records: list[dict], kind: str) -> dict[str, dict]:
    """Per row: the median of each figure over rounds, the rounds' requests/s, and the errors summed."""
    rows: dict[str, list[dict]] = {}
    for record in records:
        if record["kind"] == kind:
            rows.setdefault(record["row"], []).append(record)
    return {name: {**{f: statistics.median(r[f] for r in runs) if runs[0][f] is not None else None for f in FIGURES},
                   "rounds_requests_per_s": [r["requests_per_s"] for r in runs],
                   "requests": sum(r["requests"] for r in runs),
                   "non_2xx": sum(r["non_2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs)}
            for name, runs in rows.items()}


def fastest_echo(figures: dict[str, dict], body: str) -> float | None:
    """The best median requests/s of the orjson echoes for ``body``."""
    names = ("echo-orjson-uvicorn", "echo-orjson-granian") if body == "fashion-mnist" else (
        "echo-orjson-uvicorn-paper",)
    rates = [figures[n]["requests_per_s"] for n in names if n in figures]
    return max(rates) if rates else None


def percent(value: float, of: float | None) -> str:
    return f"{value / of:.0%}" if of else "—"


def errors_cell(figure: dict) -> str:
    if not figure["non_2xx"] and not figure["socket_errors"]:
        return "none"
    return f"**{figure['non_2xx']} non-2xx, {figure['socket_errors']} socket**"


def us(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def throughput_table(figures: dict[str, dict], rows: dict[str, Row]) -> str:
    """The Markdown table of requests/s, latency and CPU per query, with parm's shares of the echo and of none."""
    lines = []
    for name, figure in figures.items():
        row = rows[name]
        none = name.replace("parm-parm", "parm-none")
        lines.append({
            "row": name, "body": row.body,
            "rounds": " / ".join(f"{r:,.0f}" for r in figure["rounds_requests_per_s"]),
            "median": f"{figure['requests_per_s']:,.0f}",
            "p50": f"{figure['p50_ms']:.2f}", "p99": f"{figure['p99_ms']:.2f}",
            "cpu": us(figure["frontend_cpu_us"]), "instances": us(figure["instances_cpu_us"]),
            "echo": percent(figure["requests_per_s"], fastest_echo(figures, row.body)) if row.parm else "—",
            "none": percent(figure["requests_per_s"], figures.get(none, {}).get("requests_per_s"))
            if row.mode == "parm" else "—",
            "errors": errors_cell(figure),
        })
    return markdown_table(lines, {
        "row": "row", "body": "query", "rounds": "req/s per round", "median": "req/s (median)",
        "p50": "p50 ms", "p99": "p99 ms", "cpu": "frontend CPU µs/query", "instances": "instances CPU µs/query",
        "echo": "% of fastest echo", "none": "% of mode none", "errors": "errors"})


def rate_table(figures: dict[str, dict]) -> str:
    """The Markdown table of the fixed-rate runs."""
    lines = [{"row": name, "rate": f"{figure['requests_per_s']:,.0f}", "queries": f"{figure['requests']:,}",
              "p50": f"{figure['p50_ms']:.2f}", "p99": f"{figure['p99_ms']:.2f}",
              "cpu": us(figure["frontend_cpu_us"]), "instances": us(figure["instances_cpu_us"]),
              "errors": errors_cell(figure)} for name, figure in figures.items()]
    return markdown_table(lines, {
        "row": "row", "rate": "achieved q/s", "queries": "queries (all rounds)", "p50": "p50 ms", "p99": "p99 ms",
        "cpu": "frontend CPU µs/query", "instances": "instances CPU µs/query", "errors": "errors"})


def cpu_ratios(figures: dict[str, dict]) -> dict[str, float]:
    """Mode parm's frontend CPU per query over mode none's, with no-op instances and with computing ones."""
    pairs = {"noop": ("parm-parm-noop", "parm-none-noop"), "real": ("parm-parm", "parm-none"),
             "onnx": ("parm-parm-onnx", "parm-none-onnx")}
    return {kind: figures[parm]["frontend_cpu_us"] / figures[none]["frontend_cpu_us"]
            for kind, (parm, none) in pairs.items() if parm in figures and none in figures}


def chart(figures: dict[str, dict], path: Path) -> None:
    """Median requests/s per row as bars, each round's as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(names, [figures[n]["requests_per_s"] for n in names], color="tab:blue", alpha=0.7)
    for y, name in enumerate(names):
        rounds = figures[name]["rounds_requests_per_s"]
        ax.plot(rounds, [y] * len(rounds), "o", color="black", markersize=3)
    ax.set_xlabel("requests/s (median over rounds; dots: rounds)")
    ax.set_title("parm frontend vs bare ASGI echo servers")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- command line ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every row (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per throughput run (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default: %(default)s)")
    parser.add_argument("--rate", type=float, default=270,
                        help="queries/s of the fixed-rate runs (default: %(default)s)")
    parser.add_argument("--rate-seconds", type=float, default=10,
                        help="seconds per fixed-rate run (default: %(default)s)")
    parser.add_argument("--rows", help=f"comma-separated rows to measure (default: all): {', '.join(ROW_NAMES)}")
    parser.add_argument("--serve-args", default="", metavar="'OPTIONS'",
                        help="more options for every `parm serve`, e.g. '--batch-size 8' (default: none)")
    parser.add_argument("--no-paper-size", action="store_true", help="leave out the paper-size (3x224x224) rows")
    parser.add_argument("--client", choices=("auto", "wrk", "loadgen"), default="auto",
                        help="throughput client: wrk, parm's closed loop, or wrk when installed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/frontend_throughput"))
    args = parser.parse_args(argv)
    args.rows = args.rows.split(",") if args.rows else ROW_NAMES
    unknown = sorted(set(args.rows) - set(ROW_NAMES))
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; known: {', '.join(ROW_NAMES)}")
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "loadgen"
    if args.client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not installed")
    return args


def pick_rows(args: argparse.Namespace, small: Path, paper: Path) -> list[Row]:
    """The rows asked for, less the paper-size ones if so asked; those to skip (``Row.skip``) said so."""
    rows = [row for row in all_rows(small, paper, tuple(shlex.split(args.serve_args)))
            if row.name in args.rows and not (args.no_paper_size and row.body == "paper")]
    for row in rows:
        if row.skip:
            print(f"skipping {row.name}: {row.skip}", flush=True)
    return rows


def machine() -> dict:
    """This machine, and its speed on the reference workload (`parm.bench.machine_speed`): figures of two runs compare
    only as far as their machines do."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "speed": machine_speed().as_dict()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the servers are stopped on the way out
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parm-frontend-throughput-") as tmp:
        tmp = Path(tmp)
        small = computing_run(tmp / "small")
        paper = placeholder_run(tmp / "paper", model="lenet5", input_shape=PAPER_SHAPE, classes=PAPER_CLASSES)
        picked = pick_rows(args, small, paper)
        rows = [row for row in picked if not row.skip]
        bodies = {"fashion-mnist": fashion_mnist_body(), "paper": paper_body()}
        plan = Plan(args.rounds, args.seconds, args.connections, args.rate, args.rate_seconds, args.client,
                    {name: body.wrk_script(tmp) for name, body in bodies.items()}, bodies)
        print(f"client: {plan.client}; starting {len(rows)} servers (logs in {args.out / 'logs'})", flush=True)
        with running(rows, args.out / "logs") as servers:
            for server in servers:
                server.check(bodies[server.row.body])
            load_before = os.getloadavg()
            records = measure_rounds(plan, servers)
            load_after = os.getloadavg()
    host = {**machine(), "loadavg_before": load_before, "loadavg_after": load_after}
    print(f"machine speed (lower is faster): {host['speed']}", flush=True)
    report(args, plan, picked, records, host)


def report(args: argparse.Namespace, plan: Plan, rows: list[Row], records: list[dict], host: dict) -> None:
    """Print the tables; write results.json and throughput.png. ``rows``: those picked, skipped ones too."""
    throughput, rate = medians(records, "throughput"), medians(records, "rate")
    ratios = cpu_ratios(rate)
    client = "wrk" if plan.client == "wrk" else "parm.bench.loadgen.closed_loop"
    print(f"\nthroughput: {client}, {plan.connections} connections, {plan.seconds:g} s per run, "
          f"medians of {plan.rounds} rounds\n\n{throughput_table(throughput, {r.name: r for r in rows})}")
    if rate:
        print(f"\nat {plan.rate:g} queries/s (parm.bench.loadgen.open_loop, seeded Poisson arrivals), "
              f"{plan.rate_seconds:g} s per run\n\n{rate_table(rate)}")
    if ratios:
        print("\nfrontend CPU per query, mode parm / mode none: "
              + ", ".join(f"{kind} {value:.2f}x" for kind, value in ratios.items()))
    results = {
        "client": client, "fixed_rate_client": "parm.bench.loadgen.open_loop (Poisson arrivals, seed 0)",
        "wrk_command": " ".join(wrk_command("URL", Path("BODY.lua"), plan.seconds, plan.connections))
        if plan.client == "wrk" else None,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": host, "rows": {r.name: {"body": r.body, "command": ["python", *r.command], "skipped": r.skip}
                                  for r in rows},
        "body_bytes": {name: len(body.payload) for name, body in plan.bodies.items()},
        "measurements": records, "medians": {"throughput": throughput, "rate": rate},
        "frontend_cpu_parm_over_none_at_rate": ratios,
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(throughput, args.out / "throughput.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'throughput.png'}")


if __name__ == "__main__":
    main()
