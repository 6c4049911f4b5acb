"""The pure pieces of benchmarks/frontend_throughput.py, with no server started: wrk's report, /proc CPU, the echoes."""

import asyncio
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

# Captured from wrk 4.1.0 (Debian) against `uvicorn echo_apps:orjson_app` with a Fashion-MNIST JSON query.
WRK_CLEAN = """\
Running 3s test @ http://127.0.0.1:50627/v2/models/bench/infer
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.03ms  365.26us   6.99ms   94.82%
    Req/Sec    15.82k   381.32    17.02k    80.65%
  Latency Distribution
     50%    1.97ms
     75%    2.01ms
     90%    2.08ms
     99%    3.95ms
  48791 requests in 3.10s, 19.40MB read
Requests/sec:  15736.56
Transfer/sec:      6.26MB
"""
# The same, with uvicorn --limit-concurrency 8 --limit-max-requests 5000: 503s, then the server gone.
WRK_ERRORS = """\
Running 3s test @ http://127.0.0.1:39427/v2/models/bench/infer
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.98ms    2.68ms   9.71ms   82.70%
    Req/Sec    13.79k     3.37k   16.27k    75.00%
  Latency Distribution
     50%  390.00us
     75%    2.46ms
     90%    7.25ms
     99%    8.99ms
  5520 requests in 3.00s, 1.75MB read
  Socket errors: connect 0, read 32, write 394034, timeout 0
  Non-2xx or 3xx responses: 2053
Requests/sec:   1839.58
Transfer/sec:    596.79KB
"""


def load(name: str):
    """A benchmarks/ module, imported by path (with benchmarks/ on the path for its own imports)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pytest.importorskip("orjson")
bench = load("frontend_throughput")
echo_apps = load("echo_apps")


def test_wrk_report_gives_rate_latency_percentiles_and_no_errors():
    assert bench.parse_wrk(WRK_CLEAN) == bench.Load(requests=48791, requests_per_s=15736.56, p50_ms=1.97, p99_ms=3.95)


def test_wrk_report_with_errors_says_so_and_reads_microseconds():
    report = bench.parse_wrk(WRK_ERRORS)
    assert report.requests == 5520 and report.requests_per_s == 1839.58
    assert report.p50_ms == pytest.approx(0.39) and report.p99_ms == 8.99
    assert report.non_2xx == 2053 and report.socket_errors == 32 + 394034


def test_our_clients_failures_are_counted_as_wrk_counts_them():
    """A refused or reset connection is a socket error, an HTTP error status a non-2xx; latencies are the 200s'."""
    from parm.bench.loadgen import TRANSPORT_FAILURE, Sample

    samples = [Sample(0.0, 0.002, 200, "original"), Sample(0.1, 0.004, 200, "original"),
               Sample(0.2, 0.001, 503, "error"), Sample(0.3, 5.0, TRANSPORT_FAILURE, "error")]
    load = bench.summarize(samples, wall_s=2.0)
    assert (load.requests, load.requests_per_s, load.non_2xx, load.socket_errors) == (4, 2.0, 1, 1)
    assert load.p50_ms == pytest.approx(3.0)


def test_cpu_seconds_of_this_process_follow_its_own_cpu_time():
    before, process_before = bench.cpu_seconds(os.getpid()), time.process_time()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    spent = bench.cpu_seconds(os.getpid()) - before
    assert spent == pytest.approx(time.process_time() - process_before, abs=0.05)
    assert bench.cpu_seconds(2**22 + 1) == 0.0  # above pid_max: a process that is gone


def test_the_fashion_mnist_body_looks_like_a_real_query():
    body = bench.fashion_mnist_body()
    data = np.array(json.loads(body.payload)["inputs"][0]["data"])
    assert data.size == 784 and 0.4 < np.mean(data == 0) < 0.6 and data.min() >= 0 and data.max() <= 1
    assert 9_000 < len(body.payload) < 14_000
    assert body.http_request().endswith(b"\r\n\r\n" + body.payload)


def call(app, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[dict, dict]:
    """Run an ASGI ``app`` on one POST whose body comes in two chunks; its response start and JSON body."""
    chunks = [{"type": "http.request", "body": body[:100], "more_body": True},
              {"type": "http.request", "body": body[100:], "more_body": False}]
    sent = []

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v2/models/bench/infer", "headers": headers}
    asyncio.run(app(scope, receive, send))
    start, answer = sent
    assert dict(start["headers"])[b"content-length"] == str(len(answer["body"])).encode()
    return start, json.loads(answer["body"])


@pytest.mark.parametrize("app", ["json_app", "orjson_app"])
def test_an_echo_answers_a_json_query_with_ten_logits(app):
    start, answer = call(getattr(echo_apps, app), bench.fashion_mnist_body().payload,
                         [(b"content-type", b"application/json")])
    assert start["status"] == 200 and answer["model_name"] == "bench"
    (output,) = answer["outputs"]
    assert output["shape"] == [1, 10] and len(output["data"]) == 10 and output["datatype"] == "FP32"


def test_an_echo_answers_a_paper_size_binary_query_with_a_thousand_logits():
    body = bench.paper_body()
    headers = [(name.lower().encode(), value.encode()) for name, value in body.headers.items()]
    start, answer = call(echo_apps.orjson_app, body.payload, headers)
    assert start["status"] == 200 and answer["outputs"][0]["shape"] == [1, 1000]
    assert len(answer["outputs"][0]["data"]) == 1000


def test_an_echo_completes_the_lifespan():
    messages, sent = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}], []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(echo_apps.orjson_app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
