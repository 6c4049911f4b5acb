"""Fuzzing a running `parm serve` stack: any request line, headers, body and framing gets an answer below 500.

A real server (frontend, HTTP server, one instance process with no-op instances) on loopback takes
generated requests, each on a fresh connection: routes real and not, methods, header sets (large,
many, malformed), bodies from near-valid queries to garbage, and framing (Content-Length short,
long or missing, chunked, gzip that is not). Every request must get a response whose status is not
5xx; afterwards the server is still live and its memory has not grown without bound.

Floats are drawn without subnormals: training flushes them to zero process-wide (`parm.runtime.flush_denormals`),
which hypothesis refuses to draw under.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parm.bench.harness import serve_locally
from parm.bench.placeholder import placeholder_run
from parm.serving import ServeOptions, build_deployment
from parm.serving.http import limits

pytestmark = pytest.mark.slow
MODEL = "fuzz"
BODY_TIMEOUT = 0.1
SETTINGS = settings(max_examples=3000, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = placeholder_run(tmp_path_factory.mktemp("fuzz"))
    deployment = build_deployment(run, ServeOptions(mode="parm", noop=True, name=MODEL))
    with serve_locally(deployment, processes=1, max_pending=16, body_timeout=BODY_TIMEOUT) as served:
        yield served, rss_mb()


def query(data) -> dict:
    return {"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": data}]}


paths = st.one_of(st.sampled_from([f"/v2/models/{MODEL}/infer", f"/v2/models/{MODEL}/versions/1/infer",
                                   f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/ready", "/v2", "/v2/health/live",
                                   "/v2/health/ready", "/metrics", "/v2/models/other/infer", "/", "/v2/models//infer"]),
                  st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40).map(lambda t: "/" + t),
                  st.integers(limits.MAX_URL_BYTES - 10, limits.MAX_URL_BYTES + 10).map(lambda n: "/v2/" + "a" * n))
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"])
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
headers = st.lists(st.tuples(st.sampled_from(["Content-Type", "Content-Encoding", "Inference-Header-Content-Length",
                                              "X-Any", "Expect", "Transfer-Encoding", "Accept"]), header_values),
                   max_size=6)
bodies = st.one_of(
    st.builds(lambda v: json.dumps(query([v] * 784), allow_nan=True).encode(),
              st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.integers(-10**20, 10**20))),
    st.builds(lambda d: json.dumps(query(d), allow_nan=True).encode(),
              st.lists(st.floats(0, 1, allow_subnormal=False), max_size=5) | st.recursive(st.floats(0, 1, allow_subnormal=False), st.lists, max_leaves=20)),
    st.binary(max_size=300),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.just(json.dumps(query(np.full(784, 0.5).tolist())).encode()),
)


@st.composite
def requests(draw) -> bytes:
    method, path, body = draw(methods), draw(paths), draw(bodies)
    lines = [f"{method} {path} HTTP/1.1", "Host: fuzz"]
    lines += [f"{name}: {value}" for name, value in draw(headers) if name != "Transfer-Encoding"]
    framing = draw(st.sampled_from(["exact", "exact", "exact", "short", "long", "none", "chunked", "huge-header",
                                    "many-headers"]))
    if framing == "exact":
        lines.append(f"Content-Length: {len(body)}")
    elif framing == "short":
        lines.append(f"Content-Length: {max(0, len(body) - draw(st.integers(1, 20)))}")
    elif framing == "long":  # the body stops before its length: the server times the read out
        lines.append(f"Content-Length: {len(body) + draw(st.integers(1, 10**6))}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if draw(st.booleans()) else b"ffffffffffffffff\r\n" + body
    elif framing == "huge-header":
        lines.append("X-Big: " + "a" * draw(st.integers(limits.MAX_HEAD_BYTES - 100, 2 * limits.MAX_HEAD_BYTES)))
    elif framing == "many-headers":
        lines += [f"X-{i}: {i}" for i in range(draw(st.integers(limits.MAX_HEADERS - 5, limits.MAX_HEADERS + 20)))]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(address: str, request: bytes) -> int:
    """The status of the server's answer to ``request`` on a fresh connection (0: no answer at all)."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        # No half-close after sending: uvicorn drops a connection whose client half-closed (real clients do not),
        # and the server must answer whatever framing it got.
        try:
            connection.sendall(request)
        except OSError:
            pass  # refused mid-send (a 431 or 414 closes the connection): the answer is already on its way
        reply = b""
        try:
            while b"\r\n" not in reply and (chunk := connection.recv(4096)):
                reply += chunk
        except ConnectionResetError:
            pass
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def rss_mb() -> float:
    """This process's resident memory now (the server runs in one of its threads)."""
    status = open("/proc/self/status").read()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


@SETTINGS
@given(request=requests())
def test_every_request_gets_an_answer_below_500(server, request) -> None:
    status = exchange(server[0].address, request)
    assert 100 <= status < 500, (status, request[:300])


def test_after_the_fuzzing_the_server_is_live_and_its_memory_bounded(server) -> None:
    served, started_rss_mb = server
    assert exchange(served.address, b"GET /v2/health/live HTTP/1.1\r\nHost: fuzz\r\n\r\n") == 200
    assert rss_mb() - started_rss_mb < 200  # MB, after 3,000 requests, heads of up to 128 KB
