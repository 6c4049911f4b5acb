"""`parm instance`'s service: one model of a run, named as exports name it, exact outputs, one batch at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from parm.cli import main
from parm.models import load_checkpoint
from parm.runs import open_run
from parm.serving.core.pools import BASE_POOL, parity_pool
from parm.serving.instance_service import build_model_service

from .exact_runs import INPUT_SHAPE, affine_run


def served(service, batch: np.ndarray):
    async def run():
        await service.start()
        try:
            return await service.infer(batch)
        finally:
            await service.stop()
    return asyncio.run(run())


def test_each_pool_serves_its_own_model_under_its_export_name(tmp_path: Path) -> None:
    run, base = affine_run(tmp_path, k=2, r=2)
    batch = np.random.default_rng(0).normal(scale=5.0, size=(3, *INPUT_SHAPE)).astype(np.float32)  # a parity's range
    for pool, name in ((BASE_POOL, "toy-logistic-regression"), (parity_pool(1), "toy-logistic-regression-parity-1")):
        service = build_model_service(run, pool)
        assert service.model.name == name and service.model.inputs[0].bounds is None
        prediction = served(service, batch)
        model = base if pool == BASE_POOL else load_checkpoint(open_run(run).parity_checkpoint(1))[0]
        with torch.no_grad():
            np.testing.assert_allclose(prediction.outputs, model(torch.from_numpy(batch)).numpy(), rtol=1e-6)
        assert prediction.answers == ("original",) * 3
        assert service.registry.get_sample_value("parm_instance_queries_total") == 3


def test_the_onnx_engine_serves_the_pools_model_within_the_export_tolerance(tmp_path: Path) -> None:
    run, _ = affine_run(tmp_path, k=2, r=1)
    batch = np.random.default_rng(1).normal(scale=5.0, size=(4, *INPUT_SHAPE)).astype(np.float32)
    model = load_checkpoint(open_run(run).parity_checkpoint(0))[0]
    prediction = served(build_model_service(run, parity_pool(0), engine="onnx"), batch)
    with torch.no_grad():
        np.testing.assert_allclose(prediction.outputs, model(torch.from_numpy(batch)).numpy(), atol=1e-5, rtol=0)


def test_a_pool_the_run_does_not_have_is_refused(tmp_path: Path) -> None:
    run, _ = affine_run(tmp_path, k=2, r=1)
    with pytest.raises(ValueError, match="has no pool parity-1: it has parity pools parity-0..parity-0"):
        build_model_service(run, parity_pool(1))
    with pytest.raises(ValueError, match="has no pool parity-0: it has only the base pool"):
        build_model_service(tmp_path / "base", parity_pool(0))


def test_not_started_means_unavailable(tmp_path: Path) -> None:
    from parm.serving.http.model import Unavailable

    service = build_model_service(affine_run(tmp_path)[0], BASE_POOL)
    assert not service.is_ready()
    with pytest.raises(Unavailable):
        asyncio.run(service.infer(np.zeros((1, *INPUT_SHAPE), np.float32)))


@pytest.mark.parametrize(("argv", "message"), [
    (["--pool", "parity"], "'base' or 'parity-J'"),
    (["--port", "0"], "--port must be in 1..65535"),
    (["--slow-ms", "-1"], "--slow-ms must be 0 or more"),
])
def test_the_command_refuses_wrong_options_in_one_line(tmp_path: Path, capsys, argv, message) -> None:
    run, _ = affine_run(tmp_path)
    assert main(["instance", str(run), *argv]) == 2
    assert message in capsys.readouterr().err
