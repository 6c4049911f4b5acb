"""parm's two front doors against each other: the Open Inference Protocol over REST and over gRPC.

Run: .venv/bin/python benchmarks/grpc_vs_rest.py [--rounds 5] [--requests 1000] [--shape 1,28,28] [--out FILE.json]
A server process serves one no-op model (zeros out, no instances) as `parm serve` serves a frontend: parm's REST
app under its uvicorn configuration, and parm's gRPC server started on the same uvloop event loop. This process
then calls it with one client at a time, one request in flight, each client in turn in every round (so that all
see the same machine noise): tritonclient.http and tritonclient.grpc with their default settings, and the remote
backend's two ways to call an instance, `GrpcClient` and a plain aiohttp POST of Triton's binary tensor request.
Prints the medians over rounds of requests/s, p50 and p99 latency as a Markdown table, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import uvloop
from common import markdown_table
from prometheus_client import CollectorRegistry

from parm.serving.backends.remote.cluster import Endpoint
from parm.serving.backends.remote.grpc_client import GrpcClient
from parm.serving.core.pools import BASE_POOL
from parm.serving.grpc import GrpcServer, start_grpc_server
from parm.serving.http.model import ModelInfo, Prediction, TensorSpec
from parm.serving.http.server import build_server, listen

MODEL, CLASSES, WARMUP = "noop", 10, 100
HEADER_LENGTH = "Inference-Header-Content-Length"


class NoopService:
    """A frontend stand-in that answers zeros at once; its start-up starts the gRPC server on the serving loop."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.model = ModelInfo(MODEL, (TensorSpec("input", "FP32", (-1, *shape)),),
                               (TensorSpec("output", "FP32", (-1, CLASSES)),))
        self.registry = CollectorRegistry()
        self.grpc: GrpcServer | None = None

    async def start(self) -> None:
        self.grpc = await start_grpc_server(self)

    async def stop(self) -> None:
        await self.grpc.stop(1)

    def is_ready(self) -> bool:
        return True

    def admission(self) -> contextlib.AbstractAsyncContextManager:
        return contextlib.nullcontext()

    async def infer(self, inputs: np.ndarray) -> Prediction:
        return Prediction(np.zeros((len(inputs), CLASSES), np.float32), ("original",) * len(inputs))


def serve(shape: tuple[int, ...]) -> None:
    """The server process: prints "ready REST_ADDRESS GRPC_ADDRESS" once both listen, serves until SIGTERM."""
    service = NoopService(shape)
    sock = listen()
    server = build_server(service, sock=sock,  # type: ignore[arg-type]: the stand-in has what the server uses
                          on_ready=lambda address: print(f"ready {address} {service.grpc.address}", flush=True))
    server.run(sockets=[sock])


# ------------------------------------------------------------------------------------------------------ the clients


def timed(call: Callable[[], object], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies


async def timed_async(call: Callable[[], Awaitable[object]], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)
    return latencies


def triton(module, address: str, x: np.ndarray, n: int) -> list[float]:
    """tritonclient.http or tritonclient.grpc, default settings (binary input; REST answers JSON, gRPC raw)."""
    with module.InferenceServerClient(address) as client:
        tensor = module.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        return timed(lambda: client.infer(MODEL, [tensor]).as_numpy("output"), n)


async def grpc_client(address: str, x: np.ndarray, n: int) -> list[float]:
    client = GrpcClient(Endpoint(pool=BASE_POOL, url=f"grpc://{address}", model=MODEL, output="output"))
    try:
        return await timed_async(lambda: client.infer(x), n)
    finally:
        await client.close()


async def aiohttp_post(address: str, x: np.ndarray, n: int) -> list[float]:
    """Triton's binary tensor request, output asked back in binary, on one keep-alive connection."""
    data = x.tobytes()
    header = orjson.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                       "parameters": {"binary_data_size": len(data)}}],
                           "outputs": [{"name": "output", "parameters": {"binary_data": True}}]})
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    url = f"http://{address}/v2/models/{MODEL}/infer"

    async def call() -> np.ndarray:
        async with session.post(url, data=header + data, headers=headers) as response:
            payload = await response.read()
            length = int(response.headers[HEADER_LENGTH])
            shape = orjson.loads(payload[:length])["outputs"][0]["shape"]
            return np.frombuffer(payload, np.float32, offset=length).reshape(shape)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        return await timed_async(call, n)


CLIENTS: dict[str, tuple[str, Callable[[str, str, np.ndarray, int], list[float]]]] = {
    "tritonclient.http": ("REST", lambda rest, rpc, x, n: triton(httpclient, rest, x, n)),
    "tritonclient.grpc": ("gRPC", lambda rest, rpc, x, n: triton(grpcclient, rpc, x, n)),
    "aiohttp POST (binary)": ("REST", lambda rest, rpc, x, n: uvloop.run(aiohttp_post(rest, x, n))),
    "GrpcClient": ("gRPC", lambda rest, rpc, x, n: uvloop.run(grpc_client(rpc, x, n))),
}


def measure(rest: str, rpc: str, shape: tuple[int, ...], rounds: int, requests: int) -> list[dict]:
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    samples: dict[str, list[list[float]]] = {name: [] for name in CLIENTS}
    for _ in range(rounds):
        for name, (_, run) in CLIENTS.items():
            samples[name].append(run(rest, rpc, x, WARMUP + requests)[WARMUP:])
    rows = []
    for name, per_round in samples.items():
        rows.append({"client": name, "protocol": CLIENTS[name][0],
                     "requests_per_s": statistics.median(len(s) / sum(s) for s in per_round),
                     "p50_ms": statistics.median(1000 * float(np.percentile(s, 50)) for s in per_round),
                     "p99_ms": statistics.median(1000 * float(np.percentile(s, 99)) for s in per_round)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per client and round")
    parser.add_argument("--shape", default="1,28,28", help="one query's input shape (3,224,224: the paper's)")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    shape = tuple(int(dim) for dim in args.shape.split(","))
    if args.serve:
        serve(shape)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--shape", args.shape], stdout=subprocess.PIPE,
                              text=True)
    try:
        line = server.stdout.readline().split()
        if line[:1] != ["ready"]:
            raise RuntimeError("the server process exited before it was ready")
        rows = measure(line[1], line[2], shape, args.rounds, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"One client, one request in flight, one query of {list(shape)} FP32; medians of {args.rounds} rounds of "
          f"{args.requests} requests.\n")
    print(markdown_table(rows, {"client": "client", "protocol": "protocol", "requests_per_s": "requests/s",
                                "p50_ms": "p50 ms", "p99_ms": "p99 ms"}))
    figures = {"shape": list(shape), "rounds": args.rounds, "requests": args.requests, "results": rows}
    print(json.dumps(figures, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
