"""parm's gRPC server, driven by an unmodified tritonclient.grpc, against parm's REST app over the same service.

Both protocols must answer alike: the same outputs and parameters for a query, the same metadata, and for a bad
query the same message (under the status code each protocol uses).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import uvloop
from google.protobuf import json_format
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc.service_pb2_grpc import GRPCInferenceServiceStub
from tritonclient.utils import InferenceServerException

from parm.serving.grpc import start_grpc_server
from parm.serving.http.app import build_app
from parm.serving.http.model import LATENCY_PARAMETER, ModelInfo, Prediction, TensorSpec, Unavailable

from .background import serve_grpc

X = np.random.default_rng(0).random((3, 1, 2, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def served(fake_service_factory, serve_app):
    """One fake behind both servers for the module; tests reset it."""
    fake = fake_service_factory()
    with serve_app(build_app(fake)) as rest_url, serve_grpc(fake) as grpc_served:
        yield rest_url, grpc_served.address, fake


@pytest.fixture
def fake_service(served):
    served[2].reset()
    return served[2]


@pytest.fixture
def clients(served, fake_service):
    """(tritonclient.http, tritonclient.grpc), each with its default settings."""
    with httpclient.InferenceServerClient(served[0]) as rest, grpcclient.InferenceServerClient(served[1]) as rpc:
        yield rest, rpc


@pytest.fixture
def stub(served, fake_service):
    """The bare generated stub, to send what tritonclient never does (typed contents, malformed requests)."""
    with grpc.insecure_channel(served[1]) as channel:
        yield GRPCInferenceServiceStub(channel)


def infer(client, x: np.ndarray, model: str = "toy", datatype: str = "FP32", **options):
    """``client``'s result for one query (``client``: a tritonclient.http or a tritonclient.grpc client)."""
    module = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    tensor = module.InferInput("input", list(x.shape), datatype)
    tensor.set_data_from_numpy(x)
    return client.infer(model, [tensor], **options)


def infer_both(clients, x: np.ndarray, **options) -> tuple:
    """(REST result, gRPC result) of the same query."""
    return tuple(infer(client, x, **options) for client in clients)


def errors_of_both(clients, x: np.ndarray, **options) -> tuple[InferenceServerException, ...]:
    """(REST error, gRPC error) of the same query, which both must refuse."""
    errors = []
    for client in clients:
        with pytest.raises(InferenceServerException) as error:
            infer(client, x, **options)
        errors.append(error.value)
    return tuple(errors)


def grpc_parameters(result: grpcclient.InferResult) -> dict[str, str]:
    return {key: value.string_param for key, value in result.get_response().parameters.items()}


def test_both_protocols_give_the_same_outputs_answers_and_id(clients, fake_outputs):
    rest_result, rpc_result = infer_both(clients, X, request_id="query-7")
    np.testing.assert_array_equal(rpc_result.as_numpy("output"), fake_outputs(X))
    np.testing.assert_array_equal(rpc_result.as_numpy("output"), rest_result.as_numpy("output"))
    assert grpc_parameters(rpc_result) == rest_result.get_response()["parameters"]
    assert grpc_parameters(rpc_result)["answer"] == "original,reconstructed,original"
    response = rpc_result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("query-7", "toy", "1")
    assert rpc_result.get_output("output").shape == [3, 2]


def test_latencies_travel_as_the_rest_parameter(clients, fake_service, fake_outputs, monkeypatch):
    async def timed(inputs: np.ndarray) -> Prediction:
        return Prediction(fake_outputs(inputs), ("original",) * len(inputs), (0.0012, 0.0005, 0.25)[:len(inputs)])

    monkeypatch.setattr(fake_service, "infer", timed)
    rest_result, rpc_result = infer_both(clients, X)
    assert grpc_parameters(rpc_result)[LATENCY_PARAMETER] == "1200,500,250000"
    assert grpc_parameters(rpc_result) == rest_result.get_response()["parameters"]


def test_metadata_is_the_rest_metadata(clients):
    rest, rpc = clients
    assert rpc.get_server_metadata() == json_format.ParseDict(rest.get_server_metadata(), pb.ServerMetadataResponse())
    model = json_format.ParseDict(rest.get_model_metadata("toy"), pb.ModelMetadataResponse())
    assert rpc.get_model_metadata("toy") == model
    assert rpc.get_model_metadata("toy", "1") == model
    assert list(model.inputs[0].shape) == [-1, 1, 2, 3]
    config = rpc.get_model_config("toy").config
    assert (config.name, config.max_batch_size, list(config.input[0].dims), config.output[0].name) == \
        ("toy", 8, [1, 2, 3], "output")


def test_live_and_ready_follow_the_service(clients, fake_service):
    _, rpc = clients
    assert rpc.is_server_live() and rpc.is_server_ready() and rpc.is_model_ready("toy")
    fake_service.ready = False
    assert rpc.is_server_live()
    assert not rpc.is_server_ready() and not rpc.is_model_ready("toy")


@pytest.mark.parametrize(("call", "message"), [
    ("get_model_metadata", "unknown model 'nope'; this server serves model 'toy'"),
    ("is_model_ready", "unknown model 'nope'; this server serves model 'toy'"),
    ("get_model_config", "unknown model 'nope'; this server serves model 'toy'"),
])
def test_an_unknown_model_is_not_found(clients, call, message):
    with pytest.raises(InferenceServerException) as error:
        getattr(clients[1], call)("nope")
    assert (error.value.status(), error.value.message()) == ("StatusCode.NOT_FOUND", message)


def _nan() -> np.ndarray:
    x = X.copy()
    x[1, 0, 1, 2] = np.nan
    return x


@pytest.mark.parametrize(("x", "options", "code", "message"), [
    (X[:, :, :, :2], {}, "INVALID_ARGUMENT", "input 'input' has shape [3, 1, 2, 2], expected [-1, 1, 2, 3]"),
    (_nan(), {}, "INVALID_ARGUMENT", "input 'input' holds a non-finite value (nan) at index [1, 0, 1, 2]"),
    (X.astype(np.float64), {"datatype": "FP64"}, "INVALID_ARGUMENT", "has datatype \"FP64\", expected FP32"),
    (np.zeros((9, 1, 2, 3), np.float32), {}, "INVALID_ARGUMENT", "exceeds the max_batch_size 8"),
    (X, {"model": "nope"}, "NOT_FOUND", "unknown model 'nope'; this server serves model 'toy'"),
    (X, {"model_version": "2"}, "NOT_FOUND", "model 'toy' has no version '2'"),
], ids=["shape", "non-finite", "datatype", "batch", "model", "version"])
def test_a_bad_query_gets_the_rest_message(clients, x, options, code, message):
    rest_error, rpc_error = errors_of_both(clients, x, **options)
    assert rpc_error.status() == f"StatusCode.{code}"
    assert message in rpc_error.message()
    assert rpc_error.message() == rest_error.message()


@pytest.mark.parametrize(("setup", "code", "message"), [
    (lambda fake: setattr(fake, "admitting", False), "RESOURCE_EXHAUSTED",
     "overloaded: the fake is full; retry after 1 s"),
    (lambda fake: setattr(fake, "error", Unavailable("draining")), "UNAVAILABLE", "unavailable: draining"),
    (lambda fake: setattr(fake, "error", RuntimeError("boom")), "INTERNAL",
     "internal server error (RuntimeError); see the server log"),
], ids=["overloaded", "unavailable", "internal"])
def test_a_failing_service_gets_its_status_code(clients, fake_service, setup, code, message):
    setup(fake_service)
    rest_error, rpc_error = errors_of_both(clients, X)
    assert (rpc_error.status(), rpc_error.message()) == (f"StatusCode.{code}", message)
    assert rest_error.message() == message


def test_overloaded_says_when_to_retry(stub, fake_service):
    fake_service.admitting = False
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(raw_request(X))
    assert dict(error.value.trailing_metadata())["retry-after"] == "1"


def raw_request(x: np.ndarray, raw: bytes | None = None, outputs: tuple[str, ...] = ()) -> pb.ModelInferRequest:
    """What tritonclient.grpc sends for ``x`` (``raw``: other raw contents instead of its bytes)."""
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    requested = [pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in outputs]
    return pb.ModelInferRequest(model_name="toy", inputs=[tensor], outputs=requested,
                                raw_input_contents=[x.tobytes() if raw is None else raw])


def typed_request(x: np.ndarray, field: str = "fp32_contents") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    getattr(tensor.contents, field).extend(x.reshape(-1).tolist())
    return pb.ModelInferRequest(model_name="toy", inputs=[tensor])


def test_typed_contents_are_answered_as_raw_ones(stub, fake_outputs):
    raw, typed = stub.ModelInfer(raw_request(X)), stub.ModelInfer(typed_request(X))
    assert typed == raw
    outputs = np.frombuffer(typed.raw_output_contents[0], np.float32).reshape(tuple(typed.outputs[0].shape))
    np.testing.assert_array_equal(outputs, fake_outputs(X))


def test_typed_contents_follow_the_rest_rules(stub, clients):
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(typed_request(_nan()))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == errors_of_both(clients, _nan())[0].message()


def _with_contents(request: pb.ModelInferRequest) -> pb.ModelInferRequest:
    request.inputs[0].contents.fp32_contents.extend([0.0] * 6)
    return request


@pytest.mark.parametrize(("request_", "message"), [
    (typed_request(X[:1].astype(np.int32), "int_contents"),
     "input 'input' of datatype FP32 must carry its values in contents.fp32_contents, not int_contents"),
    (_with_contents(raw_request(X[:1])), "input 'input' has both contents and raw_input_contents; give one"),
    (raw_request(X[:1], outputs=("probs",)),
     "requested output 'probs' does not exist; the model's outputs are 'output'"),
    (pb.ModelInferRequest(model_name="toy", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=[1, 1, 2, 3])]),
     "input 'input' has no data; give its contents or raw_input_contents"),
    (pb.ModelInferRequest(model_name="toy", raw_input_contents=[b"\0" * 24]),
     "the request has 1 raw_input_contents for 0 inputs; give one per input, in input order, or none (typed contents)"),
    (raw_request(X[:1], raw=b"\0" * 20),
     "input 'input' has binary_data_size 20, but shape [1, 1, 2, 3] of FP32 needs 24 bytes"),
], ids=["wrong-field", "both", "unknown-output", "no-data", "raw-count", "raw-size"])
def test_malformed_requests_are_invalid_arguments(stub, request_, message):
    with pytest.raises(grpc.RpcError) as error:
        stub.ModelInfer(request_)
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_a_paper_size_batch_fits_in_a_message(fake_service_factory, fake_outputs):
    """64 MiB messages, not gRPC's default 4 MiB: 8 queries of 3 x 224 x 224 floats are 4.8 MB."""
    model = ModelInfo("big", (TensorSpec("input", "FP32", (-1, 3, 224, 224)),), (TensorSpec("output", "FP32", (-1, 2)),))
    x = np.random.default_rng(1).random((8, 3, 224, 224), dtype=np.float32)
    with serve_grpc(fake_service_factory(model)) as served, grpcclient.InferenceServerClient(served.address) as client:
        tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        np.testing.assert_allclose(client.infer("big", [tensor]).as_numpy("output"), fake_outputs(x), rtol=1e-6)


def test_a_port_in_use_fails_at_once(served):
    port = int(served[1].rsplit(":", 1)[1])
    with pytest.raises(OSError, match=f"cannot serve gRPC on 127.0.0.1:{port}"):
        uvloop.run(start_grpc_server(served[2], port=port))


def test_it_serves_beside_uvicorn_on_its_uvloop_loop(fake_service_factory, serve_app, fake_outputs):
    """As `parm serve` would run both: the gRPC server started in the REST app's lifespan, on uvicorn's loop."""
    fake = fake_service_factory()
    started: concurrent.futures.Future = concurrent.futures.Future()

    @contextlib.asynccontextmanager
    async def lifespan():
        server = await start_grpc_server(fake)
        started.set_result((server.address, type(asyncio.get_running_loop())))
        yield
        await server.stop(0)

    with serve_app(build_app(fake, lifespan=lifespan), loop="uvloop") as rest_url:
        address, loop_type = started.result(timeout=10)
        with httpclient.InferenceServerClient(rest_url) as rest, grpcclient.InferenceServerClient(address) as rpc:
            rest_result, rpc_result = infer_both((rest, rpc), X)
    assert loop_type is uvloop.Loop
    np.testing.assert_array_equal(rpc_result.as_numpy("output"), rest_result.as_numpy("output"))
    np.testing.assert_array_equal(rpc_result.as_numpy("output"), fake_outputs(X))
