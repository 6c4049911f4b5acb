"""The Open Inference Protocol (KServe v2) REST responses: metadata, errors and inference results.

Pure functions to bytes, the counterpart of `parm.serving.http.protocol`'s request parsing. Outputs the client asks
for in binary use Triton's binary tensor data layout: a JSON header, then each binary output's raw bytes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from parm import __version__
from parm.serving.http.model import LATENCY_PARAMETER, ModelInfo, Prediction, TensorSpec
from parm.serving.http.protocol import HEADER_LENGTH, InferRequest, RequestedOutput
from parm.serving.http.tensors import WIRE_DTYPES

EXTENSIONS = ("binary_tensor_data", "parameters")


def server_metadata(name: str = "parm", version: str = __version__) -> dict[str, Any]:
    """The server metadata response (GET /v2)."""
    return {"name": name, "version": version, "extensions": list(EXTENSIONS)}


def model_metadata(model: ModelInfo) -> dict[str, Any]:
    """The model metadata response (GET /v2/models/{model})."""
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": model.platform,
        "inputs": [_tensor_metadata(spec) for spec in model.inputs],
        "outputs": [_tensor_metadata(spec) for spec in model.outputs],
    }


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def error_body(message: str) -> bytes:
    """The protocol's error response body."""
    return dumps({"error": message})


def encode_infer_response(model: ModelInfo, request: InferRequest, outputs: dict[str, np.ndarray],
                          parameters: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (Content-Type, and Inference-Header-Content-Length if any output is binary).

    ``outputs`` must hold every requested output; an output the model does not declare is a server bug (ValueError).
    """
    specs = {spec.name: spec for spec in model.outputs}
    undeclared = sorted(set(outputs) - set(specs))
    if undeclared:
        raise ValueError(f"outputs {undeclared} are not declared by model '{model.name}'")
    selected = request.outputs
    if selected is None:
        selected = [RequestedOutput(spec.name, request.binary_output) for spec in model.outputs if spec.name in outputs]
    entries, blobs = [], []
    for name, binary in selected:
        if name not in outputs:
            raise ValueError(f"the service produced no output '{name}'")
        entry, blob = _encode_output(specs[name], outputs[name], binary)
        entries.append(entry)
        blobs += [blob] if blob is not None else []
    doc: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.id is not None:
        doc["id"] = request.id
    doc.update(parameters=parameters, outputs=entries)
    header = dumps(doc)
    if not blobs:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(blobs), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}


def _encode_output(spec: TensorSpec, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    wire = WIRE_DTYPES[spec.datatype]
    array = np.asarray(array).astype(wire, copy=False)
    entry: dict[str, Any] = {"name": spec.name, "datatype": spec.datatype, "shape": list(array.shape)}
    if not binary:
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"output '{spec.name}' holds non-finite values, which JSON cannot carry")  # a 500
        entry["data"] = array.reshape(-1)
        return entry, None
    blob = array.tobytes()
    entry["parameters"] = {"binary_data_size": len(blob)}
    return entry, blob



def dumps(doc: dict[str, Any]) -> bytes:
    """``doc`` as compact JSON, numpy arrays as lists; by orjson, or by the standard library where orjson refuses (a
    request id with a lone surrogate, which the standard library read, and writes escaped)."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=np.ndarray.tolist).encode()


def infer_parameters(prediction: Prediction) -> dict[str, str]:
    """The parameters of an answer, REST or gRPC: how each query was answered and, if measured, its latency."""
    parameters = {"answer": ",".join(prediction.answers)}
    if prediction.latencies:
        parameters[LATENCY_PARAMETER] = ",".join(f"{seconds * 1e6:.0f}" for seconds in prediction.latencies)
    return parameters


def check_prediction(prediction: Prediction, n: int) -> None:
    """A service that answers the wrong number of queries has a bug (500), not a bad request."""
    rows = np.shape(prediction.outputs)[0] if np.ndim(prediction.outputs) else None
    if rows != n or len(prediction.answers) != n:
        raise RuntimeError(f"the service answered {rows} outputs and {len(prediction.answers)} answers "
                           f"for {n} queries")
