"""simdjson's reading of the common request agrees exactly with the standard reading, and steps aside otherwise."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parm.serving.http import json_body
from parm.serving.http.protocol import ProtocolError, parse_infer_request
from tests.serving.http.test_fuzz_protocol import MODEL, SETTINGS, bodies

# Numbers beyond float32 become inf in the cast (numpy warns), which the bounds then refuse, on both readings.
quiet_overflow = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
numbers = st.one_of(st.floats(0, 1, width=32), st.floats(0, 1), st.integers(0, 1),
                    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
                    st.integers(-2**63, 2**64 - 1))  # beyond 64 bits: the standard path (below)
common = st.builds(
    lambda rows, extra: json.dumps({"id": "q", "inputs": [{"name": "input", "shape": [len(rows), 1, 2, 3],
                                                           "datatype": "FP32", "data": [v for row in rows for v in row]
                                                           + extra}]}).encode(),
    st.lists(st.lists(numbers, min_size=6, max_size=6), min_size=1, max_size=3),
    st.lists(numbers, max_size=1))  # one value too many, now and then


def outcome(body: bytes, header_length: int | None):
    """The request parsed (its id, inputs as bytes) or the refusal (status, message)."""
    try:
        request = parse_infer_request(body, header_length, MODEL)
    except ProtocolError as error:
        return "refused", error.status, error.message
    return request.id, request.outputs, {name: (x.dtype, x.shape, x.tobytes()) for name, x in request.inputs.items()}


def standard(body: bytes, header_length: int | None):
    with mock.patch.object(json_body, "load", return_value=None):
        return outcome(body, header_length)


@quiet_overflow
@settings(SETTINGS, max_examples=500)
@given(common)
def test_common_requests_read_exactly_as_the_standard_reading(body: bytes) -> None:
    assert json_body.load(body) is not None
    assert outcome(body, None) == standard(body, None)


@quiet_overflow
@settings(SETTINGS, max_examples=500)
@given(bodies())
def test_any_body_gets_the_standard_reading_s_answer(body_and_length) -> None:
    body, header_length = body_and_length
    assert outcome(body, header_length) == standard(body, header_length)


def test_flat_numbers_become_one_float64_array() -> None:
    doc = json_body.load(b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 0.5, -0.0],'
                         b' "parameters": {"a": [1]}}], "parameters": {"b": true}}')
    data = doc["inputs"][0].pop("data")
    assert data.dtype == np.float64 and data.tolist() == [1.0, 0.5, -0.0] and np.signbit(data[2])
    assert doc == {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "parameters": {"a": [1]}}],
                   "parameters": {"b": True}}


def test_anything_but_the_common_request_is_left_to_the_standard_reading() -> None:
    def body(data, datatype: str = "FP32", extra: str = "") -> bytes:
        return (f'{{"inputs": [{{"name": "x", "datatype": "{datatype}", "shape": [1, 2]{data}}}]{extra}}}').encode()

    assert json_body.load(body(', "data": [1, 2]')) is not None
    for other in (body(', "data": [[1], [2]]'),  # nested: raggedness is checked on the standard path
                  body(', "data": [1, true]'), body(', "data": [1, "2"]'), body(', "data": [1, null]'),
                  body(', "data": [1, 2]', "INT32"),  # integer inputs keep their integer checks
                  body(', "data": [1, 2], "data": [3, 4]'), body(', "data": [1, 2]', extra=', "inputs": []'),
                  body(', "parameters": {"binary_data_size": 8}'),  # binary data: nothing to read here
                  body(', "data": [1e400, 2]'), b'{"inputs": []}', b"[1]", b"{", b"[" * 10_000 + b"]" * 10_000):
        assert json_body.load(other) is None, other
