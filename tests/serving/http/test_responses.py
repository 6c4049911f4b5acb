"""Responses of the Open Inference Protocol: metadata, errors and inference results, as tritonclient reads them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient

from parm.serving.http import protocol, responses
from parm.serving.http.model import ModelInfo, TensorSpec
from parm.serving.http.protocol import InferRequest, RequestedOutput

TWO_INPUTS = ModelInfo(
    "pair",
    inputs=(TensorSpec("a", "INT32", (-1, 2)), TensorSpec("b", "UINT8", (-1, 3))),
    outputs=(TensorSpec("x", "FP32", (-1, 2)), TensorSpec("y", "INT64", (-1,))),
)


def test_metadata(toy_model):
    assert "binary_tensor_data" in responses.server_metadata()["extensions"]
    assert responses.model_metadata(toy_model) == {
        "name": "toy", "versions": ["1"], "platform": "parm",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 2, 3]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}],
    }
    assert json.loads(responses.error_body("boom")) == {"error": "boom"}


# ------------------------------------------------------------------------------------------------------- encoding


OUTPUTS = {"x": np.array([[1.5, -2], [3, 4]], np.float32), "y": np.array([7, -8], np.int64)}


def decode_response(body: bytes, headers: dict[str, str]):
    length = headers.get(protocol.HEADER_LENGTH)
    return httpclient.InferenceServerClient.parse_response_body(body, header_length=None if length is None else
                                                                int(length))


def test_binary_response_when_no_outputs_named():
    request = InferRequest("r1", {}, outputs=None, binary_output=True)
    body, headers = responses.encode_infer_response(TWO_INPUTS, request, OUTPUTS, {"answer": "original,default"})
    assert headers["Content-Type"] == "application/octet-stream"
    result = decode_response(body, headers)
    np.testing.assert_array_equal(result.as_numpy("x"), OUTPUTS["x"])
    np.testing.assert_array_equal(result.as_numpy("y"), OUTPUTS["y"])
    response = result.get_response()
    assert response["model_name"] == "pair" and response["model_version"] == "1" and response["id"] == "r1"
    assert response["parameters"] == {"answer": "original,default"}
    assert [o["parameters"]["binary_data_size"] for o in response["outputs"]] == [16, 16]


def test_json_response_by_default():
    body, headers = responses.encode_infer_response(TWO_INPUTS, InferRequest(None, {}), OUTPUTS, {})
    assert headers == {"Content-Type": "application/json"}
    doc = json.loads(body)
    assert "id" not in doc
    assert doc["outputs"][0] == {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1.5, -2.0, 3.0, 4.0]}
    np.testing.assert_array_equal(decode_response(body, headers).as_numpy("y"), OUTPUTS["y"])


def test_requested_outputs_choose_order_and_encoding():
    request = InferRequest(None, {}, outputs=[RequestedOutput("y", False), RequestedOutput("x", True)])
    body, headers = responses.encode_infer_response(TWO_INPUTS, request, OUTPUTS, {})
    assert int(headers[protocol.HEADER_LENGTH]) == len(body) - OUTPUTS["x"].nbytes
    result = decode_response(body, headers)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["y", "x"]
    assert result.get_output("y")["data"] == [7, -8]
    np.testing.assert_array_equal(result.as_numpy("x"), OUTPUTS["x"])


def test_only_requested_outputs_are_sent():
    request = InferRequest(None, {}, outputs=[RequestedOutput("x", False)])
    body, _ = responses.encode_infer_response(TWO_INPUTS, request, OUTPUTS, {})
    assert [o["name"] for o in json.loads(body)["outputs"]] == ["x"]


def test_outputs_are_encoded_as_declared_datatype():
    request = InferRequest(None, {}, binary_output=True)
    outputs = {"x": np.ones((1, 2), np.float64), "y": np.array([3], np.int32)}
    body, headers = responses.encode_infer_response(TWO_INPUTS, request, outputs, {})
    result = decode_response(body, headers)
    assert result.as_numpy("x").dtype == np.float32 and result.as_numpy("y").dtype == np.int64


def test_service_bugs_are_not_protocol_errors():
    with pytest.raises(ValueError, match="not declared"):
        responses.encode_infer_response(TWO_INPUTS, InferRequest(None, {}), {"z": np.zeros(1)}, {})
    with pytest.raises(ValueError, match="no output 'y'"):
        request = InferRequest(None, {}, outputs=[RequestedOutput("y", True)])
        responses.encode_infer_response(TWO_INPUTS, request, {"x": OUTPUTS["x"]}, {})
