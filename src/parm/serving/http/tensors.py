"""Tensor data of the Open Inference Protocol: JSON ``data`` lists and binary chunks to checked numpy arrays.

Every rule on values lives here: the datatype a JSON list may hold (no silent casts, no booleans read as 1),
integer ranges, and the model's input bounds (non-finite values are always refused). Failures raise
`TensorError`, which `parm.serving.http.protocol` answers with a 400.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from parm.serving.http.model import TensorSpec

# Open Inference Protocol datatype -> numpy dtype as it travels on the wire (little-endian).
WIRE_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
# The numpy kinds a JSON ``data`` list may hold for each datatype family: ints are fine for floats, not the reverse.
_JSON_KINDS = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}
# A body with more candidate letters than this is scanned for literals in full (see `may_hold_literals`).
_LITERAL_CANDIDATES = 16


class TensorError(ValueError):
    """Tensor data that does not fit its declaration; the message names the input and the fix."""


def may_hold_literals(body: bytes) -> bool:
    """Whether ``body`` may hold a JSON ``true`` or ``false``, without scanning it byte by byte in Python.

    ``b"true" in body`` costs 6 us per 12 KB of numbers; a C ``memchr`` for the rarer letters ``u`` and ``f`` (which
    no number holds) and a look at each hit costs well under one, for bodies whose keys hold a few of them.
    """
    for letter, literal, back in ((b"u", b"true", 2), (b"f", b"false", 0)):
        at = body.find(letter)
        for _ in range(_LITERAL_CANDIDATES):
            if at < 0:
                break
            if body[at - back:at - back + len(literal)] == literal:
                return True
            at = body.find(letter, at + 1)
        else:
            if literal in body:
                return True
    return False


def decode_binary_data(spec: TensorSpec, chunk: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    """An input from its raw little-endian bytes (a copy in native byte order: it does not pin the body)."""
    wire = WIRE_DTYPES[spec.datatype]
    needed = math.prod(shape) * wire.itemsize
    if len(chunk) != needed:
        raise TensorError(f"input '{spec.name}' has binary_data_size {len(chunk)}, but shape {list(shape)} "
                          f"of {spec.datatype} needs {needed} bytes")
    if spec.datatype == "BOOL" and len(chunk) and np.frombuffer(chunk, np.uint8).max() > 1:
        raise TensorError(f"input '{spec.name}': BOOL binary data must be bytes 0 or 1")
    return within_bounds(spec, np.frombuffer(chunk, wire).astype(wire.newbyteorder("=")).reshape(shape))


def decode_json_data(spec: TensorSpec, data: Any, shape: tuple[int, ...], literals: bool) -> np.ndarray:
    """An input from a JSON ``data`` list, or from the numbers of a flat one already read into an array
    (`parm.serving.http.json_body`); ``literals``: whether the body may hold ``true`` or ``false`` at all (else no
    value here can be a boolean)."""
    dtype = WIRE_DTYPES[spec.datatype].newbyteorder("=")
    if isinstance(data, np.ndarray):
        return within_bounds(spec, _sized(spec, data, shape).astype(dtype).reshape(shape))
    if not isinstance(data, list):
        raise TensorError(f"input '{spec.name}': 'data' must be a list of values (flat row-major or nested)")
    if _depth(data) > len(shape):
        raise TensorError(f"input '{spec.name}': 'data' nests deeper than its shape {list(shape)}")
    try:
        values = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise TensorError(f"input '{spec.name}': nested 'data' lists are ragged; use equal-length lists "
                          "or one flat row-major list") from None
    _sized(spec, values, shape)
    if literals and dtype.kind != "b" and values.dtype.kind != "b" and _holds_bool(data):
        raise TensorError(f"input '{spec.name}': 'data' mixes booleans with {_kind_words(dtype)} for "
                          f"{spec.datatype}; send {_kind_words(dtype)} only")
    if values.size and values.dtype.kind not in _JSON_KINDS[dtype.kind]:
        raise TensorError(f"input '{spec.name}': 'data' must hold {_kind_words(dtype)} for "
                          f"{spec.datatype}, got {_kind_words(values.dtype)}")
    _check_range(spec, values, dtype)
    return within_bounds(spec, values.astype(dtype).reshape(shape))


def _sized(spec: TensorSpec, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if values.size != math.prod(shape):
        raise TensorError(f"input '{spec.name}' has {values.size} values in 'data', but shape {list(shape)} "
                          f"needs {math.prod(shape)}")
    return values


def within_bounds(spec: TensorSpec, values: np.ndarray) -> np.ndarray:
    """Refuse non-finite values, and values outside the spec's bounds (or clip them in, if it says so)."""
    if values.dtype.kind != "f" or not values.size:
        return values
    if spec.bounds is not None and not spec.clip and spec.bounds[0] <= values.min() and values.max() <= spec.bounds[1]:
        return values  # the common case in two reductions (a NaN fails both comparisons and is named below)
    finite = np.isfinite(values)
    if not finite.all():
        index = np.unravel_index(int(np.flatnonzero(~finite)[0]), values.shape)
        raise TensorError(f"input '{spec.name}' holds a non-finite value ({values[index]}) at index "
                          f"{list(map(int, index))}; send finite numbers")
    if spec.bounds is None:
        return values
    low, high = spec.bounds
    if spec.clip:
        return np.clip(values, low, high, out=values)
    outside = (values < low) | (values > high)
    index = np.unravel_index(int(np.flatnonzero(outside)[0]), values.shape)
    raise TensorError(f"input '{spec.name}' holds {values[index]} at index {list(map(int, index))}, "
                      f"outside [{low:g}, {high:g}], the range the model was trained on; preprocess "
                      "inputs as in training")


def _holds_bool(data: Any) -> bool:
    """Whether a (nested) list holds a JSON boolean, which numpy would quietly turn into 1 or 0."""
    return any(value is True or value is False or (isinstance(value, list) and _holds_bool(value)) for value in data)


def _depth(data: list) -> int:
    """How deep ``data`` nests, along its first elements (a deeper ragged branch fails numpy's own check)."""
    depth = 0
    while isinstance(data, list):
        depth += 1
        data = data[0] if data else None
    return depth


def _kind_words(dtype: np.dtype) -> str:
    words = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers"}
    return words.get(dtype.kind, "non-numeric values (or integers beyond 64 bits)")


def _check_range(spec: TensorSpec, values: np.ndarray, dtype: np.dtype) -> None:
    if dtype.kind not in "iu" or not values.size:
        return
    info = np.iinfo(dtype)
    low, high = values.min(), values.max()
    if low < info.min or high > info.max:
        raise TensorError(f"input '{spec.name}': values must lie in [{info.min}, {info.max}] for "
                          f"{spec.datatype}, got [{low}, {high}]")
