"""A coded run folder around an untrained model, for runs whose instances never compute (no-op)."""

from __future__ import annotations

import json
from pathlib import Path

from parm.models import ModelCard, build_model, save_checkpoint
from parm.training.coded import CODE_NAME

INPUT_SHAPE, CLASSES = (1, 28, 28), 10


def placeholder_run(root: str | Path, k: int = 2, r: int = 1, *, model: str = "base-mlp") -> Path:
    """``root/run``: a sum (r = 1) or linear code over an untrained ``model``; serve it with no-op instances."""
    root = Path(root)
    card = ModelCard(model, INPUT_SHAPE, tuple(str(i) for i in range(CLASSES)), "none", 0)
    base = save_checkpoint(build_model(model, INPUT_SHAPE, CLASSES), card, root / "base")
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    code = {"name": "sum", "k": k, "r": 1} if r == 1 else {"name": "linear", "k": k, "r": r}
    (run / CODE_NAME).write_text(json.dumps({"code": code, "base": str(base)}))
    return run
