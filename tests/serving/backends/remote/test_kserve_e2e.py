"""parm in front of a real third-party server: KServe's ModelServer hosting what `parm export` wrote.

Base and parity instances are KServe processes (ONNX Runtime inside), parm's frontend reaches them through the
remote backend, tritonclient is the client. One KServe process is SIGKILLed mid-load and started again on its port.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.http as triton

from parm.bench.cluster import free_port
from parm.bench.harness import serve_locally
from parm.export import export_run
from parm.serving import ServeOptions, build_deployment
from parm.serving.backends.remote import RemoteBackend, load_cluster
from parm.serving.backends.remote.cluster import Endpoint, pool_sizes
from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED, CoordinatorConfig
from parm.serving.core.pools import BASE_POOL, parity_pool
from thirdparty import kserve, needs_kserve, start_kserve, wait_for_ready

from ...crash_load import load_with_crash
from ...exact_runs import INPUT_SHAPE, MODEL, affine_run, infer

pytestmark = [pytest.mark.slow, needs_kserve]


def test_kserve_instances_behind_parm_lose_no_query_when_one_is_killed(tmp_path: Path) -> None:
    run, base = affine_run(tmp_path, k=2, r=1)
    repo = tmp_path / "repo"
    export_run(run, repo)
    assert {e.model for e in load_cluster(repo / "cluster.yaml")} == {MODEL, f"{MODEL}-parity-0"}
    pools = [(BASE_POOL, MODEL), (BASE_POOL, MODEL), (parity_pool(0), f"{MODEL}-parity-0")]
    ports = [free_port() for _ in pools]
    logs = [tmp_path / f"kserve-{i}.log" for i in range(len(pools))]
    processes = [start_kserve(repo, log, port, [model]) for (_, model), port, log in zip(pools, ports, logs)]
    try:
        endpoints = [Endpoint(pool, wait_for_ready(process), model, timeout_s=2.0)
                     for (pool, model), process in zip(pools, processes)]
        options = ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.002))
        deployment = build_deployment(run, replace(options, pool_sizes=pool_sizes(endpoints)))
        queries = np.random.default_rng(1).random(size=(300, 1, *INPUT_SHAPE)).astype(np.float32)
        with serve_locally(deployment, backend=RemoteBackend(endpoints)) as served:
            def crash() -> None:  # SIGKILL: connections reset, nothing drained; then the same server again
                processes[0].kill()
                processes[0].wait()
                processes[0] = start_kserve(repo, logs[0], ports[0], [MODEL])

            results = load_with_crash(served.address, queries, infer, crash)
            assert served.await_recoveries(1, timeout=120)
            assert served.instance_failures() == 1 and served.instance_recoveries() == 1
        with serve_locally(build_deployment(run, options)) as local:  # `parm serve`'s own instances, same queries
            client = triton.InferenceServerClient(local.address)
            local_outputs = np.concatenate([infer(client, x)[0] for x in queries[:20]])
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
    with torch.no_grad():
        truth = base(torch.from_numpy(queries[:, 0])).numpy()
    outputs = np.concatenate([output for output, _ in results])
    kinds = [kind for _, kind in results]
    assert set(kinds) <= {ORIGINAL, RECONSTRUCTED} and RECONSTRUCTED in kinds
    np.testing.assert_allclose(outputs, truth, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs[:20], local_outputs, rtol=1e-4, atol=1e-5)


def test_a_json_only_endpoint_gets_answers_from_kserve(tmp_path: Path) -> None:
    run, base = affine_run(tmp_path, k=2, r=1)
    export_run(run, tmp_path / "repo")
    with kserve(tmp_path / "repo", tmp_path / "kserve.log") as (url, _):
        endpoints = [Endpoint(BASE_POOL, url, MODEL, binary=False)]
        options = ServeOptions(mode="none", instances=1, pool_sizes=pool_sizes(endpoints))
        with serve_locally(build_deployment(run, options), backend=RemoteBackend(endpoints)) as served:
            x = np.random.default_rng(2).random(size=(3, *INPUT_SHAPE)).astype(np.float32)
            output, kind = infer(triton.InferenceServerClient(served.address), x)
    with torch.no_grad():
        np.testing.assert_allclose(output, base(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
    assert kind == ",".join([ORIGINAL] * 3)
