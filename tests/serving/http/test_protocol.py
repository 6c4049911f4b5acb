"""The v2 protocol messages without a server: request decoding and validation, response encoding."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest
import tritonclient.http as httpclient

from parm.serving.http import protocol, tensors
from parm.serving.http.model import ModelInfo, TensorSpec
from parm.serving.http.protocol import ProtocolError, RequestedOutput, parse_infer_request

TWO_INPUTS = ModelInfo(
    "pair",
    inputs=(TensorSpec("a", "INT32", (-1, 2)), TensorSpec("b", "UINT8", (-1, 3))),
    outputs=(TensorSpec("x", "FP32", (-1, 2)), TensorSpec("y", "INT64", (-1,))),
)


def triton_body(*inputs: httpclient.InferInput, outputs=None, **kwargs) -> tuple[bytes, int | None]:
    """A request body exactly as tritonclient would send it, and its Inference-Header-Content-Length."""
    return httpclient.InferenceServerClient.generate_request_body(list(inputs), outputs=outputs, **kwargs)


def triton_input(name: str, array: np.ndarray, datatype: str, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def json_request(data, shape=(1, 1, 2, 3), datatype="FP32", name="input", **extra) -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}],
                       **extra}).encode()


def rejected(body: bytes, model: ModelInfo, header_length: int | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_infer_request(body, header_length, model)
    return info.value


X = np.arange(12, dtype=np.float32).reshape(2, 1, 2, 3)


# ------------------------------------------------------------------------------------------------------ decoding


def test_binary_request_from_tritonclient(toy_model):
    body, header_length = triton_body(triton_input("input", X, "FP32"), request_id="q7")
    assert header_length is not None and header_length < len(body)
    request = parse_infer_request(body, header_length, toy_model)
    np.testing.assert_array_equal(request.inputs["input"], X)
    assert request.inputs["input"].dtype == np.float32 and request.inputs["input"].flags.writeable
    assert request.id == "q7" and request.batch_size == 2
    # No outputs named: tritonclient asks for every output in binary.
    assert request.outputs is None and request.binary_output is True


def test_json_request_from_tritonclient(toy_model):
    body, header_length = triton_body(triton_input("input", X, "FP32", binary=False),
                                      outputs=[httpclient.InferRequestedOutput("output", binary_data=False)])
    assert header_length is None
    request = parse_infer_request(body, None, toy_model)
    np.testing.assert_array_equal(request.inputs["input"], X)
    assert request.outputs == [RequestedOutput("output", False)] and request.binary_output is False


def test_flat_and_nested_json_data_agree(toy_model):
    flat = parse_infer_request(json_request(X.reshape(-1).tolist(), shape=X.shape), None, toy_model)
    nested = parse_infer_request(json_request(X.tolist(), shape=X.shape), None, toy_model)
    np.testing.assert_array_equal(flat.inputs["input"], X)
    np.testing.assert_array_equal(nested.inputs["input"], X)


def test_integer_json_data_is_fine_for_float_inputs(toy_model):
    request = parse_infer_request(json_request([0, 1, 2, 3, 4, 255]), None, toy_model)
    np.testing.assert_array_equal(request.inputs["input"].reshape(-1), [0, 1, 2, 3, 4, 255])
    assert request.inputs["input"].dtype == np.float32


@pytest.mark.parametrize("datatype", sorted(tensors.WIRE_DTYPES))
@pytest.mark.parametrize("binary", [True, False])
def test_every_datatype_decodes(datatype, binary):
    model = ModelInfo("m", (TensorSpec("t", datatype, (-1, 3)),), (TensorSpec("o", "FP32", (-1,)),))
    dtype = tensors.WIRE_DTYPES[datatype].newbyteorder("=")
    array = (np.arange(6).reshape(2, 3) % 2).astype(dtype) if datatype == "BOOL" else np.arange(6, dtype=dtype)
    array = array.reshape(2, 3)
    body, header_length = triton_body(triton_input("t", array, datatype, binary))
    request = parse_infer_request(body, header_length, model)
    assert request.inputs["t"].dtype == dtype
    np.testing.assert_array_equal(request.inputs["t"], array)


def test_binary_and_json_inputs_mix_in_input_order():
    a = np.array([[1, -2], [3, 4]], np.int32)
    b = np.array([[5, 6, 7], [8, 9, 250]], np.uint8)
    for a_binary, b_binary in [(True, True), (False, True), (True, False)]:
        inputs = triton_input("b", b, "UINT8", b_binary), triton_input("a", a, "INT32", a_binary)
        body, header_length = triton_body(*inputs)
        request = parse_infer_request(body, header_length, TWO_INPUTS)
        np.testing.assert_array_equal(request.inputs["a"], a)
        np.testing.assert_array_equal(request.inputs["b"], b)


def test_request_parameters_are_kept(toy_model):
    body, header_length = triton_body(triton_input("input", X, "FP32"), parameters={"tenant": "lab"}, priority=2)
    request = parse_infer_request(body, header_length, toy_model)
    assert request.parameters["tenant"] == "lab" and request.parameters["priority"] == 2


# ---------------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"{}", "needs 'inputs'"),
    (b'{"inputs": []}', "needs 'inputs'"),
    (b'{"inputs": [3]}', "string 'name'"),
    (json_request([0] * 6, name="pixels"), "unknown input 'pixels'; the model's inputs are 'input'"),
    (json_request([0] * 6, datatype="FP64"), "datatype \"FP64\", expected FP32"),
    (json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "data": [0] * 6}]}).encode(), "needs 'datatype'"),
    (json_request([0] * 6, shape=(1, 2, 3)), "has shape [1, 2, 3], expected [-1, 1, 2, 3] (batch first"),
    (json_request([0] * 6, shape=(1, 1, 3, 2)), "has shape [1, 1, 3, 2], expected [-1, 1, 2, 3]"),
    (json_request([0] * 6, shape="1x6"), "needs 'shape'"),
    (json_request([0] * 6, shape=(1, 1, 2, -3)), "needs 'shape'"),
    (json_request([0] * 5), "has 5 values in 'data', but shape [1, 1, 2, 3] needs 6"),
    (json_request([[0, 0, 0], [0, 0]]), "ragged"),
    (json_request("000000"), "'data' must be a list"),
    (json_request(["0"] * 6), "must hold numbers for FP32, got non-numeric values"),
    (json_request([None] * 6), "non-numeric values"),
    (json_request([True] * 6), "got booleans"),
    (json_request([], shape=(0, 1, 2, 3)), "batch is empty"),
    (json_request([0] * 54, shape=(9, 1, 2, 3)), "batch of 9 queries exceeds the max_batch_size 8"),
    (json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "datatype": "FP32"}]}).encode(), "has no data"),
    (json_request([0] * 6, outputs=[{"name": "logits"}]), "requested output 'logits' does not exist"),
    (json_request([0] * 6, outputs=[{"name": "output"}, {"name": "output"}]), "more than once"),
    (json_request([0] * 6, outputs=[{"name": "output", "parameters": {"binary_data": "yes"}}]), "true or false"),
    (json_request([0] * 6, outputs=[{"name": "output", "parameters": {"class_count": 3}}]), "classification"),
    (json_request([0] * 6, parameters={"binary_data_output": 1}), "'binary_data_output' must be true or false"),
    (json_request([0] * 6, parameters=[1]), "request 'parameters' must be a JSON object"),
    (json_request([0] * 6, id=5), "'id' must be a string"),
])
def test_invalid_requests_are_400_with_a_reason(toy_model, body, fragment):
    error = rejected(body, toy_model)
    assert error.status == 400
    assert fragment in str(error)


def test_duplicate_and_missing_inputs():
    a = {"name": "a", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]}
    assert "missing input(s) 'b'" in str(rejected(json.dumps({"inputs": [a]}).encode(), TWO_INPUTS))
    assert "more than once" in str(rejected(json.dumps({"inputs": [a, a]}).encode(), TWO_INPUTS))


def test_inputs_must_agree_on_batch_size():
    body = json.dumps({"inputs": [{"name": "a", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]},
                                  {"name": "b", "shape": [2, 3], "datatype": "UINT8", "data": [0] * 6}]}).encode()
    assert "disagree on the batch size" in str(rejected(body, TWO_INPUTS))


@pytest.mark.parametrize("data, datatype, fragment", [
    ([1.5, 2], "INT32", "must hold integers for INT32, got numbers"),
    ([1, 2**40], "INT32", "values must lie in [-2147483648, 2147483647]"),
    ([-1, 3], "UINT8", "values must lie in [0, 255]"),
])
def test_integer_json_data_is_checked_not_cast(data, datatype, fragment):
    model = ModelInfo("m", (TensorSpec("t", datatype, (-1, 2)),), (TensorSpec("o", "FP32", (-1,)),))
    assert fragment in str(rejected(json_request(data, shape=(1, 2), datatype=datatype, name="t"), model))


def binary_request(x: np.ndarray, declared_size: int | None = None, trailing: bytes = b"") -> tuple[bytes, int]:
    header = json.dumps({"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": declared_size or x.nbytes}}]}).encode()
    return header + x.astype("<f4").tobytes() + trailing, len(header)


def test_binary_sizes_must_match_shape_and_body(toy_model):
    x = X[:1]
    body, header_length = binary_request(x, declared_size=20)
    assert "has binary_data_size 20, but shape [1, 1, 2, 3] of FP32 needs 24 bytes" in str(
        rejected(body, toy_model, header_length))
    body, header_length = binary_request(x, declared_size=48)
    assert "only 24 bytes of binary data remain" in str(rejected(body, toy_model, header_length))
    body, header_length = binary_request(x, trailing=b"\0" * 4)
    assert "28 bytes of binary data after the JSON header" in str(rejected(body, toy_model, header_length))
    body, header_length = binary_request(x)
    assert "no Inference-Header-Content-Length header" in str(rejected(body[:header_length], toy_model))
    assert "body has only" in str(rejected(body, toy_model, len(body) + 1))
    assert "not valid JSON" in str(rejected(body, toy_model, header_length - 1))


def test_binary_bool_must_be_zero_or_one():
    model = ModelInfo("m", (TensorSpec("t", "BOOL", (-1, 2)),), (TensorSpec("o", "FP32", (-1,)),))
    header = json.dumps({"inputs": [{"name": "t", "shape": [1, 2], "datatype": "BOOL",
                                     "parameters": {"binary_data_size": 2}}]}).encode()
    assert "bytes 0 or 1" in str(rejected(header + b"\x01\x07", model, len(header)))


def test_both_data_and_binary_is_rejected(toy_model):
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "datatype": "FP32", "data": [0] * 6,
                                     "parameters": {"binary_data_size": 24}}]}).encode()
    assert "both 'data' and parameters.binary_data_size" in str(rejected(header + bytes(24), toy_model, len(header)))


# -------------------------------------------------------------------------------------------------------- framing


def test_header_and_content_length_parsing():
    assert protocol.parse_header_length(None) is None and protocol.parse_header_length("12") == 12
    for bad in ("x", "-1", ""):
        with pytest.raises(ProtocolError, match="Inference-Header-Content-Length"):
            protocol.parse_header_length(bad)
    assert protocol.parse_content_length("100", limit=100) == 100
    with pytest.raises(ProtocolError, match="of 101 bytes exceeds the server's limit of 100 bytes") as info:
        protocol.parse_content_length("101", limit=100)
    assert info.value.status == 413


def test_decode_content():
    payload = b'{"inputs": []}' * 10
    assert protocol.decode_content(payload, None, 1000) == payload
    assert protocol.decode_content(gzip.compress(payload), "gzip", 1000) == payload
    assert protocol.decode_content(zlib.compress(payload), "deflate", 1000) == payload
    cases = [(gzip.compress(payload), "gzip", 100, 413), (b"junk", "gzip", 1000, 400),
             (gzip.compress(payload)[:-8], "gzip", 1000, 400), (payload, "br", 1000, 415)]
    for body, encoding, limit, status in cases:
        with pytest.raises(ProtocolError) as info:
            protocol.decode_content(body, encoding, limit)
        assert info.value.status == status, encoding


def test_check_model_names_what_is_served(toy_model):
    protocol.check_model(toy_model, "toy")
    protocol.check_model(toy_model, "toy", "1")
    with pytest.raises(ProtocolError, match="unknown model 'mnist'; this server serves model 'toy'") as info:
        protocol.check_model(toy_model, "mnist")
    assert info.value.status == 404
    with pytest.raises(ProtocolError, match="has no version '2'") as info:
        protocol.check_model(toy_model, "toy", "2")
    assert info.value.status == 404


# ---------------------------------------------------------------------------------------------------- input policy

BOUNDED = ModelInfo("bounded", inputs=(TensorSpec("input", "FP32", (-1, 1, 2, 3), bounds=(0.0, 1.0)),),
                    outputs=(TensorSpec("output", "FP32", (-1, 2)),))


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_json_values_are_refused_naming_the_element(token):
    body = b'{"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "datatype": "FP32", "data": [0, 0, 0, 0, %s, 0]}]}' % (
        token.encode())
    error = rejected(body, BOUNDED)
    assert error.status == 400 and "non-finite" in error.message and "[0, 0, 1, 1]" in error.message


def test_non_finite_binary_values_are_refused():
    x = np.zeros((1, 1, 2, 3), np.float32)
    x[0, 0, 1, 2] = np.nan
    body, length = triton_body(triton_input("input", x, "FP32"))
    error = rejected(body, BOUNDED, length)
    assert error.status == 400 and "[0, 0, 1, 2]" in error.message


def test_values_outside_the_training_range_are_refused_or_clipped():
    x = np.full((1, 1, 2, 3), 0.5, np.float32)
    x[0, 0, 0, 1] = 3e38
    body, length = triton_body(triton_input("input", x, "FP32"))
    error = rejected(body, BOUNDED, length)
    assert error.status == 400 and "outside [0, 1]" in error.message and "[0, 0, 0, 1]" in error.message
    clipping = ModelInfo("clipping", inputs=(TensorSpec("input", "FP32", (-1, 1, 2, 3), bounds=(0.0, 1.0), clip=True),),
                         outputs=BOUNDED.outputs)
    clipped = parse_infer_request(body, length, clipping).inputs["input"]
    assert clipped[0, 0, 0, 1] == 1.0 and (clipped[0, 0, 0, [0, 2]] == 0.5).all()


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"inputs": [{"name": "input", "shape": [1, 1, 2, 3], "datatype": "FP32", "data": ' + b"[" * 5000 + b"]" * 5000
    + b"}]}",
    b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
])
def test_json_nested_too_deeply_is_a_400_not_a_recursion_error(body):
    error = rejected(body, BOUNDED)
    assert error.status == 400 and ("deep" in error.message or "deeper" in error.message)


def test_data_nested_deeper_than_its_shape_is_refused():
    error = rejected(json_request([[[[[[0.0] * 3] * 2]]]]), BOUNDED)
    assert error.status == 400 and "deeper than its shape" in error.message


@pytest.mark.parametrize("data", [[0.0, 0.5, True, 0.5, 0.5, 0.5], [[0.0, 0.5, 0.5], [0.5, False, 0.5]]])
def test_a_boolean_among_numbers_is_refused_not_read_as_one(data):
    error = rejected(json_request(data), BOUNDED)
    assert error.status == 400 and "mixes booleans" in error.message


def test_an_integer_beyond_64_bits_is_named_as_such():
    error = rejected(json_request([10**30] + [0] * 5), BOUNDED)
    assert error.status == 400 and "beyond 64 bits" in error.message
