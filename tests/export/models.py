"""What the tests of `parm export` compare against: each exported model's PyTorch checkpoint, and its outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from parm.models import load_checkpoint
from parm.runs import open_run

BASE = "toy-logistic-regression"  # the base name of `affine_run`'s models: f"{dataset}-{model}"


def expected_models(run_path: Path) -> dict[str, Path]:
    """Model name -> the checkpoint it was exported from: the base model, then parity 0, 1, ..."""
    run = open_run(run_path)
    return {BASE: run.base.weights} | {f"{BASE}-parity-{j}": run.parity_checkpoint(j) for j in range(run.r)}


def pytorch(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    """The checkpoint's logits for ``x``, computed by PyTorch."""
    model, _ = load_checkpoint(checkpoint)
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()
