"""The concatenation code for images (paper Fig. 6): k downsized images tiled into one parity image.

Each image is resized with antialiasing to one cell of a grid that fills the original size
(k = 2: side by side; k = 4: quadrants; any k: ceil(sqrt(k)) columns). The parity model learns to
return the sum of the k base outputs, so decoding is the sum code's subtraction.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

from parm.codes.linear import SumCode


def grid_cells(k: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each of the k cells, row by row."""
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    ys = [round(i * height / rows) for i in range(rows + 1)]
    xs = [round(j * width / cols) for j in range(cols + 1)]
    return [(ys[i // cols], ys[i // cols + 1], xs[i % cols], xs[i % cols + 1]) for i in range(k)]


class ConcatenationCode(SumCode):
    name = "concat"
    encodes_with_matrix = False  # decoded as the sum code, but its parity is a tiling, not a sum

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"the concatenation code encodes images (B, k, C, H, W), got shape {tuple(x.shape)}")
        batch, k, channels, height, width = x.shape
        parity = x.new_zeros(batch, 1, channels, height, width)
        for i, (top, bottom, left, right) in enumerate(grid_cells(k, height, width)):
            if bottom <= top or right <= left:
                raise ValueError(f"images of {height}x{width} are too small to tile {k} of them")
            parity[:, 0, :, top:bottom, left:right] = functional.interpolate(
                x[:, i], size=(bottom - top, right - left), mode="bilinear", antialias=True, align_corners=False
            )
        return parity
