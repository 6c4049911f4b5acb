"""Wrong answers ("Byzantine" outputs), found from a code's redundancy: detect one, locate it, decode without it.

For a code with an encoding matrix A (r, k) (`MatrixCode`: the linear codes, Berrut), a group's syndrome is what
its parity outputs disagree with the originals' by: s = Y_parity - A @ Y_original, (r, m). For an exact linear F
every syndrome is zero; one wrong output adds e (m,) to one slot, and the syndrome becomes -A[:, b] e^T for an
original b, or e_j e^T for parity j: a rank-one matrix along that slot's column of D = [-A, I] (r, k + r). So the
wrong slot is the column the syndrome is closest to being a multiple of, which r >= 2 makes unique when the
columns are pairwise independent (distinct Chebyshev nodes guarantee it for the Vandermonde codes); with r = 1 a
wrong output can be detected but not located. Trained parity models and Berrut interpolation are not exact, so a
syndrome counts as zero below ``tolerance`` times the originals' norm, a tolerance measured on clean outputs.
"""

from __future__ import annotations

import torch

from parm.codes.linear import MatrixCode

CONSISTENT = -1  # `locate_wrong`'s answer for a group whose outputs agree
# How much of a syndrome the blamed slot may leave unexplained. Chosen on Fashion-MNIST's validation split (Base-MLP,
# linear code k = 2, r = 2, tolerance 0.5): 0.1 left 31% of the groups with one wrong output unresolved, 0.5 located
# the wrong slot in 95.8% of them (noise) and 87.3% (another query's output), and looser changed nothing.
FIT = 0.5


def syndromes(code: MatrixCode, outputs: torch.Tensor) -> torch.Tensor:
    """(B, r, m): each group's parity outputs minus the code's combination of its original outputs (B, k + r, m)."""
    originals, parities = outputs[:, : code.k], outputs[:, code.k:]
    return parities - code.coefficients.to(outputs) @ originals


def slot_directions(code: MatrixCode) -> torch.Tensor:
    """(k + r, r) unit vectors: the direction a wrong output in each slot gives the syndrome."""
    directions = torch.cat([-code.coefficients.T, torch.eye(code.r, dtype=code.coefficients.dtype)])
    return directions / directions.norm(dim=1, keepdim=True)


def locate_wrong(code: MatrixCode, outputs: torch.Tensor, *, tolerance: float, fit: float = FIT) -> torch.Tensor:
    """(B,) the slot of each group's one wrong output, or `CONSISTENT`; every slot's output must be in.

    A group is consistent when its syndrome's norm is at most ``tolerance`` times its originals' norm. Otherwise the
    wrong slot is the one whose direction explains the syndrome best, if what it leaves unexplained is at most
    ``fit`` of the syndrome's norm; a syndrome no single slot explains (two wrong outputs, or noise far above the
    tolerance) is reported as slot ``k + r`` ("more than one"), and such a group should not be decoded from.
    """
    if code.r < 2:
        raise ValueError(f"locating a wrong output needs r >= 2 (one parity can only show that something is wrong), "
                         f"got r = {code.r}")
    s = syndromes(code, outputs.to(torch.float64)).flatten(2)  # (B, r, m)
    directions = slot_directions(code)
    along = torch.einsum("nr,brm->bnm", directions, s)  # the syndrome's component along each slot's direction
    total = (s ** 2).sum(dim=(1, 2))
    unexplained = (total[:, None] - (along ** 2).sum(dim=2)).clamp(min=0)  # (B, k + r)
    best, slot = unexplained.min(dim=1)
    scale = outputs[:, : code.k].to(torch.float64).flatten(1).norm(dim=1)
    wrong = total.sqrt() > tolerance * scale
    located = best.sqrt() <= fit * total.sqrt()
    return torch.where(wrong, torch.where(located, slot, torch.full_like(slot, code.n)), CONSISTENT)


def decode_without_wrong(code: MatrixCode, outputs: torch.Tensor, *, tolerance: float,
                         fit: float = FIT) -> tuple[torch.Tensor, torch.Tensor]:
    """Each group's k originals decoded from its outputs less the wrong one (B, k, m), and `locate_wrong`'s slots.

    A group with more than one wrong output (slot ``k + r``) is decoded as it stands: the caller decides what to do
    with it from the slots returned.
    """
    slots = locate_wrong(code, outputs, tolerance=tolerance, fit=fit)
    available = torch.ones(len(outputs), code.n, dtype=torch.bool)
    rows = torch.nonzero((slots >= 0) & (slots < code.n)).flatten()
    available[rows, slots[rows]] = False
    return code.decode(outputs, available), slots
