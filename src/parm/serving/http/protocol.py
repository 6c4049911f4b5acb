"""The Open Inference Protocol (KServe v2) REST requests, with Triton's binary tensor data extension.

Pure functions from bytes to validated arrays (their answers: `parm.serving.http.responses`), so the HTTP layer
stays thin and every validation rule is testable without a server. Failures raise `ProtocolError` with the HTTP status to answer and a message that tells the client
what was wrong and how to fix it; the request is never silently repaired (no casts, no reshapes beyond row-major).

Binary tensor data: when the ``Inference-Header-Content-Length`` HTTP header is present, the body is a JSON header of
that many bytes followed by the raw little-endian bytes of each input that declares ``parameters.binary_data_size``,
in input order. Responses use the same layout for outputs the client asked to get in binary.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson

from parm.serving.http import json_body
from parm.serving.http.model import ModelInfo, TensorSpec
from parm.serving.http.tensors import TensorError, decode_binary_data, decode_json_data, may_hold_literals

HEADER_LENGTH = "Inference-Header-Content-Length"

class ProtocolError(Exception):
    """A request the protocol rejects; ``status`` is the HTTP status to answer with (400, 404, 413, 415), with
    ``headers`` (ASGI name and value pairs) beside the JSON error."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


class RequestedOutput(NamedTuple):
    """An output the client named, and whether it wants it as binary tensor data."""

    name: str
    binary: bool


@dataclass
class InferRequest:
    """A validated inference request: inputs are native-endian arrays of the declared shape, batch first."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput] | None = None
    binary_output: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        """The number of queries n (every input's first dimension)."""
        return next(iter(self.inputs.values())).shape[0]


def check_model(model: ModelInfo, name: str, version: str | None = None) -> None:
    """Raise 404 unless the path names the served model (and, if given, its version)."""
    if name != model.name:
        raise ProtocolError(404, f"unknown model '{name}'; this server serves model '{model.name}'")
    if version is not None and version != model.version:
        raise ProtocolError(404, f"model '{name}' has no version '{version}'; available versions: ['{model.version}']")


# ------------------------------------------------------------------------------------------------------ body framing


def body_too_large(limit: int, size: int | None = None) -> ProtocolError:
    """The 413 for a body over ``limit`` bytes (``size`` when known up front, from Content-Length)."""
    got = f"of {size} bytes " if size is not None else ""
    return ProtocolError(413, f"request body {got}exceeds the server's limit of {limit} bytes; "
                              "send fewer queries per request")


def parse_content_length(value: str | None, limit: int) -> int | None:
    """The declared body size, rejecting (413) a body over ``limit`` before it is read."""
    if value is None:
        return None
    size = _header_int("Content-Length", value)
    if size > limit:
        raise body_too_large(limit, size)
    return size


def parse_header_length(value: str | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as an int (None: the whole body is JSON)."""
    return None if value is None else _header_int(HEADER_LENGTH, value)


def _header_int(header: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        number = -1
    if number < 0:
        raise ProtocolError(400, f"header {header}: {value!r} is not a non-negative integer")
    return number


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a request's Content-Encoding (gzip or deflate, as tritonclient can send), at most ``limit`` bytes out."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ProtocolError(415, f"Content-Encoding '{encoding}' is not supported; send the body uncompressed, "
                                 "gzip or deflate")
    decoder = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(400, f"request body is not valid {encoding} data ({exc})") from None
    if len(out) > limit:
        raise body_too_large(limit)
    if not decoder.eof:
        raise ProtocolError(400, f"request body is truncated {encoding} data")
    return out


# ----------------------------------------------------------------------------------------------------------- request


def parse_infer_request(body: bytes, header_length: int | None, model: ModelInfo) -> InferRequest:
    """Validate an inference request body against ``model`` and decode its inputs (any failure: ProtocolError).

    The common JSON request is read with simdjson (`parm.serving.http.json_body`), any other (and the short JSON
    header of a binary one) with orjson (7x faster than the standard library on a 12 KB query). A body they refuse,
    or that fails a check, is read again with the standard library, whose reading (``NaN`` and ``Infinity`` tokens,
    integers of any size, lone surrogates) lets the answer name the exact problem: errors take the slow path.
    """
    try:
        return _parse(body, header_length, model, _fast_loads if header_length is None else orjson.loads)
    except ProtocolError:
        return _parse(body, header_length, model, json.loads)


def _fast_loads(header: bytes) -> Any:
    doc = json_body.load(header)
    return doc if doc is not None else orjson.loads(header)


def _parse(body: bytes, header_length: int | None, model: ModelInfo, loads: Callable[[bytes], Any]) -> InferRequest:
    header, binary = _split_body(body, header_length)
    doc = _load_json_object(header, loads)
    parameters = _object(doc.get("parameters"), "request 'parameters'")
    binary_output = _flag(parameters, "binary_data_output", False, "request parameter")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, f"request 'id' must be a string, got {json.dumps(request_id)}")
    inputs = parse_inputs(doc.get("inputs"), binary, model, may_hold_literals(header))
    outputs = parse_outputs(doc.get("outputs"), binary_output, model)
    return InferRequest(request_id, inputs, outputs, binary_output, parameters)


def _split_body(body: bytes, header_length: int | None) -> tuple[bytes, memoryview | None]:
    if header_length is None:
        return body, None
    if header_length > len(body):
        raise ProtocolError(400, f"{HEADER_LENGTH} is {header_length} but the body has only {len(body)} bytes")
    view = memoryview(body)
    return bytes(view[:header_length]), view[header_length:]


def _load_json_object(header: bytes, loads: Callable[[bytes], Any]) -> dict[str, Any]:
    try:
        doc = loads(header)
    except RecursionError:
        raise ProtocolError(400, "request body nests JSON arrays or objects too deeply; an input's 'data' nests at "
                                 "most as deep as its shape") from None
    except ValueError as exc:  # orjson.JSONDecodeError is one too
        raise ProtocolError(400, f"request body is not valid JSON ({exc}); send a JSON object, or a JSON header "
                                 f"followed by binary tensor data with the {HEADER_LENGTH} header") from None
    if not isinstance(doc, dict):
        raise ProtocolError(400, f"request body must be a JSON object, got {type(doc).__name__}")
    return doc


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(400, f"{what} must be a JSON object")
    return value


def _flag(parameters: dict[str, Any], key: str, default: bool, what: str) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(400, f"{what} '{key}' must be true or false, got {json.dumps(value)}")
    return value


def _names(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"'{spec.name}'" for spec in specs)


def parse_inputs(raw: Any, binary: memoryview | None, model: ModelInfo, literals: bool) -> dict[str, np.ndarray]:
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(400, f"request needs 'inputs': a non-empty list of tensors (the model's inputs are "
                                 f"{_names(model.inputs)})")
    specs = {spec.name: spec for spec in model.inputs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for item in raw:
        spec = _input_spec(item, specs, arrays, model)
        arrays[spec.name], offset = _decode_input(item, spec, binary, offset, literals)
    if binary is not None and offset != len(binary):
        raise ProtocolError(400, f"the body has {len(binary)} bytes of binary data after the JSON header but the "
                                 f"inputs' binary_data_size values add up to {offset}")
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise ProtocolError(400, f"missing input(s) {', '.join(repr(name) for name in missing)}")
    _check_batch(arrays, model)
    return arrays


def _input_spec(item: Any, specs: dict[str, TensorSpec], seen: dict[str, np.ndarray], model: ModelInfo) -> TensorSpec:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ProtocolError(400, "each input must be a JSON object with a string 'name', 'shape', 'datatype' and "
                                 "'data' (or parameters.binary_data_size)")
    name = item["name"]
    if name not in specs:
        raise ProtocolError(400, f"unknown input '{name}'; the model's inputs are {_names(model.inputs)}")
    if name in seen:
        raise ProtocolError(400, f"input '{name}' is given more than once")
    spec = specs[name]
    if "datatype" not in item:
        raise ProtocolError(400, f"input '{name}' needs 'datatype': {spec.datatype}")
    if item["datatype"] != spec.datatype:
        raise ProtocolError(400, f"input '{name}' has datatype {json.dumps(item.get('datatype'))}, expected "
                                 f"{spec.datatype} (the server does not cast; send {spec.datatype} data)")
    _check_shape(item.get("shape"), spec)
    return spec


def _check_shape(shape: Any, spec: TensorSpec) -> None:
    valid = isinstance(shape, list) and all(type(dim) is int and dim >= 0 for dim in shape)
    if not valid:
        raise ProtocolError(400, f"input '{spec.name}' needs 'shape': a list of non-negative integers like "
                                 f"{list(spec.shape)} (-1 = any size), got {json.dumps(shape)}")
    fits = len(shape) == len(spec.shape) and all(want in (-1, got) for got, want in zip(shape, spec.shape))
    if not fits:
        raise ProtocolError(400, f"input '{spec.name}' has shape {shape}, expected {list(spec.shape)} "
                                 "(batch first, -1 = any size)")


def _check_batch(arrays: dict[str, np.ndarray], model: ModelInfo) -> None:
    sizes = {name: array.shape[0] for name, array in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ProtocolError(400, f"inputs disagree on the batch size (first dimension): {sizes}")
    n = next(iter(sizes.values()))
    if n < 1:
        raise ProtocolError(400, "the batch is empty (first dimension 0); send at least one query")
    if n > model.max_batch_size:
        raise ProtocolError(400, f"a batch of {n} queries exceeds the max_batch_size {model.max_batch_size} of model "
                                 f"'{model.name}'; split it into smaller requests")


def _decode_input(item: dict[str, Any], spec: TensorSpec, binary: memoryview | None,
                  offset: int, literals: bool) -> tuple[np.ndarray, int]:
    """The input's array, and the offset of the next input's binary data."""
    parameters = _object(item.get("parameters"), f"input '{spec.name}' 'parameters'")
    if "shared_memory_region" in parameters:
        raise ProtocolError(400, f"input '{spec.name}': shared memory is not supported; send the data inline")
    size = parameters.get("binary_data_size")
    shape = tuple(item["shape"])
    if size is None:
        if "data" not in item:
            raise ProtocolError(400, f"input '{spec.name}' has no data; give 'data' or parameters.binary_data_size")
        return _tensor(decode_json_data, spec, item["data"], shape, literals), offset
    if "data" in item:
        raise ProtocolError(400, f"input '{spec.name}' has both 'data' and parameters.binary_data_size; give one")
    if binary is None:
        raise ProtocolError(400, f"input '{spec.name}' has parameters.binary_data_size but the request has no "
                                 f"{HEADER_LENGTH} header saying where the JSON header ends")
    if type(size) is not int or size < 0:
        raise ProtocolError(400, f"input '{spec.name}': binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise ProtocolError(400, f"input '{spec.name}' has binary_data_size {size} but only "
                                 f"{len(binary) - offset} bytes of binary data remain in the body")
    return _tensor(decode_binary_data, spec, binary[offset:offset + size], shape), offset + size


def _tensor(decode: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
    try:
        return decode(*args)
    except TensorError as exc:
        raise ProtocolError(400, str(exc)) from None


def parse_outputs(raw: Any, binary_output: bool, model: ModelInfo) -> list[RequestedOutput] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        raise ProtocolError(400, "request 'outputs' must be a list of {\"name\": ...} objects")
    known = {spec.name for spec in model.outputs}
    requested: list[RequestedOutput] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError(400, "each requested output must be a JSON object with a string 'name'")
        name = item["name"]
        if name not in known:
            raise ProtocolError(400, f"requested output '{name}' does not exist; the model's outputs are "
                                     f"{_names(model.outputs)}")
        if name in (output.name for output in requested):
            raise ProtocolError(400, f"output '{name}' is requested more than once")
        requested.append(RequestedOutput(name, _output_binary(item, name, binary_output)))
    return requested


def _output_binary(item: dict[str, Any], name: str, default: bool) -> bool:
    parameters = _object(item.get("parameters"), f"output '{name}' 'parameters'")
    if parameters.get("class_count", 0) or "shared_memory_region" in parameters:
        raise ProtocolError(400, f"output '{name}': classification and shared memory are not supported")
    return _flag(parameters, "binary_data", default, f"output '{name}' parameter")
