"""The Berrut code: coded computation without training, by rational interpolation (ApproxIFER).

Soleymani, Mahdavifar, Avestimehr, *ApproxIFER: A Model-Agnostic Approach to Resilient and Robust
Prediction Serving Systems*, AAAI 2022. Written here from the mathematics:

Berrut's rational interpolant through (z_0, y_0), ..., (z_{n-1}, y_{n-1}), the z_j distinct and numbered
in ascending order, is

    r(z) = sum_j w_j y_j / (z - z_j)  /  sum_j w_j / (z - z_j),      w_j = (-1)^j.

It passes through every node (r(z_j) = y_j), has no pole on the real line whatever the nodes, and its
weights sum to one, so it reproduces constants exactly. It is linear in the y_j: evaluating it at a
point is a fixed row of weights (`berrut_matrix`), so the code is a `MatrixCode`.

- **Encoding** (systematic): the k queries X_j sit at points alpha_j and u(z) is Berrut's interpolant
  through (alpha_j, X_j); the originals go out as they are (u(alpha_j) = X_j) and the r extra queries
  are u(beta_i) at r further points. F itself runs on them: no parity model, nothing to train.
- **Decoding**: from any k or more of the n = k + r outputs (originals' at their alpha, extras' at their
  beta), Berrut's interpolant of F's outputs through the available points, evaluated at each lost
  alpha_j. Available originals pass through exactly. It is exact when F(u(z)) is constant in z (all
  outputs equal) and approximate otherwise: how good it is, is measured (`parm evaluate`).

Points (`systematic_points`), on [-1, 1] and written as angles (z = -cos theta):

- the alphas are ApproxIFER's: the k Chebyshev points of the first kind, theta_j = (2j + 1) pi / 2k;
- the betas are Chebyshev points of the second kind (extrema), theta = j pi / k: their k - 1 interior
  ones interleave the alphas, each at the angular midpoint of two neighbouring alphas. r <= k - 1
  betas take r of those gaps, spread evenly (gap floor((2i + 1)(k - 1) / 2r)); more share the k - 1
  gaps as evenly as possible, equally spaced in angle inside a gap. (k = 1 has no gap: its betas sit
  between -1 and the one alpha, and every extra query is a copy of X_1.)

Why: a beta between two neighbouring alphas makes u(beta) mostly their blend (k = 2, r = 1: exactly
the average (X_1 + X_2) / 2, and decoding the line through it), with small alternating-sign shares
of the others, so F sees queries near its training data; spread evenly, every lost original has an
extra query near it; and the arrangement is mirror-symmetric whenever the spread allows it (k = 4:
r = 1 puts the beta at 0, r = 2 at -0.707 and 0.707). Berrut's interpolant has no real poles for any
nodes, so every pattern decodes. A design check on Fashion-MNIST's validation split (Base-MLP, r = 1
at k = 3, 4, 8 and r = 2 at k = 4) put these points 1.4 to 8 points of A_d above the alternatives
tried: the k + r Chebyshev points of the first kind shared out between alphas and betas in the same
pattern, and the same with equispaced points (at k = 3, r = 2 the first-kind grid was 1.5 points
higher; at k = 2, r = 1 all three coincide).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from parm.codes.linear import MatrixCode


def chebyshev_points(n: int) -> torch.Tensor:
    """The n Chebyshev points of the first kind on [-1, 1], ascending (float64)."""
    m = torch.arange(n, dtype=torch.float64)
    return -torch.cos((2 * m + 1) * math.pi / (2 * n))


def systematic_points(k: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas (k,), betas (r,)), ascending: first-kind Chebyshev points, and betas in the gaps between them."""
    alphas = chebyshev_points(k)
    step = math.pi / k  # the angular width of a gap between neighbouring alphas
    gaps = max(k - 1, 1)
    counts = [r // gaps] * gaps
    for i in range(r % gaps):
        counts[(2 * i + 1) * gaps // (2 * (r % gaps))] += 1  # the remainder spread evenly over the gaps
    start = [(g + 0.5) * step for g in range(gaps)] if k > 1 else [0.0]  # each gap's lower edge, as an angle
    width = step if k > 1 else step / 2  # k = 1: the one gap runs from -1 (angle 0) to the alpha (pi / 2)
    angles = [start[g] + width * t / (counts[g] + 1) for g in range(gaps) for t in range(1, counts[g] + 1)]
    return alphas, -torch.cos(torch.tensor(angles, dtype=torch.float64))


def berrut_matrix(nodes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The (p, n) float64 matrix L with r(points) = L @ y, r Berrut's interpolant through (nodes, y).

    ``nodes`` (n,) are distinct, in any order: the weights alternate in sign in their ascending order. A
    point that is a node gets that node's unit row (the interpolant passes through its nodes).
    """
    nodes, points = (torch.as_tensor(v, dtype=torch.float64).flatten() for v in (nodes, points))
    signs = torch.empty_like(nodes)
    signs[torch.argsort(nodes)] = 1.0 - 2.0 * (torch.arange(len(nodes)) % 2).to(torch.float64)  # (-1)^rank
    difference = points.unsqueeze(1) - nodes.unsqueeze(0)
    on_node = difference == 0
    terms = signs / torch.where(on_node, torch.ones_like(difference), difference)
    weights = terms / terms.sum(dim=1, keepdim=True)
    hits = on_node.any(dim=1)
    return torch.where(hits.unsqueeze(1), on_node.to(torch.float64), weights)


def berrut_interpolate(nodes: torch.Tensor, values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Berrut's interpolant through (nodes, values (n, ...)), evaluated at ``points``: (p, ...)."""
    matrix = berrut_matrix(nodes, points).to(values.dtype)
    return (matrix @ values.flatten(1)).view(len(matrix), *values.shape[1:])


class BerrutCode(MatrixCode):
    """ApproxIFER's Berrut code, systematic: k originals as they are, r Berrut-coded extra queries for F itself.

    ``alphas`` and ``betas`` replace `systematic_points` (any k + r distinct finite reals); the spec stores
    the points, so a run decodes with the points it was made with.
    """

    name = "berrut"

    def __init__(self, k: int, r: int = 1, alphas: Sequence[float] | None = None,
                 betas: Sequence[float] | None = None) -> None:
        super().__init__(k, r)
        default_alphas, default_betas = systematic_points(k, r)
        self.alphas = default_alphas if alphas is None else _points(alphas, k, "alphas")
        self.betas = default_betas if betas is None else _points(betas, r, "betas")
        self.nodes = torch.cat([self.alphas, self.betas])  # the point of each of a group's k + r outputs
        if len(torch.unique(self.nodes)) != self.n:
            raise ValueError(f"the k + r = {self.n} points of a Berrut code must be distinct, got {self.nodes.tolist()}")
        self.coefficients = berrut_matrix(self.alphas, self.betas)  # extra query i = u(beta_i), linear in the X_j

    def _build_decoding_matrix(self, pattern: torch.Tensor) -> torch.Tensor:
        """Rows of available originals pick them; a lost original's row is Berrut's interpolant through the
        available outputs' points, evaluated at its alpha."""
        available = torch.nonzero(pattern).flatten()
        lost = torch.nonzero(~pattern[: self.k]).flatten()
        kept = torch.nonzero(pattern[: self.k]).flatten()
        matrix = torch.zeros(self.k, self.n, dtype=torch.float64)
        matrix[kept, kept] = 1.0
        matrix[lost.unsqueeze(1), available] = berrut_matrix(self.nodes[available], self.alphas[lost])
        return matrix

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k, "r": self.r, "alphas": self.alphas.tolist(), "betas": self.betas.tolist()}


def _points(values: Sequence[float], count: int, what: str) -> torch.Tensor:
    points = torch.as_tensor(values, dtype=torch.float64).flatten()
    if len(points) != count or not bool(torch.isfinite(points).all()):
        raise ValueError(f"a Berrut code needs {count} finite {what}, got {list(values)}")
    return points
