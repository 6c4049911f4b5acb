"""The base-model zoo: shapes, the paper's exact architectures, and the registry's errors."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch
from torch import nn

from parm.models import UnknownModelError, build_model, describe_models, model_names, register_model, registry

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 20, 24)]
CLASSES = [1, 10, 100]
# ResNet-152 takes about a second to build, so it gets two small shapes only.
RESNET152_CASES = [((1, 8, 8), 100), ((3, 12, 10), 1)]


def _cases() -> list:
    small = [name for name in model_names() if name != "resnet152"]
    cases = [(name, shape, k) for name in small for shape in SHAPES for k in CLASSES]
    cases += [("resnet152", shape, k) for shape, k in RESNET152_CASES]
    return [pytest.param(*case, id=f"{case[0]}-{'x'.join(map(str, case[1]))}-{case[2]}") for case in cases]


def _logits(model: nn.Module, shape: tuple[int, int, int], batch: int = 2) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.randn(batch, *shape))


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "shape", "num_classes"), _cases())
def test_every_model_returns_logits_of_shape_batch_by_classes(name, shape, num_classes):
    torch.manual_seed(0)
    logits = _logits(build_model(name, shape, num_classes), shape)
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()


def test_zoo_holds_the_paper_models_with_descriptions():
    names = {"logistic-regression", "base-mlp", "lenet5", "vgg11", "resnet18", "resnet152"}
    assert names <= set(model_names())
    descriptions = describe_models()
    assert list(descriptions) == model_names()
    assert all(descriptions.values())


def test_base_mlp_is_784_200_100_10_on_mnist():
    model = build_model("base-mlp", (1, 28, 28), 10)
    sizes = [(m.in_features, m.out_features) for m in _linears(model)]
    assert sizes == [(784, 200), (200, 100), (100, 10)]
    assert _num_params(model) == 784 * 200 + 200 + 200 * 100 + 100 + 100 * 10 + 10


def test_logistic_regression_is_one_linear_layer():
    model = build_model("logistic-regression", (3, 8, 8), 5)
    assert [(m.in_features, m.out_features) for m in _linears(model)] == [(192, 5)]


def test_lenet5_is_classic_on_mnist_and_pads_small_inputs():
    classic = build_model("lenet5", (1, 28, 28), 10)
    assert [(m.in_features, m.out_features) for m in _linears(classic)] == [(400, 120), (120, 84), (84, 10)]
    assert [m.padding for m in classic.modules() if isinstance(m, nn.Conv2d)] == [(2, 2), (0, 0)]
    small = build_model("lenet5", (1, 8, 8), 10)
    assert _linears(small)[0].in_features == 16 * 2 * 2
    with pytest.raises(ValueError, match="at least 4x4"):
        build_model("lenet5", (1, 3, 8), 10)


@pytest.mark.parametrize(("side", "pools"), [(32, 5), (28, 4), (8, 3)])
def test_vgg11_pools_only_while_the_map_is_at_least_2_wide(side, pools):
    model = build_model("vgg11", (3, side, side), 10)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == pools
    assert _linears(model)[0].in_features == 512


def test_resnet18_matches_pytorch_cifar_parameter_count():
    assert _num_params(build_model("resnet18", (3, 32, 32), 10)) == 11_173_962


def test_backward_gives_finite_gradients_for_every_parameter():
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 8, 8), 10).train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unknown_name_lists_the_known_models():
    with pytest.raises(UnknownModelError) as info:
        build_model("resnet19", (3, 32, 32), 10)
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "resnet19" in message
    assert all(name in message for name in model_names())


@pytest.mark.parametrize(
    "shape", [(1, 28), (1, 28, 28, 1), (0, 28, 28), (1, -8, 8), (1, 8.0, 8), (True, 8, 8), 28, "abc"]
)
def test_bad_input_shape_is_a_value_error(shape):
    with pytest.raises(ValueError, match="input_shape must be 3 positive integers"):
        build_model("base-mlp", shape, 10)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, True])
def test_bad_num_classes_is_a_value_error(num_classes):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        build_model("base-mlp", (1, 8, 8), num_classes)


def test_register_model_adds_a_described_builder(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model("tiny", description="one linear layer")
    def tiny(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

    assert "tiny" in model_names()
    assert describe_models()["tiny"] == "one linear layer"
    assert _logits(build_model("tiny", (1, 8, 8), 3), (1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny", description="again")
    with pytest.raises(ValueError, match="may not contain ':'"):
        register_model("a:b", description="colon")


USER_MODULE = "parm_test_user_models"


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user module on sys.path holding model factories, removed from sys.modules afterwards."""
    (tmp_path / f"{USER_MODULE}.py").write_text(
        textwrap.dedent(
            """
            import math
            from torch import nn

            def linear(input_shape, num_classes):
                return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))

            def not_a_module(input_shape, num_classes):
                return "linear"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield USER_MODULE
    sys.modules.pop(USER_MODULE, None)


def test_module_function_name_builds_a_user_factory(user_module):
    model = build_model(f"{user_module}:linear", (3, 8, 12), 7)
    assert _logits(model, (3, 8, 12)).shape == (2, 7)


def test_module_function_errors_name_the_fix(user_module):
    with pytest.raises(UnknownModelError, match="PYTHONPATH"):
        build_model("parm_no_such_module:linear", (1, 8, 8), 10)
    with pytest.raises(UnknownModelError, match="has no callable 'missing'"):
        build_model(f"{user_module}:missing", (1, 8, 8), 10)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        build_model(f"{user_module}:not_a_module", (1, 8, 8), 10)
