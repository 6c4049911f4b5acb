"""A lean asyncio load generator speaking the Open Inference Protocol over keep-alive HTTP/1.1.

Closed loop (a fixed number of clients, each sending its next query when the last is answered) to
measure throughput and the frontend's own latency; open loop (Poisson arrivals, never waiting for
answers) to measure latency under load as the paper does. Each query records its latency (send to
answer) and how it was answered (the response parameter ``answer``). A query whose connection fails (refused,
reset, timed out: an overloaded server's full accept queue resets connections) is recorded as failed, with status
`TRANSPORT_FAILURE`, and the run goes on: a run that outgrows the server reports its failures instead of dying. Request bodies are prebuilt
with the binary tensor extension, so the client spends its time on the network, not on JSON.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from parm.serving.http.model import LATENCY_PARAMETER
from parm.serving.http.protocol import HEADER_LENGTH

TRANSPORT_FAILURE = 0  # a Sample's status when no HTTP answer came: the connection was refused, reset or timed out


@dataclass(frozen=True)
class Sample:
    """One query: when it was sent (seconds since the run started), its latency, status (`TRANSPORT_FAILURE` when
    no HTTP answer came) and answer kind ("error" unless 200), and its latency at the frontend (receipt to answer;
    NaN when the server does not report it)."""

    sent: float
    latency: float
    status: int
    answer: str
    at_frontend: float = float("nan")


def infer_request(model: str, input_name: str, x: np.ndarray) -> bytes:
    """A complete HTTP request inferring ``x`` (batch first, FP32) with a binary input tensor."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    header = json.dumps({"inputs": [{"name": input_name, "datatype": "FP32", "shape": list(x.shape),
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    body = header + x.tobytes()
    return (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: parm\r\nContent-Type: application/octet-stream\r\n"
            f"{HEADER_LENGTH}: {len(header)}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a prebuilt request and reads the answer kind (unconnected until
    `open`, `connect` or a `send`)."""

    def __init__(self, address: str, reader: asyncio.StreamReader | None = None,
                 writer: asyncio.StreamWriter | None = None) -> None:
        self.address, self.reader, self.writer = address, reader, writer

    @classmethod
    async def open(cls, address: str) -> Connection:
        return cls(address, *await _connect(address))

    async def send(self, request: bytes) -> tuple[int, str, float]:
        """Send and read the answer; a connection the server closed while idle is reopened once. If the server
        cannot be reached, or resets the new connection too, the query failed (`TRANSPORT_FAILURE`) and the next
        `send` connects afresh."""
        if self.writer is not None:
            try:
                return await self._exchange(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
        if await self.connect():
            try:
                return await self._exchange(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
        return TRANSPORT_FAILURE, "error", float("nan")

    async def connect(self) -> bool:
        """Open the connection; False if the server cannot be reached (refused, reset or timed out: `OSError`s)."""
        try:
            self.reader, self.writer = await _connect(self.address)
        except OSError:
            return False
        return True

    async def _exchange(self, request: bytes) -> tuple[int, str, float]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", 0)))
        json_length = int(headers.get(HEADER_LENGTH.lower(), len(body)))
        if status != 200:
            return status, "error", float("nan")
        parameters = json.loads(body[:json_length]).get("parameters", {})
        at_frontend = parameters.get(LATENCY_PARAMETER, "").split(",")[0]  # one query per request here
        return status, parameters.get("answer", ""), int(at_frontend) / 1e6 if at_frontend else float("nan")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def closed_loop(address: str, requests: list[bytes], *, concurrency: int, total: int) -> list[Sample]:
    """``concurrency`` clients send ``total`` queries between them, cycling through ``requests``."""
    connections = [await Connection.open(address) for _ in range(concurrency)]
    start, samples, counter = time.perf_counter(), [], iter(range(total))

    async def client(connection: Connection) -> None:
        for i in counter:
            sent = time.perf_counter()
            status, answer, at_frontend = await connection.send(requests[i % len(requests)])
            samples.append(Sample(sent - start, time.perf_counter() - sent, status, answer, at_frontend))

    await asyncio.gather(*(client(c) for c in connections))
    for connection in connections:
        connection.close()
    return samples


async def open_loop(address: str, requests: list[bytes], arrivals: Sequence[float]) -> list[Sample]:
    """One query at each of ``arrivals`` (seconds from the start; `parm.workload.arrivals`), whatever the
    answers' pace.

    Latency runs from the moment a query is written, not from its scheduled arrival: asyncio's timers
    wake up to a millisecond late, and that is the generator's lateness, not the server's. Each
    sample's ``sent`` shows how far the actual schedule drifted.
    """
    idle: list[Connection] = []
    samples: list[Sample] = []
    start = time.perf_counter()

    async def one(i: int) -> None:
        connection = idle.pop() if idle else Connection(address)
        sent = time.perf_counter()
        if connection.writer is None and not await connection.connect():
            status, answer, at_frontend = TRANSPORT_FAILURE, "error", float("nan")  # its latency: the failed connect's
        else:
            sent = time.perf_counter()  # latency runs from the write, after any connect
            status, answer, at_frontend = await connection.send(requests[i % len(requests)])
        samples.append(Sample(sent - start, time.perf_counter() - sent, status, answer, at_frontend))
        idle.append(connection)

    tasks = []
    for i, due in enumerate(arrivals):
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the arrivals, not synchronising
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return samples
