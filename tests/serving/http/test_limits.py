"""Limits of the front door, on a real uvicorn server: request heads, slow bodies, admission before the body."""

from __future__ import annotations

import json
import socket

import pytest

from parm.serving.http import limits
from parm.serving.http.app import build_app

BODY_TIMEOUT = 0.5
QUERY = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "datatype": "FP32",
                                "data": [0.0] * 6}]}).encode()


@pytest.fixture(scope="module")
def served(fake_service_factory, serve_app):
    fake = fake_service_factory()
    with serve_app(build_app(fake, body_timeout=BODY_TIMEOUT), http=limits.BoundedHttpToolsProtocol) as address:
        yield address, fake


@pytest.fixture
def address(served):
    served[1].reset()
    return served[0]


def exchange(address: str, data: bytes, *, keep_open: bool = False, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send raw bytes on a fresh connection (then half-close it, unless ``keep_open``); the answer's status,
    headers and body."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        try:
            connection.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: the answer is already waiting
        if not keep_open:
            connection.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
            if b"\r\n\r\n" in reply and len(reply.split(b"\r\n\r\n", 1)[1]) >= _length(reply):
                break
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _length(reply: bytes) -> int:
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":")[1])
    return 1 << 30


def infer(body: bytes = QUERY, extra: bytes = b"", length: int | None = None) -> bytes:
    return (b"POST /v2/models/toy/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body)


def test_a_valid_query_passes_the_limits(address):
    status, _, body = exchange(address, infer())
    assert status == 200 and json.loads(body)["outputs"][0]["data"] == [0.0, 0.0]


def test_a_long_url_is_414_with_a_json_error(address):
    status, headers, body = exchange(address, b"GET /v2/" + b"a" * (limits.MAX_URL_BYTES + 10) + b" HTTP/1.1\r\n\r\n")
    assert status == 414 and headers["content-type"] == "application/json" and "URL" in json.loads(body)["error"]


def test_too_many_headers_are_431(address):
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(limits.MAX_HEADERS + 1))
    status, _, body = exchange(address, infer(extra=many))
    assert status == 431 and "headers" in json.loads(body)["error"]


def test_a_huge_header_is_refused_before_it_is_buffered(address):
    status, _, body = exchange(address, infer(extra=b"X-Big: " + b"a" * (4 * limits.MAX_HEAD_BYTES) + b"\r\n"))
    assert status == 431 and "bytes" in json.loads(body)["error"]
    assert exchange(address, infer())[0] == 200  # and the server serves on


def test_a_body_that_stops_midway_is_408_after_the_body_timeout(address):
    status, _, body = exchange(address, infer(body=QUERY[:10], length=len(QUERY)), keep_open=True)
    assert status == 408 and "did not arrive" in json.loads(body)["error"]


def test_a_full_queue_refuses_before_reading_the_body(address, served):
    served[1].admitting = False
    status, headers, body = exchange(address, infer(body=b"not even json"))
    assert status == 503 and headers["retry-after"] == "1" and "overloaded" in json.loads(body)["error"]
    assert served[1].seen == []
