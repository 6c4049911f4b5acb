"""CIFAR-style ResNets (3x3 stride-1 stem, no max-pool), as in Kuang Liu's pytorch-cifar.

Attribute names follow pytorch-cifar (``conv1``, ``bn1``, ``layer1``..``layer4``, ``linear``,
``shortcut``), so its state-dict keys match ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import InputShape, register_model


class _ResidualBlock(nn.Module):
    """``relu(residual(x) + shortcut(x))``; the shortcut is a 1x1 conv + BN projection when the
    block changes the shape (stride or width), the identity otherwise."""

    expansion: int

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        projects = stride != 1 or in_planes != out_planes
        self.shortcut = (
            nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
            if projects
            else nn.Sequential()
        )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual(x) + self.shortcut(x))


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs; the first carries the stride."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand to ``4 * planes``."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__(in_planes, planes, stride)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class ResNet(nn.Module):
    """Stem, four stages of 64/128/256/512 planes (strides 1, 2, 2, 2), global average pool, Linear.

    Global average pooling (rather than pytorch-cifar's fixed 4x4 pool) makes any input size work:
    a stride-2 3x3 conv with padding 1 maps a 1x1 map to 1x1.
    """

    def __init__(
        self, block: type[_ResidualBlock], num_blocks: Sequence[int], in_channels: int, num_classes: int
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2))
        for index, (planes, blocks, stride) in enumerate(stages, 1):
            stage = []
            for block_stride in [stride] + [1] * (blocks - 1):
                stage.append(block(in_planes, planes, block_stride))
                in_planes = planes * block.expansion
            self.add_module(f"layer{index}", nn.Sequential(*stage))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(self.pool(out), 1))


@register_model("resnet18", description="CIFAR-style ResNet-18: BasicBlock stages [2, 2, 2, 2]")
def resnet18(input_shape: InputShape, num_classes: int) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), input_shape[0], num_classes)


@register_model("resnet152", description="CIFAR-style ResNet-152: Bottleneck stages [3, 8, 36, 3]")
def resnet152(input_shape: InputShape, num_classes: int) -> nn.Module:
    return ResNet(Bottleneck, (3, 8, 36, 3), input_shape[0], num_classes)
