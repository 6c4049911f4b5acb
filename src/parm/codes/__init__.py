"""Erasure codes: one interface (`Code`) for the sum, linear (any r), concatenation, learned and Berrut codes.

>>> code = build_code("linear", k=3, r=2)
>>> parities = code.encode(x)                 # (B, 3, C, H, W) -> (B, 2, C, H, W)
>>> originals = code.decode(outputs, mask)    # (B, 5, m) + availability -> (B, 3, m)
"""

from __future__ import annotations

from typing import Any

from parm.codes.base import Code, DecodingError
from parm.codes.berrut import BerrutCode
from parm.codes.concat import ConcatenationCode
from parm.codes.learned import ConvEncoder, LearnedCode, MLPDecoder, MLPEncoder
from parm.codes.linear import LinearCode, MatrixCode, SumCode
from parm.codes.patterns import erasure_patterns, lost_originals

CODES: dict[str, type[Code]] = {"sum": SumCode, "linear": LinearCode, "concat": ConcatenationCode, "learned": LearnedCode,
                                "berrut": BerrutCode}
PARITY_MODEL_CODES = ("sum", "linear", "concat")  # decoded with trained parity models; "learned" runs F itself
TRAINING_FREE_CODES = ("berrut",)  # nothing to train: F runs on the coded queries (`parm make-run`)


def build_code(name: str, k: int, r: int = 1, **options: Any) -> Code:
    """A code by name (`CODES`) for groups of k queries with r parities."""
    if name not in CODES:
        raise ValueError(f"unknown code {name!r}: use one of {', '.join(CODES)}")
    return CODES[name](k, r, **options)


def code_from_spec(spec: dict[str, Any]) -> Code:
    """Rebuild a code from `Code.spec()` (as stored beside trained parity models)."""
    options = {key: value for key, value in spec.items() if key not in ("name", "k", "r")}
    return build_code(spec["name"], spec["k"], spec.get("r", 1), **options)


__all__ = [
    "BerrutCode",
    "CODES",
    "Code",
    "ConcatenationCode",
    "ConvEncoder",
    "DecodingError",
    "LearnedCode",
    "LinearCode",
    "MLPDecoder",
    "MLPEncoder",
    "MatrixCode",
    "PARITY_MODEL_CODES",
    "SumCode",
    "TRAINING_FREE_CODES",
    "build_code",
    "code_from_spec",
    "erasure_patterns",
    "lost_originals",
]
