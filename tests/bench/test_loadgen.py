"""The load generator against a real loopback server: every query sent once, answers and statuses read back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import numpy as np
from prometheus_client import CollectorRegistry

from parm.bench.loadgen import TRANSPORT_FAILURE, Sample, closed_loop, infer_request, open_loop
from parm.serving.http.app import build_app
from parm.serving.http.model import ModelInfo, Prediction, TensorSpec
from parm.workload.arrivals import arrival_times

MODEL = ModelInfo("echo", (TensorSpec("input", "FP32", (-1, 3)),), (TensorSpec("output", "FP32", (-1, 3)),))


class Echo:
    """Answers each query with itself; the first input value decides the answer kind."""

    model, registry = MODEL, CollectorRegistry()

    def is_ready(self) -> bool:
        return True

    def admission(self):
        return contextlib.nullcontext()

    async def infer(self, inputs: np.ndarray) -> Prediction:
        kinds = tuple("reconstructed" if x[0] > 0 else "original" for x in inputs)
        return Prediction(inputs, kinds, tuple(0.001234 for _ in inputs))  # as if 1,234 us at the frontend


REQUESTS = [infer_request("echo", "input", np.array([[sign, 0, 0]], np.float32)) for sign in (1.0, -1.0)]


def test_closed_loop_sends_every_query_once_and_reads_the_answer_kinds(serve_app) -> None:
    with serve_app(build_app(Echo())) as address:
        samples = asyncio.run(closed_loop(address, REQUESTS, concurrency=4, total=40))
    assert len(samples) == 40 and {s.status for s in samples} == {200}
    assert sorted(s.answer for s in samples) == ["original"] * 20 + ["reconstructed"] * 20
    assert all(s.latency > 0 for s in samples)
    assert {s.at_frontend for s in samples} == {0.001234}  # the response parameter, read back


def test_open_loop_paces_poisson_arrivals_at_the_rate(serve_app) -> None:
    with serve_app(build_app(Echo())) as address:
        samples = asyncio.run(open_loop(address, REQUESTS, arrival_times(2000.0, 200, seed=3)))
    sent = np.sort([s.sent for s in samples])
    assert len(samples) == 200 and {s.status for s in samples} == {200}
    gaps = np.random.default_rng(3).exponential(1 / 2000.0, size=200)
    assert sent[-1] >= gaps.sum() - gaps[0]  # never ahead of the schedule: arrivals are paced, not bursted


def test_a_query_whose_connection_fails_is_recorded_as_failed_and_the_run_goes_on() -> None:
    """An overloaded server's full accept queue resets connections, and a dead one refuses them: each such query
    is a failed sample (status 0), as a 503 is, and the load generator neither raises nor stops."""

    async def resetting_server() -> list[Sample]:
        def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.transport.abort()

        server = await asyncio.start_server(reset, "127.0.0.1", 0)
        address = "127.0.0.1:%d" % server.sockets[0].getsockname()[1]
        async with server:
            return (await open_loop(address, REQUESTS, arrival_times(500.0, 20, seed=1))
                    + await closed_loop(address, REQUESTS, concurrency=2, total=6))

    samples = asyncio.run(resetting_server())
    assert len(samples) == 26 and {(s.status, s.answer) for s in samples} == {(TRANSPORT_FAILURE, "error")}

    with socket.socket() as probe:  # a port nobody listens on: every connect is refused
        probe.bind(("127.0.0.1", 0))
        refused = "127.0.0.1:%d" % probe.getsockname()[1]
        samples = asyncio.run(open_loop(refused, REQUESTS, arrival_times(500.0, 10, seed=2)))
    assert len(samples) == 10 and {s.status for s in samples} == {TRANSPORT_FAILURE}
