"""Fuzzing the protocol layer: any body, header length and JSON is either a request or a `ProtocolError`.

Generated bodies range from random bytes and arbitrary JSON to near-valid requests with one field wrong,
non-finite or extreme values, deep nesting and binary tails; nothing may raise anything else (a 500).

Floats are drawn without subnormals: training flushes them to zero process-wide (`parm.runtime.flush_denormals`),
which hypothesis refuses to draw under.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parm.serving.http.model import ModelInfo, TensorSpec
from parm.serving.http.tensors import WIRE_DTYPES
from parm.serving.http.protocol import InferRequest, ProtocolError, parse_infer_request

MODEL = ModelInfo("fuzz", inputs=(TensorSpec("input", "FP32", (-1, 1, 2, 3), bounds=(0.0, 1.0)),),
                  outputs=(TensorSpec("output", "FP32", (-1, 2)),), max_batch_size=4)
SETTINGS = settings(max_examples=1500, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.text(max_size=8))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
    st.sampled_from(["inputs", "outputs", "name", "shape", "datatype", "data", "parameters", "id",
                     "binary_data", "binary_data_size", "binary_data_output"]) | st.text(max_size=4),
    inner, max_size=5), max_leaves=40)
shapes = st.one_of(st.just([1, 1, 2, 3]), st.lists(st.integers(-2, 4), max_size=5), documents)
values = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False), st.integers(-10**30, 10**30),
                            st.booleans()), max_size=14)
inputs = st.fixed_dictionaries({"name": st.sampled_from(["input", "other", ""]),
                                "shape": shapes,
                                "datatype": st.sampled_from([*WIRE_DTYPES, "FP32", "FP32", "BYTES", ""])},
                               optional={"data": st.one_of(values, documents),
                                         "parameters": st.one_of(documents, st.fixed_dictionaries(
                                             {"binary_data_size": st.integers(-4, 64)}))})
requests = st.fixed_dictionaries({"inputs": st.lists(inputs, max_size=3)},
                                 optional={"outputs": documents, "id": scalars, "parameters": documents})


@st.composite
def bodies(draw) -> tuple[bytes, int | None]:
    kind = draw(st.sampled_from(["request", "request", "document", "bytes", "deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200)), draw(st.one_of(st.none(), st.integers(-5, 300)))
    if kind == "deep":
        depth = draw(st.integers(1, 50_000))
        return b"[" * depth + b"]" * draw(st.integers(0, depth)), None
    document = draw(requests if kind == "request" else documents)
    header = json.dumps(document, allow_nan=True).encode()
    tail = draw(st.one_of(st.just(b""), st.binary(max_size=64),
                          st.builds(lambda x: x.tobytes(), st.just(np.full(6, 0.5, np.float32)))))
    length = draw(st.one_of(st.none(), st.just(len(header)), st.integers(-3, len(header) + len(tail) + 3)))
    return header + tail, length


@SETTINGS
@given(bodies())
def test_any_body_is_a_request_or_a_protocol_error(body_and_length) -> None:
    body, header_length = body_and_length
    try:
        request = parse_infer_request(body, header_length, MODEL)
    except ProtocolError as error:
        assert 400 <= error.status < 500 and error.message
        return
    assert isinstance(request, InferRequest)
    x = request.inputs["input"]
    assert x.dtype == np.float32 and x.shape[1:] == (1, 2, 3) and np.isfinite(x).all()
    assert ((x >= 0) & (x <= 1)).all()  # only in-range values reach the model
