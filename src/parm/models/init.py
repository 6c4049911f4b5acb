"""Weight initialisations for the networks parm trains on top of a base model."""

from __future__ import annotations

from torch import nn


def paper_init(module: nn.Module) -> nn.Module:
    """The paper's scheme: Xavier-uniform convolutions, N(0, 0.01) fully-connected weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            if isinstance(layer, nn.Conv2d):
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.normal_(layer.weight, mean=0.0, std=0.01)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
