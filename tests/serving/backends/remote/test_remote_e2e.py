"""The remote backend end to end: `parm instance` servers in their own processes, parm's frontend over REST,
tritonclient as the client; one server SIGKILLed mid-load and started again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.http as triton

from parm.bench.cluster import InstanceServers
from parm.bench.harness import serve_locally
from parm.serving import ServeOptions, build_deployment
from parm.serving.backends.remote import RemoteBackend
from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED, CoordinatorConfig

from ...crash_load import load_with_crash
from ...exact_runs import INPUT_SHAPE, MODEL, affine_run, infer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_a_crashed_model_server_loses_no_query_and_its_return_is_seen(tmp_path: Path, grpc: bool) -> None:
    run, base = affine_run(tmp_path, k=2, r=1)
    deployment = build_deployment(run, ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.002)))
    queries = np.random.default_rng(1).random(size=(300, 1, *INPUT_SHAPE)).astype(np.float32)
    with InstanceServers(run, deployment.pools, grpc=grpc) as servers:
        endpoints = servers.endpoints()
        assert [e.model for e in endpoints] == [MODEL, MODEL, f"{MODEL}-parity-0"]
        with serve_locally(deployment, backend=RemoteBackend(endpoints)) as served:
            def crash() -> None:
                servers.kill(0)
                servers.restart(0)

            results = load_with_crash(served.address, queries, infer, crash)
            assert served.await_recoveries(1, timeout=120)
            assert served.instance_failures() == 1 and served.instance_recoveries() == 1
            registry = served.frontend.registry
            labels = {"instance": "0", "pool": "base", "url": endpoints[0].url}
            assert registry.get_sample_value("parm_remote_connections_total", labels) >= 2  # one more after the crash
            assert registry.get_sample_value("parm_remote_up", labels) == 1
            after, kind = infer(triton.InferenceServerClient(served.address), queries[0])  # still serving
    assert servers.starts(0) == 2
    with torch.no_grad():
        truth = base(torch.from_numpy(queries[:, 0])).numpy()
    kinds = [kind for _, kind in results]
    assert set(kinds) <= {ORIGINAL, RECONSTRUCTED} and RECONSTRUCTED in kinds
    np.testing.assert_allclose(np.concatenate([output for output, _ in results]), truth, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after[0], truth[0], rtol=1e-4, atol=1e-5)
