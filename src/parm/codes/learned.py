"""Learned codes (paper section IV): a neural encoder and decoder trained through the frozen F.

The r parities are computed by an encoder network and sent to ordinary instances of F; a decoder
network rebuilds lost outputs from the k + r outputs, lost ones replaced by a sentinel (zeros by
default) in their own position, so that the decoder knows which are missing.

With ``residual`` the encoder learns a correction to a linear code's parities (weighted means of the k inputs,
`parm.codes.linear`), its last layer starting at zero: training starts from parities that carry every input,
where a randomly started encoder can settle on carrying only some of them (MNIST, docs/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from parm.codes.base import Code
from parm.codes.linear import vandermonde_coefficients
from parm.models.init import paper_init

CONV_DILATIONS = (1, 1, 2, 4, 8, 1)
CONV_WIDTH_PER_INPUT = 20


def _per_channel(x: torch.Tensor) -> torch.Tensor:
    """(B, k, C, H, W) -> (B * C, k, H, W): each colour channel is encoded on its own (section IV-B3)."""
    b, k, c, h, w = x.shape
    return x.transpose(1, 2).reshape(b * c, k, h, w)


def _from_channels(y: torch.Tensor, batch: int) -> torch.Tensor:
    """(B * C, r, H, W) -> (B, r, C, H, W)."""
    bc, r, h, w = y.shape
    return y.reshape(batch, bc // batch, r, h, w).transpose(1, 2)


class MLPEncoder(nn.Module):
    """Table I: k*d -> k*d -> r*d fully connected, ReLU between (d = H * W pixels of one channel)."""

    def __init__(self, k: int, r: int, pixels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(k * pixels, k * pixels), nn.ReLU(), nn.Linear(k * pixels, r * pixels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = _per_channel(x)
        encoded = self.net(channels.flatten(1)).view(len(channels), -1, *channels.shape[2:])
        return _from_channels(encoded, len(x))


class ConvEncoder(nn.Module):
    """Table I: six 3x3 convolutions (dilations 1, 1, 2, 4, 8, 1; 20k channels), then a 1x1 to r channels."""

    def __init__(self, k: int, r: int, dilations: Sequence[int] = CONV_DILATIONS, width: int = CONV_WIDTH_PER_INPUT) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = k
        for dilation in dilations:
            layers += [nn.Conv2d(channels, width * k, 3, padding=dilation, dilation=dilation), nn.ReLU()]
            channels = width * k
        layers.append(nn.Conv2d(channels, r, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last inputs take the faster convolution kernels on CPUs (about 1.3x here)
        return _from_channels(self.net(_per_channel(x).contiguous(memory_format=torch.channels_last)), len(x))


class MLPDecoder(nn.Module):
    """Table II: (k+r)*m -> k*m -> k*m -> k*m fully connected, ReLU between."""

    def __init__(self, k: int, r: int, outputs: int) -> None:
        super().__init__()
        km = k * outputs
        self.net = nn.Sequential(nn.Linear((k + r) * outputs, km), nn.ReLU(), nn.Linear(km, km), nn.ReLU(), nn.Linear(km, km))

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        """(..., k + r, m) with lost entries already replaced -> (..., k, m)."""
        rebuilt = self.net(outputs.flatten(-2))
        return rebuilt.view(*outputs.shape[:-2], -1, outputs.shape[-1])


ENCODERS = ("mlp", "conv")


class LearnedCode(nn.Module, Code):
    """An encoder and a decoder network behind the common `Code` interface."""

    name = "learned"

    def __init__(
        self,
        k: int,
        r: int = 1,
        *,
        encoder: str = "mlp",
        input_shape: Sequence[int],
        num_outputs: int,
        sentinel: float = 0.0,
        residual: bool = False,
    ) -> None:
        nn.Module.__init__(self)
        Code.__init__(self, k, r)
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}: use one of {', '.join(ENCODERS)}")
        self.encoder_name, self.input_shape = encoder, tuple(int(v) for v in input_shape)
        self.num_outputs, self.sentinel = int(num_outputs), float(sentinel)
        pixels = math.prod(self.input_shape[1:])
        self.encoder = MLPEncoder(k, r, pixels) if encoder == "mlp" else ConvEncoder(k, r)
        self.decoder = MLPDecoder(k, r, self.num_outputs)
        paper_init(self)
        self.residual = bool(residual)
        if self.residual:
            weights = vandermonde_coefficients(k, r)
            self.register_buffer("mixing", (weights / weights.sum(1, keepdim=True)).float())  # (r, k), rows sum to 1
            last = self.encoder.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        parities = self.encoder(x)
        if not self.residual:
            return parities
        return parities + (self.mixing @ x.flatten(2)).view_as(parities)

    def decoder_input(self, outputs: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """Outputs with every lost entry replaced by the sentinel; masks broadcast against (..., k + r)."""
        return torch.where(available.unsqueeze(-1), outputs, torch.full_like(outputs, self.sentinel))

    def decode(self, outputs: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        mask = self.check_available(available, outputs.shape[0]).to(outputs.device)
        rebuilt = self.decoder(self.decoder_input(outputs, mask))
        return torch.where(mask[:, : self.k].unsqueeze(-1), outputs[:, : self.k], rebuilt)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name, "k": self.k, "r": self.r, "encoder": self.encoder_name,
            "input_shape": list(self.input_shape), "num_outputs": self.num_outputs, "sentinel": self.sentinel,
            "residual": self.residual,
        }

    def __repr__(self) -> str:
        return f"LearnedCode(k={self.k}, r={self.r}, encoder={self.encoder_name}{', residual' if self.residual else ''})"
