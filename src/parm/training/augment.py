"""Batch-wise data augmentation: random shifts (zero padded), and the CIFAR recipe of a shift and a flip."""

from __future__ import annotations

import torch


def random_shift(x: torch.Tensor, generator: torch.Generator, padding: int) -> torch.Tensor:
    """Shift each image of ``x`` (N, C, H, W) by up to ``padding`` pixels each way, filling with zeros.

    A random crop of the zero-padded batch, as two gathers: no per-image Python work.
    """
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * padding)
    cropped = padded.gather(2, rows)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return cropped.gather(3, cols)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Shift each image of ``x`` (N, C, H, W) by up to ``padding`` pixels and flip half of them."""
    shifted = random_shift(x, generator, padding)
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(-1, 1, 1, 1), shifted.flip(3), shifted)
