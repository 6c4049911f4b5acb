"""A real third-party server, KServe's ModelServer, hosting what `parm export` writes (benchmarks/thirdparty).

KServe and tritonclient.grpc cannot live in one process (both register the same protobuf messages), so the server
runs as a subprocess: started on a free loopback port, waited for on its ``ready`` line, SIGKILLed at the end. The
raw-HTTP checks hold the script's documented findings about KServe 0.21 to what it really does.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import tritonclient.http as triton

from parm.export import TOLERANCE, export_run
from serving.exact_runs import CLASSES, INPUT_SHAPE, affine_run

from thirdparty import SCRIPT, kserve, needs_kserve

from .models import BASE, expected_models, pytorch

pytestmark = needs_kserve


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, dict[str, Path], Path]]:
    """KServe serving a k = 2, r = 2 export: (its URL, model name -> PyTorch checkpoint, the repository)."""
    root = tmp_path_factory.mktemp("kserve")
    run_path, _ = affine_run(root, k=2, r=2)
    export_run(run_path, root / "repo")
    with kserve(root / "repo", root / "kserve.log") as (url, _):
        yield url, expected_models(run_path), root / "repo"


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, headers, body) of one raw HTTP call, error statuses included."""
    call = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def json_query(x: np.ndarray, **extra) -> bytes:
    return json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape),
                                   "data": x.ravel().tolist()}], **extra}).encode()


def test_every_model_answers_tritonclient_like_pytorch_binary_and_json(served):
    url, checkpoints, repo = served
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_ready()
    x = np.random.default_rng(0).random((5, *INPUT_SHAPE), dtype=np.float32)
    for name, checkpoint in checkpoints.items():
        assert client.is_model_ready(name)
        want = pytorch(checkpoint, x)
        session = onnxruntime.InferenceSession(str(repo / name / "1" / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        (runtime,) = session.run(["logits"], {"input": x})
        for binary in (True, False):
            tensor = triton.InferInput("input", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=binary)
            outputs = [triton.InferRequestedOutput("logits", binary_data=binary)]
            # tritonclient sends a JSON-only request with no Content-Type, which KServe reads as binary tensors
            headers = None if binary else {"Content-Type": "application/json"}
            logits = client.infer(name, [tensor], outputs=outputs, headers=headers).as_numpy("logits")
            assert logits.shape == (5, CLASSES)
            np.testing.assert_allclose(logits, want, rtol=0, atol=TOLERANCE)
            np.testing.assert_allclose(logits, runtime, rtol=0, atol=TOLERANCE)
    with pytest.raises(triton.InferenceServerException, match=r"\[400\].*inference-header-content-length"):
        client.infer(BASE, [tensor], outputs=outputs)  # the JSON-only request without the header
    client.close()


def test_health_and_model_ready_answers(served):
    url, _, _ = served
    assert request(f"{url}/v2/health/ready")[::2] == (200, b'{"ready":true}')
    assert request(f"{url}/v2/health/live")[::2] == (200, b'{"live":true}')
    status, _, body = request(f"{url}/v2/models/{BASE}/ready")
    assert (status, json.loads(body)) == (200, {"name": BASE, "ready": True})
    status, _, body = request(f"{url}/v2/models/nope/ready")
    assert status == 404 and "does not exist" in json.loads(body)["error"]


def test_binary_tensors_both_ways_and_json_needs_its_content_type(served):
    url, _, _ = served
    infer = f"{url}/v2/models/{BASE}/infer"
    x = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, *INPUT_SHAPE)
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, *INPUT_SHAPE],
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
    binary = {"Inference-Header-Content-Length": str(len(header))}
    status, headers, body = request(infer, json_query(x), {"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    as_json = np.asarray(json.loads(body)["outputs"][0]["data"], np.float32)
    assert as_json.shape == (CLASSES,)
    status, headers, body = request(infer, header + x.tobytes(), binary | {"Content-Type": "application/octet-stream"})
    assert status == 200 and headers["Content-Type"] is None
    length = int(headers["Inference-Header-Content-Length"])
    assert json.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 4 * CLASSES}
    np.testing.assert_array_equal(np.frombuffer(body[length:], np.float32), as_json)
    assert request(infer, header + x.tobytes(), binary | {"Content-Type": "application/json"})[0] == 400
    all_binary = json_query(x, parameters={"binary_data_output": True})
    status, headers, body = request(infer, all_binary, {"Content-Type": "application/json"})
    assert status == 200 and len(body) == int(headers["Inference-Header-Content-Length"]) + 4 * CLASSES
    status, _, body = request(infer, json_query(x))  # urllib's default: application/x-www-form-urlencoded
    assert status == 400 and b"inference-header-content-length" in body


def test_a_failing_predict_gets_400_for_invalid_input_and_500_otherwise_and_bad_json_422(served):
    url, _, _ = served
    infer, as_json = f"{url}/v2/models/{BASE}/infer", {"Content-Type": "application/json"}
    status, _, body = request(infer, json_query(np.zeros((1, 16), np.float32)), as_json)
    assert status == 400 and "must be FP32 of shape [N, 1, 4, 4]" in json.loads(body)["error"]
    unfilled = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, *INPUT_SHAPE],
                                       "data": [0.0, 0.0]}]}).encode()
    status, _, body = request(infer, unfilled, as_json)
    assert status == 500 and json.loads(body)["error"].startswith("ValueError")
    status, _, body = request(infer, b'{"inputs":', as_json)
    assert status == 422 and "detail" in json.loads(body)
    assert request(f"{url}/v2/models/nope/infer", json_query(np.zeros((1, *INPUT_SHAPE), np.float32)),
                   as_json)[0] == 404


@pytest.mark.skipif(sys.platform != "linux", reason="Linux routes all of 127.0.0.0/8 to loopback")
def test_it_listens_on_127_0_0_1_only(served):
    url, _, _ = served
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):  # a 0.0.0.0 bind would accept here
        socket.create_connection(("127.0.0.2", port), timeout=5).close()


def test_the_script_refuses_a_model_the_repository_does_not_hold(tmp_path):
    run_path, _ = affine_run(tmp_path)
    export_run(run_path, tmp_path / "repo")
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "repo"), "--models", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"--models nope: not in {tmp_path / 'repo'}, which holds {BASE}" in done.stderr
