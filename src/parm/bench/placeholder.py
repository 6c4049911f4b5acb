"""A coded run folder around an untrained model, for runs whose instances never compute (no-op)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from parm.codes import build_code
from parm.models import ModelCard, build_model
from parm.runs import BaseRun, ParityRun

INPUT_SHAPE, CLASSES = (1, 28, 28), 10


def placeholder_run(root: str | Path, k: int = 2, r: int = 1, *, model: str = "base-mlp",
                    input_shape: Sequence[int] = INPUT_SHAPE, classes: int = CLASSES) -> Path:
    """``root/run``: a sum (r = 1) or linear code over an untrained ``model`` taking ``input_shape`` (channels x
    height x width) to ``classes`` logits; serve it with no-op instances."""
    root = Path(root)
    shape = tuple(input_shape)
    card = ModelCard(model, shape, tuple(str(i) for i in range(classes)), "none", 0)
    base = BaseRun(root / "base")
    base.save(build_model(model, shape, classes), card)
    return ParityRun.create(root / "run", build_code("sum" if r == 1 else "linear", k, r), base).path
