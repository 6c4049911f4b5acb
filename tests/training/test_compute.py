"""The CUDA fast path's switches, exercised on the CPU: bf16 autocast, channels-last convolutions, the time box."""

import pytest
import torch
from conftest import fit_affine_base

from parm.codes import SumCode
from parm.models import build_model
from parm.runtime import Compute, resolve_compute
from parm.training import BaseTrainConfig, train_base
from parm.training.parity import ParityTrainConfig, train_parity


def test_auto_keeps_the_cpu_path_plain_and_names_bad_precisions():
    assert resolve_compute("cpu") == Compute(torch.device("cpu"), bf16=False, channels_last=False)
    assert resolve_compute("cpu", "bf16", True) == Compute(torch.device("cpu"), bf16=True, channels_last=True)
    with pytest.raises(ValueError, match="fp32"):
        resolve_compute("cpu", "fp8")
    with pytest.raises(ValueError, match="precision"):
        train_base(build_model("lenet5", (1, 8, 8), 3), None, "unused", model_name="lenet5",
                   config=BaseTrainConfig(precision="half"))


def test_channels_last_places_convolution_weights_and_keeps_the_outputs():
    torch.manual_seed(0)
    model = build_model("lenet5", (1, 28, 28), 10).eval()
    x = torch.rand(4, 1, 28, 28)
    expected = model(x)
    Compute(torch.device("cpu"), channels_last=True).place(model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def _base(dataset, path, **config):
    torch.manual_seed(0)
    model = build_model("lenet5", dataset.input_shape, dataset.num_classes)
    return train_base(model, dataset, path, model_name="lenet5",
                      config=BaseTrainConfig(epochs=4, lr=1e-2, batch_size=16, progress=False, device="cpu", **config))


def test_bf16_autocast_and_channels_last_train_as_well_as_fp32_on_the_cpu(small_dataset, tmp_path):
    plain = _base(small_dataset, tmp_path / "fp32")
    fast = _base(small_dataset, tmp_path / "bf16", precision="bf16", channels_last=True)
    assert plain.test["accuracy"] > 0.9  # the brightness classes are easy: both must learn them
    assert abs(fast.test["accuracy"] - plain.test["accuracy"]) <= 0.05
    assert [row["train_loss"] for row in fast.history] != [row["train_loss"] for row in plain.history]  # really bf16


def test_bf16_parity_training_rebuilds_as_well_as_fp32(small_dataset, tmp_path):
    base = fit_affine_base(small_dataset, tmp_path / "base")
    runs = {precision: train_parity(base, small_dataset, SumCode(2), tmp_path / precision,
                                    config=ParityTrainConfig(epochs=5, batch_size=16, progress=False, device="cpu",
                                                             precision=precision))
            for precision in ("fp32", "bf16")}
    assert abs(runs["bf16"].test["degraded_accuracy"] - runs["fp32"].test["degraded_accuracy"]) <= 0.05


def test_the_time_box_runs_at_least_one_epoch_and_keeps_the_best(small_dataset, tmp_path):
    result = _base(small_dataset, tmp_path / "boxed", max_seconds=0.0)
    assert len(result.history) == 1 and result.best_epoch == 1
