"""CIFAR-style VGG-11 with BatchNorm, a convolutional base model of the paper."""

from __future__ import annotations

from torch import nn

from .registry import InputShape, register_model

_POOL = "M"
_VGG11: tuple[int | str, ...] = (
    64, _POOL, 128, _POOL, 256, 256, _POOL, 512, 512, _POOL, 512, 512, _POOL
)


def vgg_features(
    in_channels: int, spatial: tuple[int, int], config: tuple[int | str, ...]
) -> nn.Sequential:
    """3x3 conv + BatchNorm + ReLU per width in ``config``; 2x2 max-pool per ``"M"``.

    A pool is dropped when either side of the map it would act on is below 2, so small inputs
    (28x28, 8x8) keep a non-empty map; 32x32 input gets all five pools, as in the original.
    """
    layers: list[nn.Module] = []
    height, width = spatial
    for item in config:
        if item == _POOL:
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
        else:
            layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
            in_channels = item
    return nn.Sequential(*layers)


@register_model("vgg11", description="CIFAR-style VGG-11 with BatchNorm and global average pooling")
def vgg11(input_shape: InputShape, num_classes: int) -> nn.Module:
    channels, height, width = input_shape
    return nn.Sequential(
        vgg_features(channels, (height, width), _VGG11),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )
