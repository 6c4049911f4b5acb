"""LeNet-5, the paper's convolutional base model for MNIST-sized images."""

from __future__ import annotations

from torch import nn

from .registry import InputShape, register_model

_MIN_POOLED_SIDE = 6
"""Smallest side entering the unpadded second 5x5 conv that still leaves a 2-wide map to pool."""


def _second_conv_padding(side: int) -> int:
    return 0 if side >= _MIN_POOLED_SIDE else 2


@register_model("lenet5", description="LeNet-5: two 5x5 conv + max-pool stages, then Linear 120, 84")
def lenet5(input_shape: InputShape, num_classes: int) -> nn.Module:
    """Classic LeNet-5 (400 features into the first Linear on 28x28 input).

    The second 5x5 conv is unpadded as in the original whenever the map it sees is at least 6
    wide (inputs >= 12 pixels); along a side narrower than that it gets padding 2, like the first
    conv, so the network still works on inputs down to 4x4 (8x8 gives 16 x 2 x 2 features)
    instead of failing on an empty feature map.
    """
    channels, height, width = input_shape
    if min(height, width) < 4:
        raise ValueError(f"lenet5 needs inputs of at least 4x4 pixels, got {height}x{width}")
    pooled = (height // 2, width // 2)
    padding = tuple(_second_conv_padding(side) for side in pooled)
    h, w = ((side + 2 * pad - 4) // 2 for side, pad in zip(pooled, padding))
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * h * w, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
