"""`GrpcClient` against parm's own gRPC server over the fake service: round trips, deadlines, wrong answers, and a
server that dies and comes back on the same port. The client runs on a uvloop loop of its own, as in `parm serve`."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
import uvloop
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc.service_pb2_grpc import GRPCInferenceServiceServicer, add_GRPCInferenceServiceServicer_to_server

from parm.serving.backends.remote.client import InstanceError, connect
from parm.serving.backends.remote.cluster import Endpoint
from parm.serving.backends.remote.grpc_client import GrpcClient
from parm.serving.core.pools import BASE_POOL

from ...grpc.background import serve_grpc

X = np.random.default_rng(0).random((3, 1, 2, 3), dtype=np.float32)


@pytest.fixture
def served(fake_service):
    with serve_grpc(fake_service) as background:
        yield background


@pytest.fixture
def answering(served):
    """``answering(response)``: the address of a server that answers every ModelInfer with ``response`` (what
    parm's own server never does: it refuses to answer the wrong number of rows, for one)."""
    servers = []

    async def start(response: pb.ModelInferResponse) -> str:
        class Answering(GRPCInferenceServiceServicer):
            async def ModelInfer(self, request, context):
                return response

        server = grpc.aio.server()
        add_GRPCInferenceServiceServicer_to_server(Answering(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield lambda response: served.run(start(response))
    for server in servers:
        served.run(server.stop(0))


def endpoint(address: str, **fields) -> Endpoint:
    return Endpoint(pool=BASE_POOL, url=f"grpc://{address}", model="toy", **({"output": "output"} | fields))


async def instance_error(client: GrpcClient) -> str:
    """The `InstanceError` that ``client.infer(X)`` raises, as text; the client closed."""
    try:
        with pytest.raises(InstanceError) as error:
            await client.infer(X)
        return str(error.value)
    finally:
        await client.close()


def test_connect_picks_the_grpc_client(served):
    assert isinstance(connect(endpoint(served.address)), GrpcClient)


def test_infer_round_trips_exactly_on_one_connection(served, fake_service, fake_outputs):
    async def scenario():
        client = GrpcClient(endpoint(served.address))
        try:
            first, second = await client.infer(X), await client.infer(X[:1] * 2)
            return first, second, await client.ready(), client.connects
        finally:
            await client.close()

    first, second, ready, connects = uvloop.run(scenario())
    np.testing.assert_array_equal(first, fake_outputs(X))
    np.testing.assert_array_equal(second, fake_outputs(X[:1] * 2))
    assert first.dtype == np.float32 and first.flags.writeable
    np.testing.assert_array_equal(fake_service.seen[0], X)
    assert ready and connects == 1


def test_the_endpoints_version_is_asked_for(served):
    async def scenario() -> tuple[list, str]:
        right, wrong = (GrpcClient(endpoint(served.address, version=version)) for version in ("1", "2"))
        try:
            steps = [await right.ready(), (await right.infer(X)).shape, await wrong.ready()]
            return steps, await instance_error(wrong)
        finally:
            await right.close()

    steps, message = uvloop.run(scenario())
    assert steps == [True, (3, 2), False]
    assert message.endswith("ModelInfer: NOT_FOUND: model 'toy' has no version '2'; available versions: ['1']")


def test_a_slow_server_is_an_instance_error(served, fake_service, monkeypatch):
    async def stall(inputs: np.ndarray):
        await asyncio.get_running_loop().create_future()  # never answers: the client's deadline ends the call

    monkeypatch.setattr(fake_service, "infer", stall)
    message = uvloop.run(instance_error(GrpcClient(endpoint(served.address, timeout_s=0.05))))
    assert message.startswith(f"grpc://{served.address} ModelInfer: DEADLINE_EXCEEDED")


def test_a_refused_call_says_why_in_one_line(served):
    reason = uvloop.run(instance_error(GrpcClient(endpoint(served.address, output="probs"))))
    assert "ModelInfer: INVALID_ARGUMENT: requested output 'probs' does not exist" in reason
    assert "\n" not in reason


def _output(datatype: str = "FP32", shape: tuple[int, ...] = (3, 2), name: str = "output"):
    return pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=shape)


@pytest.mark.parametrize(("response", "message"), [
    (pb.ModelInferResponse(outputs=[_output(name="logits")], raw_output_contents=[bytes(24)]),
     "answered no raw output 'output' (outputs: ['logits'], 1 raw_output_contents)"),
    (pb.ModelInferResponse(outputs=[_output()]), "answered no raw output 'output' (outputs: ['output'], 0 raw"),
    (pb.ModelInferResponse(outputs=[_output("INT32")], raw_output_contents=[bytes(24)]),
     "answered output 'output' as INT32, not a floating-point type"),
    (pb.ModelInferResponse(outputs=[_output()], raw_output_contents=[bytes(20)]),
     "answered 20 bytes for output 'output' of shape [3, 2] FP32"),
    (pb.ModelInferResponse(outputs=[_output(shape=(2, 3))], raw_output_contents=[bytes(24)]),
     "answered output 'output' of shape [2, 3] for a batch of 3"),
], ids=["no-output", "no-raw", "datatype", "size", "rows"])
def test_a_wrong_answer_is_an_instance_error(answering, response, message):
    assert message in uvloop.run(instance_error(GrpcClient(endpoint(answering(response)))))


def test_a_restarted_server_is_seen_again_by_the_same_client(served, fake_outputs):
    async def scenario() -> list:
        client = GrpcClient(endpoint(served.address))
        try:
            steps = [await client.ready(), (await client.infer(X)).tolist()]
            await asyncio.to_thread(served.stop)
            steps.append(await client.ready())
            with pytest.raises(InstanceError, match="ModelInfer: UNAVAILABLE"):
                await client.infer(X)
            await asyncio.to_thread(served.start)  # on the same port
            steps += [await client.ready(), (await client.infer(X)).tolist(), client.connects]
            return steps
        finally:
            await client.close()

    expected = fake_outputs(X).tolist()
    assert uvloop.run(scenario()) == [True, expected, False, True, expected, 2]


def test_a_server_that_is_not_up_is_not_ready(served):
    served.stop()
    client = GrpcClient(endpoint(served.address))

    async def scenario() -> tuple[bool, str]:
        return await client.ready(), await instance_error(client)

    ready, message = uvloop.run(scenario())
    assert not ready
    assert message.startswith(f"grpc://{served.address} ModelInfer: UNAVAILABLE: ")
    assert client.connects == 0
