"""The v2 REST app on a real uvicorn server, driven by an unmodified tritonclient.http and by plain HTTP (curl-like)."""

from __future__ import annotations

import http.client
import json
import logging
import re

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from parm.serving.http.app import build_app
from parm.serving.http.model import Overloaded, Unavailable

LIMIT = 4096
X = np.arange(18, dtype=np.float32).reshape(3, 1, 2, 3)


@pytest.fixture(scope="module")
def served(fake_service_factory, serve_app):
    """One server for the module (starting one per test costs a shutdown tick each); tests reset its fake."""
    fake = fake_service_factory()
    with serve_app(build_app(fake, max_body_bytes=LIMIT)) as base_url:
        yield base_url, fake


@pytest.fixture
def fake_service(served):
    served[1].reset()
    return served[1]


@pytest.fixture
def url(served, fake_service):
    return served[0]


@pytest.fixture
def client(url):
    with httpclient.InferenceServerClient(url) as triton:
        yield triton


@pytest.fixture
def conn(url):
    """A plain keep-alive HTTP connection, to send what curl would."""
    host, port = url.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    yield connection
    connection.close()


def triton_input(x: np.ndarray, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    return tensor


def request(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """(status, headers, body) of one exchange on ``conn``."""
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def json_query(x: np.ndarray, **extra) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.tolist()}], **extra}).encode()


def assert_good_query_works(conn, fake_outputs):
    status, _, body = request(conn, "POST", "/v2/models/toy/infer", json_query(X[:1]),
                              {"Content-Type": "application/json"})
    assert status == 200, body
    assert json.loads(body)["outputs"][0]["data"] == fake_outputs(X[:1]).reshape(-1).tolist()


# ------------------------------------------------------------------------------------------------ tritonclient


def test_tritonclient_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("toy") and client.is_model_ready("toy", "1")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("toy")
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 2, 3]}]
    assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}]
    assert client.get_model_metadata("toy", "1") == metadata


def test_tritonclient_infer_defaults(client, fake_service, fake_outputs):
    result = client.infer("toy", [triton_input(X)], request_id="abc")
    np.testing.assert_array_equal(result.as_numpy("output"), fake_outputs(X))
    response = result.get_response()
    assert response["parameters"]["answer"] == "original,reconstructed,original"
    assert response["id"] == "abc" and "binary_data_size" in response["outputs"][0]["parameters"]
    np.testing.assert_array_equal(fake_service.seen[0], X)


def test_tritonclient_requested_output(client, fake_outputs):
    result = client.infer("toy", [triton_input(X[:1])], outputs=[httpclient.InferRequestedOutput("output")])
    np.testing.assert_array_equal(result.as_numpy("output"), fake_outputs(X[:1]))
    assert result.get_response()["parameters"]["answer"] == "original"
    assert "binary_data_size" in result.get_output("output")["parameters"]


def test_tritonclient_json_both_ways(client, fake_outputs):
    result = client.infer("toy", [triton_input(X[:2], binary=False)], model_version="1",
                          outputs=[httpclient.InferRequestedOutput("output", binary_data=False)])
    assert result.get_output("output")["data"] == fake_outputs(X[:2]).reshape(-1).tolist()
    np.testing.assert_array_equal(result.as_numpy("output"), fake_outputs(X[:2]))
    assert result.get_response()["parameters"]["answer"] == "original,reconstructed"


def test_tritonclient_gzip_request(client, fake_outputs):
    result = client.infer("toy", [triton_input(X)], request_compression_algorithm="gzip")
    np.testing.assert_array_equal(result.as_numpy("output"), fake_outputs(X))


def test_tritonclient_sees_errors(client):
    with pytest.raises(InferenceServerException, match="unknown model 'mnist'") as info:
        client.infer("mnist", [triton_input(X)])
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException, match="expected \\[-1, 1, 2, 3\\]") as info:
        client.infer("toy", [triton_input(X.reshape(3, 2, 3))])
    assert info.value.status() == "400"
    with pytest.raises(InferenceServerException, match="datatype \"FP64\", expected FP32"):
        tensor = httpclient.InferInput("input", list(X.shape), "FP64")
        client.infer("toy", [tensor.set_data_from_numpy(X.astype(np.float64))])
    assert not client.is_model_ready("mnist")


# ------------------------------------------------------------------------------------------------- plain HTTP


def test_plain_json_query(conn, fake_outputs):
    status, headers, body = request(conn, "POST", "/v2/models/toy/versions/1/infer", json_query(X, id="q1"),
                                    {"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["id"] == "q1" and doc["model_name"] == "toy" and doc["model_version"] == "1"
    assert doc["parameters"] == {"answer": "original,reconstructed,original"}
    assert doc["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [3, 2],
                               "data": fake_outputs(X).reshape(-1).tolist()}]


@pytest.mark.parametrize("body, fragment", [
    (json_query(X.reshape(3, 2, 3)), "has shape [3, 2, 3], expected [-1, 1, 2, 3] (batch first"),
    (json_query(X).replace(b'"FP32"', b'"FP64"'), 'datatype "FP64", expected FP32'),
    (b'{"inputs": [', "not valid JSON"),
    (json_query(X, outputs=[{"name": "logits"}]), "requested output 'logits' does not exist"),
])
def test_malformed_query_is_400_and_server_carries_on(conn, fake_outputs, body, fragment):
    status, headers, answer = request(conn, "POST", "/v2/models/toy/infer", body)
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert fragment in json.loads(answer)["error"]
    assert_good_query_works(conn, fake_outputs)


def test_oversized_body_is_413(conn, fake_service, fake_outputs):
    status, _, answer = request(conn, "POST", "/v2/models/toy/infer", b" " * (LIMIT + 1))
    assert status == 413 and "limit of 4096 bytes" in json.loads(answer)["error"]
    assert_good_query_works(conn, fake_outputs)
    chunks = iter([b" " * 3000, b" " * 3000])  # chunked: no Content-Length, caught while streaming
    status, _, answer = request(conn, "POST", "/v2/models/toy/infer", chunks)
    assert status == 413 and "limit of 4096 bytes" in json.loads(answer)["error"]
    assert_good_query_works(conn, fake_outputs)
    assert len(fake_service.seen) == 2


def test_small_chunked_body_is_fine(conn, fake_outputs):
    body = json_query(X[:1])
    status, _, answer = request(conn, "POST", "/v2/models/toy/infer", iter([body[:10], body[10:]]))
    assert status == 200 and json.loads(answer)["parameters"]["answer"] == "original"


@pytest.mark.parametrize("method, path, status, fragment", [
    ("GET", "/v2/models/mnist", 404, "unknown model 'mnist'; this server serves model 'toy'"),
    ("GET", "/v2/models/toy/versions/2", 404, "has no version '2'"),
    ("GET", "/v2/models/toy/versions/2/ready", 404, "has no version '2'"),
    ("POST", "/v2/models/mnist/infer", 404, "unknown model 'mnist'"),
    ("GET", "/v2/nothing", 404, "Not Found: GET /v2/nothing"),
    ("GET", "/v2/models/toy/infer", 405, "Method Not Allowed"),
])
def test_routing_errors_are_json(conn, method, path, status, fragment):
    got, headers, body = request(conn, method, path, json_query(X) if method == "POST" else None)
    assert got == status and headers["Content-Type"] == "application/json"
    assert fragment in json.loads(body)["error"]


def test_overloaded_is_503_with_retry_after(conn, client, fake_service, fake_outputs):
    fake_service.error = Overloaded("queue full", retry_after=1.5)
    status, headers, body = request(conn, "POST", "/v2/models/toy/infer", json_query(X))
    assert status == 503 and headers["Retry-After"] == "2"
    assert "overloaded: queue full" in json.loads(body)["error"]
    with pytest.raises(InferenceServerException, match="queue full") as info:
        client.infer("toy", [triton_input(X)])
    assert info.value.status() == "503"
    fake_service.error = Overloaded("queue full", retry_after=0.01)
    assert request(conn, "POST", "/v2/models/toy/infer", json_query(X))[1]["Retry-After"] == "1"
    fake_service.error = None
    assert_good_query_works(conn, fake_outputs)


def test_unavailable_is_503(conn, fake_service):
    fake_service.error = Unavailable("shutting down")
    status, headers, body = request(conn, "POST", "/v2/models/toy/infer", json_query(X))
    assert status == 503 and "Retry-After" not in headers
    assert json.loads(body)["error"] == "unavailable: shutting down"


def test_service_failure_is_500_and_logged(conn, fake_service, caplog):
    fake_service.error = RuntimeError("kaboom")
    with caplog.at_level(logging.ERROR, logger="parm.serving.http.app"):
        status, _, body = request(conn, "POST", "/v2/models/toy/infer", json_query(X))
    assert status == 500 and "RuntimeError" in json.loads(body)["error"]
    assert any(record.exc_info and "kaboom" in str(record.exc_info[1]) for record in caplog.records)


def test_not_ready(conn, client, fake_service):
    fake_service.ready = False
    assert request(conn, "GET", "/v2/health/live")[0] == 200
    status, _, body = request(conn, "GET", "/v2/health/ready")
    assert status == 503 and "not ready" in json.loads(body)["error"]
    assert request(conn, "GET", "/v2/models/toy/ready")[0] == 503
    assert client.is_server_live() and not client.is_server_ready() and not client.is_model_ready("toy")


def queries_total(conn) -> float:
    status, headers, body = request(conn, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return float(re.search(r"^fake_queries_total (\S+)$", body.decode(), re.MULTILINE).group(1))


def test_metrics(conn, client):
    before = queries_total(conn)
    client.infer("toy", [triton_input(X)])
    assert queries_total(conn) == before + 3
