"""Fully connected base models: the paper's Base-MLP and its degenerate case, logistic regression."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from .registry import InputShape, register_model


def mlp(input_shape: InputShape, hidden: Sequence[int], num_classes: int) -> nn.Sequential:
    """Flatten, then Linear+ReLU per hidden width, then a Linear to the logits (no ReLU)."""
    widths = [math.prod(input_shape), *hidden]
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*layers)


@register_model("logistic-regression", description="Flatten + one Linear layer: the simplest base model")
def logistic_regression(input_shape: InputShape, num_classes: int) -> nn.Module:
    return mlp(input_shape, (), num_classes)


@register_model("base-mlp", description="Paper's Base-MLP: hidden Linear+ReLU layers of 200 and 100")
def base_mlp(input_shape: InputShape, num_classes: int) -> nn.Module:
    """784-200-100-10 on MNIST-shaped input, as in the paper."""
    return mlp(input_shape, (200, 100), num_classes)
