"""The engines that compute an instance's model: ONNX Runtime agrees with PyTorch, and a bad engine is refused early."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from parm.models import ModelCard, build_model, save_checkpoint
from parm.serving.backends.local.worker import Host
from parm.serving.core.pools import BASE_POOL
from parm.serving.engines import check_engine, load_engine
from parm.serving.instance import InstanceSpec, ModelInstance

SHAPE = (1, 6, 6)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("base-mlp", SHAPE, 3)
    card = ModelCard("base-mlp", SHAPE, ("a", "b", "c"), "tiny", 0, {})
    return save_checkpoint(model, card, tmp_path / "base"), model.eval()


@pytest.mark.parametrize("batch", [1, 4, 9])
def test_onnx_runtime_computes_what_pytorch_does(checkpoint, batch: int) -> None:
    path, model = checkpoint
    x = np.random.default_rng(batch).random((batch, *SHAPE), dtype=np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(load_engine(path, "torch")(x), want)
    got = load_engine(path, "onnx")(x)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_instances_of_one_process_share_one_loaded_engine(checkpoint) -> None:
    path, _ = checkpoint
    specs = [InstanceSpec(id=i, pool=BASE_POOL, checkpoint=str(path), engine="onnx") for i in range(2)]
    host = Host(specs, io.BytesIO())
    assert host.instances[0].model is host.instances[1].model
    outputs, _ = host.instances[1].compute(np.zeros((2, *SHAPE), dtype=np.float32))
    assert outputs.shape == (2, 3)


def test_an_unknown_engine_is_refused_naming_the_known_ones(checkpoint) -> None:
    with pytest.raises(ValueError, match="torch, onnx"):
        check_engine("tensorrt")
    with pytest.raises(ValueError, match="engine is one of torch, onnx"):
        InstanceSpec(id=0, pool=BASE_POOL, engine="tensorrt")
    spec = InstanceSpec(id=3, pool=BASE_POOL, checkpoint=str(checkpoint[0]), engine="onnx")
    assert InstanceSpec.from_dict(spec.to_dict()) == spec  # the engine crosses to worker processes


def test_the_onnx_engine_without_onnxruntime_names_the_install(monkeypatch) -> None:
    import parm.export.formats as formats

    real = formats.importlib.util.find_spec
    monkeypatch.setattr(formats.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    with pytest.raises(ValueError, match=r"pip install 'parm-serving\[export\]'"):
        check_engine("onnx")
    check_engine("torch")  # PyTorch needs nothing more


def test_a_model_instance_loads_its_own_engine(checkpoint) -> None:
    path, model = checkpoint
    instance = ModelInstance(InstanceSpec(id=0, pool=BASE_POOL, checkpoint=str(path), engine="onnx"))
    x = np.ones((3, *SHAPE), dtype=np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(instance.compute(x)[0], model(torch.from_numpy(x)).numpy(), atol=1e-5, rtol=0)
