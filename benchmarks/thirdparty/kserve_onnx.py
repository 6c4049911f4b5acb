"""Serve an exported ONNX model repository (`parm export --format onnx`) with KServe's ModelServer.

A real third-party Open Inference Protocol server for parm's remote backend to sit in front of: every model of the
repository (``DIR/<model>/<version>/model.onnx``, the latest version, named after its folder as Triton names it) is
a `kserve.Model` whose ``predict`` runs ONNX Runtime with one intra-op thread; REST only (gRPC off), one worker,
bound to 127.0.0.1. It prints ``ready http://127.0.0.1:PORT`` once it serves (``--port 0``: a free port).

    .venv/bin/python benchmarks/thirdparty/kserve_onnx.py DIR --port 9001 [--models NAME ...]

It must never import tritonclient.grpc or parm.serving.grpc: both register the Open Inference Protocol's protobuf
messages (``inference.ServerLiveRequest``, ...) that kserve registers too, and the second import fails. So it
imports nothing from parm, and tests run it as a subprocess.

What KServe 0.21.0 does, measured with tritonclient.http 2.73 and raw HTTP requests (tests/export/test_kserve_host.py
checks each of these but the 503):

- Triton's binary tensor extension: yes, both ways. A request whose header ``Inference-Header-Content-Length`` gives
  the JSON part's length, with ``binary_data_size`` on its inputs, is read (Content-Type absent or
  ``application/octet-stream``; with ``application/json`` it is refused, 400 "There was an error parsing the body").
  Outputs come back binary when asked, per output (``"parameters": {"binary_data": true}``) or for all of them
  (request parameter ``binary_data_output``): the response then carries ``Inference-Header-Content-Length`` and no
  Content-Type. tritonclient.http works unchanged as soon as one input is binary.
- A JSON request needs ``Content-Type: application/json``: without it (or with any other type) KServe takes the
  body for binary tensors and answers 400 "received byte inputs, but the'inference-header-content-length' header is
  missing." tritonclient.http sends a request whose inputs are all JSON with no Content-Type at all, so it needs
  ``client.infer(..., headers={"Content-Type": "application/json"})``; curl -d sends
  application/x-www-form-urlencoded: pass -H 'Content-Type: application/json'.
- ``GET /v2/health/ready``: 200 ``{"ready":true}`` (``/v2/health/live``: 200 ``{"live":true}``);
  ``GET /v2/models/NAME/ready``: 200 ``{"name":"NAME","ready":true}``, and for a model not served 404
  ``{"error":"Model with name NAME does not exist."}`` (inference on it: 404 too). By KServe's source (not measured), a model registered but not ready gets 503.
- A failing predict: one that raises ``kserve.errors.InvalidInput`` (this script's checks of input name, datatype
  and shape) gets 400 ``{"error": MESSAGE}``; any other exception 500 ``{"error": "TYPE : MESSAGE"}`` (an input whose
  data does not fill its shape fails inside KServe's decoding: 500 "ValueError : cannot reshape array ...");
  a body sent as application/json that is not JSON gets FastAPI's 422 ``{"detail": [...]}``.
- Binding: KServe's REST server hard-codes host 0.0.0.0 (kserve/protocol/rest/server.py, no option or environment
  variable), so this script puts a subclass that binds 127.0.0.1 where ModelServer.start looks its REST server up;
  ``enable_grpc=False`` keeps the gRPC server (which would bind [::]:8081) off, and ``workers=1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import uvicorn

# kserve parses sys.argv when imported (kserve/model_server.py); it must not read this script's options.
_argv, sys.argv = sys.argv, sys.argv[:1]
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.rest.server import RESTServer  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402

sys.argv = _argv
HOST = "127.0.0.1"


class OnnxModel(Model):
    """One exported model, run by ONNX Runtime on one intra-op thread."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        (self.input,), (self.output,) = self.session.get_inputs(), self.session.get_outputs()
        self.ready = True

    def get_input_types(self) -> list[dict]:
        return [{"name": self.input.name, "datatype": "FP32", "shape": [-1, *self.input.shape[1:]]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": self.output.name, "datatype": "FP32", "shape": [-1, *self.output.shape[1:]]}]

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        tensors = {tensor.name: tensor for tensor in payload.inputs}
        if set(tensors) != {self.input.name}:
            raise InvalidInput(f"model {self.name} takes one input {self.input.name!r}, got {sorted(tensors)}")
        x = tensors[self.input.name].as_numpy()
        if x.dtype != np.float32 or tuple(x.shape[1:]) != tuple(self.input.shape[1:]):
            dims = ", ".join(str(d) for d in self.input.shape[1:])
            raise InvalidInput(f"{self.input.name} must be FP32 of shape [N, {dims}], got {x.dtype} {list(x.shape)}")
        (logits,) = self.session.run([self.output.name], {self.input.name: x})
        output = InferOutput(self.output.name, list(logits.shape), "FP32")
        output.set_data_from_numpy(logits, binary_data=payload.use_binary_outputs)
        return InferResponse(payload.id or generate_uuid(), self.name, [output],
                             use_binary_outputs=payload.use_binary_outputs, requested_outputs=payload.request_outputs)


class AnnouncingServer(uvicorn.Server):
    """Uvicorn, saying on stdout where it serves once its socket listens (a test waits on that line)."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"ready http://{HOST}:{port}", flush=True)


class LoopbackRESTServer(RESTServer):
    """KServe's REST server on 127.0.0.1: KServe 0.21 binds 0.0.0.0 with no option to change it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = HOST
        self._server = AnnouncingServer(self.config)  # in place of KServe's, which only adds TLS reloading


def find_models(repository: Path, names: list[str] | None) -> dict[str, Path]:
    """Model name -> its latest version's model.onnx; ``names`` picks some, refused naming the ones there are."""
    found = {}
    for folder in sorted(p for p in repository.iterdir() if p.is_dir()):
        versions = [p for p in folder.glob("*/model.onnx") if p.parent.name.isdigit()]
        if versions:
            found[folder.name] = max(versions, key=lambda p: int(p.parent.name))
    if not found:
        raise SystemExit(f"{repository} holds no DIR/<model>/<version>/model.onnx: write one with "
                         "`parm export RUN --format onnx --out DIR`")
    unknown = sorted(set(names or ()) - set(found))
    if unknown:
        raise SystemExit(f"--models {' '.join(unknown)}: not in {repository}, which holds {', '.join(found)}")
    return {name: found[name] for name in names} if names else found


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: kserve_onnx.py models/ --port 9001")
    parser.add_argument("repository", type=Path, metavar="DIR", help="a model repository from `parm export`")
    parser.add_argument("--port", type=int, default=9001, help="HTTP port on 127.0.0.1, 0 for a free one "
                        "(default: %(default)s)")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="serve only these models (default: all)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if not args.repository.is_dir():
        raise SystemExit(f"{args.repository} is not a folder: give the --out of `parm export`")
    models = find_models(args.repository, args.models)
    # ModelServer.start builds its REST server from this module-level name; nothing else in KServe reads it.
    model_server.RESTServer = LoopbackRESTServer
    server = ModelServer(http_port=args.port, enable_grpc=False, workers=1, enable_latency_logging=False)
    server.start([OnnxModel(name, path) for name, path in models.items()])


if __name__ == "__main__":
    main(sys.argv[1:])
