"""`parm serve`'s stack end to end on loopback: real instance processes, uvicorn, tritonclient."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.http as triton

from parm.bench.harness import serve_locally
from parm.serving import MODES, Frontend, ServeOptions, build_deployment
from parm.serving.backends.local import LocalBackend
from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED, CoordinatorConfig

from .crash_load import load_with_crash
from .exact_runs import INPUT_SHAPE, MODEL, affine_run, infer

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def serving(source: Path, options: ServeOptions, processes: int | None = None,
            **server) -> Iterator[tuple[str, LocalBackend, Frontend]]:
    """A real server with local instance processes (one per instance, or ``processes``) on an ephemeral loopback port."""
    with serve_locally(build_deployment(source, options), processes=processes, **server) as served:
        yield served.address, served.backend, served.frontend


def expected(base: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return base(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("processes", [None, 1], ids=["process-per-instance", "one-shared-process"])
def test_tritonclient_with_default_settings_gets_originals_and_exact_reconstructions(tmp_path: Path,
                                                                                   processes: int | None) -> None:
    run, base = affine_run(tmp_path, k=2, r=1)
    options = ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.001), delays={0: 3.0})  # base instance 0 straggles
    rng = np.random.default_rng(0)
    with serving(run, options, processes) as (address, _, frontend):  # a shared process holds 0's answer, not the others
        client = triton.InferenceServerClient(address)
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)
        assert client.get_model_metadata(MODEL)["inputs"][0]["shape"] == [-1, *INPUT_SHAPE]
        kinds = []
        for _ in range(3):  # the first query lands on the straggler and is rebuilt from the parity
            x = rng.random(size=(1, *INPUT_SHAPE)).astype(np.float32)
            output, kind = infer(client, x)
            np.testing.assert_allclose(output, expected(base, x), rtol=1e-4, atol=1e-5)
            kinds.append(kind)
        assert kinds[0] == RECONSTRUCTED and ORIGINAL in kinds[1:]
        batch = rng.random(size=(4, *INPUT_SHAPE)).astype(np.float32)
        output, kind = infer(client, batch)  # one request, four queries: one answer kind each
        np.testing.assert_allclose(output, expected(base, batch), rtol=1e-4, atol=1e-5)
        assert len(kind.split(",")) == 4
        metrics = frontend.registry.get_sample_value("parm_answers_total", {"mode": "parm", "answer": "reconstructed"})
        assert metrics >= 1


def post(address: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*address.split(":"))
    connection.request("POST", f"/v2/models/{MODEL}/infer", body=body, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


def test_malformed_requests_get_clear_4xx_and_the_server_keeps_serving(tmp_path: Path) -> None:
    run, base = affine_run(tmp_path)
    good = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, *INPUT_SHAPE], "data": [0.5] * 16}]}
    bad = {
        "wrong shape": {"inputs": [{**good["inputs"][0], "shape": [1, 4, 4], "data": [0.5] * 16}]},
        "wrong datatype": {"inputs": [{**good["inputs"][0], "datatype": "INT32", "data": [1] * 16}]},
    }
    with serving(run, ServeOptions(instances=2), max_body_bytes=4096) as (address, _, _):
        for case, body in bad.items():
            status, payload = post(address, json.dumps(body).encode())
            assert status == 400 and payload["error"], case
        status, payload = post(address, b"{not json")
        assert status == 400 and "JSON" in payload["error"]
        status, payload = post(address, b"x" * 5000)
        assert status == 413 and "4096" in payload["error"]
        status, payload = post(address, json.dumps(good).encode())
        assert status == 200, payload
        x = np.full((1, *INPUT_SHAPE), 0.5, np.float32)
        np.testing.assert_allclose(payload["outputs"][0]["data"], expected(base, x).ravel(), rtol=1e-4, atol=1e-5)


def crash(backend: LocalBackend, frontend: Frontend, how: str) -> None:
    """SIGKILL instance 0's process, or (``how="emulated"``) crash instance 0 alone inside its shared process."""
    if how == "sigkill":
        os.kill(backend.pid(0), signal.SIGKILL)
    else:
        frontend.loop.call_soon_threadsafe(backend.kill, 0)


@pytest.mark.parametrize(("mode", "processes", "how"), [("parm", None, "sigkill"), ("none", None, "sigkill"),
                                                        ("parm", 1, "sigkill"), ("parm", 1, "emulated")])
def test_killing_an_instance_mid_load_loses_no_query(tmp_path: Path, mode: str, processes: int | None, how: str) -> None:
    run, base = affine_run(tmp_path)
    options = ServeOptions(mode=mode, instances=2, coding=CoordinatorConfig(group_wait=0.002), delays={0: 0.02})
    queries = np.random.default_rng(1).random(size=(200, 1, *INPUT_SHAPE)).astype(np.float32)
    with serving(run, options, processes) as (address, backend, frontend):
        results = load_with_crash(address, queries, infer, lambda: crash(backend, frontend, how), after=50)
        failures = sum(frontend.registry.get_sample_value("parm_instance_failures_total", {"pool": pool}) or 0
                       for pool in ("base", "parity-0"))
    assert failures == (3 if (processes, how) == (1, "sigkill") else 1)  # a shared process takes all 3 instances down
    for x, (output, kind) in zip(queries, results, strict=True):
        assert kind in (ORIGINAL, RECONSTRUCTED)
        np.testing.assert_allclose(output, expected(base, x), rtol=1e-4, atol=1e-5)

EXTREMES = (np.nan, np.inf, -np.inf, 3e38, -3e38, 1e10, -5.0, 1.5)


@pytest.mark.parametrize("policy", ["refuse", "clip"])
@pytest.mark.parametrize("mode", MODES)
def test_no_input_from_one_client_changes_another_clients_answer(tmp_path: Path, mode: str, policy: str) -> None:
    """Non-finite, out-of-range and extreme queries sent among valid ones, into the same coding groups: every valid
    query is answered with F's own output (originals and reconstructions alike); non-finite queries get a 400, and
    out-of-range ones a 400 (refuse) or F's output on the clipped input (clip)."""
    run, base = affine_run(tmp_path)
    options = ServeOptions(mode=mode, instances=2, coding=CoordinatorConfig(group_wait=0.05), delays={0: 0.2},
                           out_of_range=policy)
    rng = np.random.default_rng(7)
    valid = rng.random(size=(16, 1, *INPUT_SHAPE)).astype(np.float32)
    odd = np.repeat(rng.random(size=(1, 1, *INPUT_SHAPE)).astype(np.float32), len(EXTREMES), axis=0)
    odd[np.arange(len(EXTREMES)), 0, 0, 1, 2] = EXTREMES
    queries = [q for pair in zip(valid, np.resize(odd, valid.shape), strict=True) for q in pair]  # valid, odd, ...
    with serving(run, options, processes=1) as (address, _, _), ThreadPoolExecutor(4) as pool:
        def ask(x: np.ndarray) -> tuple[int, np.ndarray | None]:
            try:
                return 200, infer(triton.InferenceServerClient(address), x)[0]
            except triton.InferenceServerException as error:
                return int(error.status()), None

        answers = list(pool.map(ask, queries))
    for x, (status, output) in zip(queries, answers, strict=True):
        finite, inside = np.isfinite(x).all(), ((x >= 0) & (x <= 1)).all()
        if finite and (inside or policy == "clip"):
            assert status == 200
            np.testing.assert_allclose(output, expected(base, np.clip(x, 0, 1)), rtol=1e-4, atol=1e-5)
        else:
            assert status == 400 and output is None
    assert sum(status == 200 for status, _ in answers) >= len(valid)


@pytest.mark.parametrize("kind", ["noise", "stale"])
def test_a_byzantine_instance_is_found_by_verify_and_every_answer_is_right(tmp_path: Path, kind: str) -> None:
    """r = 2 and exact parity models: base instance 0 answers wrong (noise, or its previous query's output); with
    --verify every answer still equals F(x), those of instance 0 rebuilt, and /metrics counts the wrong outputs."""
    run, base = affine_run(tmp_path, k=2, r=2)
    options = ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.001, verify=1e-3, verify_wait=10.0),
                           wrong={0: kind})
    rng = np.random.default_rng(1)
    with serving(run, options, processes=1) as (address, _, frontend):
        client = triton.InferenceServerClient(address)
        kinds = []
        for _ in range(12):
            x = rng.random(size=(2, *INPUT_SHAPE)).astype(np.float32)  # one request, one coding group
            output, answer = infer(client, x)
            np.testing.assert_allclose(output, expected(base, x), rtol=1e-4, atol=1e-4)
            kinds += answer.split(",")  # one kind per query of the request
        located = frontend.coordinator.wrong_outputs["located"]
        assert located == 12 and kinds.count(RECONSTRUCTED) == 12  # every group had instance 0's wrong output
        metrics = http.client.HTTPConnection(address)
        metrics.request("GET", "/metrics")
        text = metrics.getresponse().read().decode()
        assert f'parm_wrong_outputs_total{{found="located"}} {float(located)}' in text
