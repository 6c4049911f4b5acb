"""The gRPC server over a real coded `Frontend`, on the loop uvicorn serves it from, with real instance processes:
the answers of REST and gRPC agree with F exactly, reconstructions included, and an instance that dies and is
restarted (a fork of the serving process, with gRPC running) comes back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from parm.bench.harness import serve_locally
from parm.serving import ServeOptions, build_deployment
from parm.serving.core.coordinator import RECONSTRUCTED, CoordinatorConfig
from parm.bench.cluster import free_port

from ..exact_runs import INPUT_SHAPE, affine_run

pytestmark = pytest.mark.slow
MODEL = "toy-logistic-regression"


def answer(client, module, x: np.ndarray) -> tuple[np.ndarray, str]:
    tensor = module.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(MODEL, [tensor])
    response = result.get_response()
    kind = response.parameters["answer"].string_param if module is grpcclient else response["parameters"]["answer"]
    return result.as_numpy("logits"), kind


def test_grpc_beside_rest_over_a_coded_frontend(tmp_path: Path) -> None:
    run, base = affine_run(tmp_path, k=2, r=1)
    options = ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.001), delays={0: 3.0})  # 0 straggles
    rng = np.random.default_rng(0)
    port = free_port()
    with serve_locally(build_deployment(run, options), grpc_port=port) as served:  # as `parm serve --grpc-port`
        with grpcclient.InferenceServerClient(f"127.0.0.1:{port}") as rpc, \
                httpclient.InferenceServerClient(served.address) as rest:
            assert rpc.is_server_ready() and rpc.is_model_ready(MODEL)
            kinds = []
            for client, module in ((rpc, grpcclient), (rest, httpclient), (rpc, grpcclient)):
                x = rng.random((1, *INPUT_SHAPE), dtype=np.float32)
                output, kind = answer(client, module, x)
                with torch.no_grad():
                    np.testing.assert_allclose(output, base(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
                kinds.append(kind)
            assert kinds[0] == RECONSTRUCTED  # the first query lands on the straggler
            served.kill(1, restart=True)
            assert served.await_recoveries(1, timeout=60)
            x = rng.random((4, *INPUT_SHAPE), dtype=np.float32)
            output, kind = answer(rpc, grpcclient, x)
            with torch.no_grad():
                np.testing.assert_allclose(output, base(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
            assert len(kind.split(",")) == 4
