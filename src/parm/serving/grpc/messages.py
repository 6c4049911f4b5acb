"""The Open Inference Protocol's gRPC messages to and from parm's requests, with the REST rules on every tensor.

A ``ModelInferRequest`` is read into the same `InferRequest` as a REST body, by handing its tensors to
`parm.serving.http.protocol` as the REST document they stand for (``raw_input_contents`` as binary tensor data,
typed ``contents`` as a ``data`` list): a gRPC client is held to exactly the rules, and gets exactly the messages,
of a REST one. What only gRPC has (raw contents beside typed ones, the typed field for a datatype) is checked here.
Responses carry their outputs as ``raw_output_contents`` and the REST answer's parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as config_pb2
from tritonclient.grpc import service_pb2 as pb

from parm.serving.http import protocol, responses
from parm.serving.http.model import ModelInfo, Prediction, TensorSpec
from parm.serving.http.protocol import InferRequest, ProtocolError
from parm.serving.http.tensors import WIRE_DTYPES

# The typed ``InferTensorContents`` field of each datatype (FP16 has none: it travels as raw contents only).
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
            "FP64": "fp64_contents"}


def server_metadata() -> pb.ServerMetadataResponse:
    """The ServerMetadata answer: what GET /v2 says."""
    return json_format.ParseDict(responses.server_metadata(), pb.ServerMetadataResponse())


def model_metadata(model: ModelInfo) -> pb.ModelMetadataResponse:
    """The ModelMetadata answer: what GET /v2/models/{model} says."""
    return json_format.ParseDict(responses.model_metadata(model), pb.ModelMetadataResponse())


def model_config(model: ModelInfo) -> pb.ModelConfigResponse:
    """A Triton model configuration for ``model`` (perf_analyzer and Triton's tools ask for one): the batch
    dimension is implied by ``max_batch_size``, as Triton writes it."""
    def tensors(specs: tuple[TensorSpec, ...], kind: type) -> list:
        return [kind(name=spec.name, data_type=config_pb2.DataType.Value(f"TYPE_{spec.datatype}"),
                     dims=spec.shape[1:]) for spec in specs]

    config = config_pb2.ModelConfig(name=model.name, platform=model.platform, max_batch_size=model.max_batch_size,
                                    input=tensors(model.inputs, config_pb2.ModelInput),
                                    output=tensors(model.outputs, config_pb2.ModelOutput))
    return pb.ModelConfigResponse(config=config)


def parse_infer_request(request: pb.ModelInferRequest, model: ModelInfo) -> InferRequest:
    """Validate ``request`` against ``model`` and decode its inputs (any failure: `ProtocolError`, as REST's)."""
    protocol.check_model(model, request.model_name, request.model_version or None)
    raw = list(request.raw_input_contents)  # each read of a protobuf bytes field is a copy: read them once
    if raw and len(raw) != len(request.inputs):
        raise ProtocolError(400, f"the request has {len(raw)} raw_input_contents for {len(request.inputs)} inputs; "
                                 "give one per input, in input order, or none (typed contents)")
    items = [_input_item(tensor, raw[i] if raw else None) for i, tensor in enumerate(request.inputs)]
    binary = memoryview(raw[0] if len(raw) == 1 else b"".join(raw)) if raw else None
    # `protocol`'s document-level checks (inputs and outputs), reused as they are: see the module docstring.
    inputs = protocol.parse_inputs(items, binary, model, literals=False)
    outputs = protocol.parse_outputs([{"name": output.name, "parameters": _parameters(output.parameters)}
                                       for output in request.outputs], False, model)
    return InferRequest(request.id or None, inputs, outputs)


def _input_item(tensor: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> dict[str, Any]:
    """The REST document of one input tensor: its raw contents' size, or its typed contents as ``data``."""
    item: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape),
                            "parameters": _parameters(tensor.parameters)}
    has_contents = tensor.HasField("contents")
    if raw is not None:
        if has_contents:
            raise ProtocolError(400, f"input '{tensor.name}' has both contents and raw_input_contents; give one")
        item["parameters"]["binary_data_size"] = len(raw)
        return item
    if not has_contents:
        raise ProtocolError(400, f"input '{tensor.name}' has no data; give its contents or raw_input_contents")
    field = CONTENTS.get(tensor.datatype)
    given = [descriptor.name for descriptor, _ in tensor.contents.ListFields()]
    if field is not None and given and given != [field]:
        raise ProtocolError(400, f"input '{tensor.name}' of datatype {tensor.datatype} must carry its values in "
                                 f"contents.{field}, not {', '.join(given)}")
    item["data"] = list(getattr(tensor.contents, field)) if field is not None else []
    return item


def _parameters(parameters: Any) -> dict[str, Any]:
    """A protobuf map of ``InferParameter`` as the plain values a REST document holds."""
    chosen = {key: (value, value.WhichOneof("parameter_choice")) for key, value in parameters.items()}
    return {key: getattr(value, choice) for key, (value, choice) in chosen.items() if choice is not None}


def encode_infer_response(model: ModelInfo, request: InferRequest, prediction: Prediction) -> pb.ModelInferResponse:
    """The answer to ``request``: its outputs as raw contents, ``answer`` (and the latencies) as parameters, the
    request's id echoed. An output the service did not produce is a server bug (ValueError)."""
    produced = {model.outputs[0].name: prediction.outputs}
    specs = {spec.name: spec for spec in model.outputs}
    names = [output.name for output in request.outputs] if request.outputs else list(produced)
    response = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id or "")
    for key, value in responses.infer_parameters(prediction).items():
        response.parameters[key].string_param = value
    for name in names:
        if name not in produced:
            raise ValueError(f"the service produced no output '{name}'")
        spec = specs[name]
        array = np.asarray(produced[name]).astype(WIRE_DTYPES[spec.datatype], copy=False)
        response.outputs.add(name=name, datatype=spec.datatype, shape=array.shape)
        response.raw_output_contents.append(array.tobytes())
    return response
