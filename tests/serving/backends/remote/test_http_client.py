"""The REST client of the remote backend against parm's own protocol app and against servers that misbehave."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest

from parm.serving.backends.remote.client import InstanceError
from parm.serving.backends.remote.cluster import Endpoint
from parm.serving.backends.remote.http_client import HttpClient
from parm.serving.core.pools import BASE_POOL
from parm.serving.http.app import build_app
from parm.serving.http.server import listen


@pytest.fixture(scope="module")
def served(serve_app, fake_service_factory):
    service = fake_service_factory()
    with serve_app(build_app(service)) as address:
        yield service, address


@pytest.fixture
def service(served):
    served[0].reset()
    return served[0]


def endpoint(address: str, **fields) -> Endpoint:
    return Endpoint(BASE_POOL, f"http://{address}", "toy", output="output", **fields)


def inputs(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 1, 2, 3)).astype(np.float32)


def call(client: HttpClient, *batches: np.ndarray) -> list[np.ndarray]:
    async def run() -> list[np.ndarray]:
        try:
            return [await client.infer(batch) for batch in batches]
        finally:
            await client.close()
    return asyncio.run(run())


@pytest.mark.parametrize("binary", [True, False])
def test_batches_come_back_exact_over_one_persistent_connection(served, service, fake_outputs, binary):
    client = HttpClient(endpoint(served[1], binary=binary))
    first, second = call(client, inputs(3), inputs(1))
    np.testing.assert_array_equal(first, fake_outputs(inputs(3)))
    np.testing.assert_array_equal(second, fake_outputs(inputs(1)))
    assert first.dtype == np.float32 and client.connects == 1
    np.testing.assert_array_equal(service.seen[0], inputs(3))


def test_an_error_status_is_an_instance_error_with_the_servers_message(served, service):
    service.error = RuntimeError("boom")
    with pytest.raises(InstanceError, match="HTTP 500"):
        call(HttpClient(endpoint(served[1])), inputs())
    service.error = None
    with pytest.raises(InstanceError, match="HTTP 400.*shape"):  # the server's own words come through
        call(HttpClient(endpoint(served[1])), np.zeros((2, 3), np.float32))
    with pytest.raises(InstanceError, match="HTTP 404"):
        call(HttpClient(Endpoint(BASE_POOL, f"http://{served[1]}", "other")), inputs())


def test_readiness_follows_the_server_and_its_model(served, service):
    async def ready(client: HttpClient) -> bool:
        try:
            return await client.ready()
        finally:
            await client.close()
    assert asyncio.run(ready(HttpClient(endpoint(served[1]))))
    assert not asyncio.run(ready(HttpClient(Endpoint(BASE_POOL, f"http://{served[1]}", "other"))))
    service.ready = False
    assert not asyncio.run(ready(HttpClient(endpoint(served[1]))))


def test_a_server_that_is_gone_or_silent_fails_the_call():
    with listen("127.0.0.1", 0) as silent:  # listens, never answers: the call times out
        client = HttpClient(endpoint("127.0.0.1:%d" % silent.getsockname()[1], timeout_s=0.05))
        with pytest.raises(InstanceError, match="did not answer within 50 ms"):
            call(client, inputs())
        port = silent.getsockname()[1]
    client = HttpClient(endpoint(f"127.0.0.1:{port}"))  # closed now: refused
    with pytest.raises(InstanceError, match="ClientConnectorError|Connect"):
        call(client, inputs())
    assert not asyncio.run(client.ready())


def answer(doc: dict | bytes) -> bytes:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


ONE_ROW = {"outputs": [{"name": "output", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]}


def raw_calls(responses: list[bytes | None], batches: int) -> tuple[list[np.ndarray | InstanceError], HttpClient]:
    """Calls against a server that gives each connection ``responses`` in turn (None: close without answering)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            if response is None:
                break
            writer.write(response)
            await writer.drain()
        writer.close()

    async def run() -> tuple[list[np.ndarray | InstanceError], HttpClient]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        client = HttpClient(endpoint("127.0.0.1:%d" % server.sockets[0].getsockname()[1]))
        results: list[np.ndarray | InstanceError] = []
        try:
            for _ in range(batches):
                try:
                    results.append(await client.infer(np.zeros((1, 1, 2, 3), np.float32)))
                except InstanceError as err:
                    results.append(err)
            return results, client
        finally:
            await client.close()
            server.close()

    return asyncio.run(run())


def test_a_connection_the_server_closed_while_idle_is_retried_once_on_a_fresh_one():
    outputs, client = raw_calls([answer(ONE_ROW), None], batches=2)
    assert [o.tolist() for o in outputs] == [[[1.0, 2.0]]] * 2
    assert (client.retries, client.connects) == (1, 2)


@pytest.mark.parametrize(("doc", "message"), [
    ({"outputs": [{"name": "output", "shape": [2, 2], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]},
     "2 rows for a batch of 1"),
    ({"outputs": [{"name": "other", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}]},
     "without a usable output 'output'"),
    ({"outputs": [{"name": "output", "shape": [1, 2], "datatype": "INT8", "data": [1, 2]}]}, "not a floating-point"),
    (b"not json", "without a usable output"),
])
def test_an_answer_parm_cannot_use_is_an_instance_error(doc, message):
    (result,), _ = raw_calls([answer(doc)], batches=1)
    assert isinstance(result, InstanceError) and message in str(result)
