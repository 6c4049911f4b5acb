"""A small convolutional network for tasks where CPUs cannot afford ResNet-18 (localization on 2 cores).

ResNet-18 on a 64x64 canvas costs about 2.2 GFLOPs per image forward; this network about 0.008, so that a base
model and its parity models train in minutes on 2 CPU cores. Its 4x4 adaptive pool keeps where things are,
which a box regressor needs and a global average pool would throw away.
"""

from __future__ import annotations

from torch import nn

from .registry import InputShape, register_model

WIDTHS = (8, 16, 32, 64)
POOLED_SIDE = 4
HIDDEN = 128


@register_model("small-cnn", description="a stride-2 stem, three conv-BatchNorm-pool stages, a 4x4 pool, Linear 128")
def small_cnn(input_shape: InputShape, num_classes: int) -> nn.Module:
    channels = input_shape[0]
    layers: list[nn.Module] = [nn.Conv2d(channels, WIDTHS[0], 3, stride=2, padding=1), nn.BatchNorm2d(WIDTHS[0]), nn.ReLU()]
    for before, after in zip(WIDTHS, WIDTHS[1:]):
        layers += [nn.Conv2d(before, after, 3, padding=1), nn.BatchNorm2d(after), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(POOLED_SIDE),
        nn.Flatten(),
        nn.Linear(WIDTHS[-1] * POOLED_SIDE**2, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, num_classes),
    )
