"""Batch-wise data augmentation (the CIFAR recipe): random crop after zero padding, and flips."""

from __future__ import annotations

import torch


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Shift each image of ``x`` (N, C, H, W) by up to ``padding`` pixels and flip half of them.

    One gather for the whole batch: no per-image Python work.
    """
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * padding)
    cropped = padded.gather(2, rows)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    cropped = cropped.gather(3, cols)
    return torch.where(flip.view(n, 1, 1, 1), cropped.flip(3), cropped)
