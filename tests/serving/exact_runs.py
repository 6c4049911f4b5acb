"""Coded run folders whose parity models are exact, so served reconstructions can be checked by value.

F is affine (logistic regression, F(x) = Wx + b); for a linear code with coefficients C the parity
model F_P_j(P) = WP + (sum_i C_ji) b returns exactly sum_i C_ji F(X_i).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import tritonclient.http as triton

from parm.codes import build_code
from parm.models import ModelCard, build_model, save_checkpoint
from parm.runs import BaseRun, ParityRun

INPUT_SHAPE, CLASSES = (1, 4, 4), 3
MODEL = "toy-logistic-regression"  # the name its base model is served under


def infer(client: triton.InferenceServerClient, x: np.ndarray) -> tuple[np.ndarray, str]:
    """One request to a served affine run: its logits and how it was answered."""
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(MODEL, [tensor])
    return result.as_numpy("logits"), result.get_response()["parameters"]["answer"]


def affine_run(root: Path, k: int = 2, r: int = 1) -> tuple[Path, torch.nn.Module]:
    """A run folder for the linear code (k, r) with exact parity models, and the base model F."""
    torch.manual_seed(0)
    card = ModelCard("logistic-regression", INPUT_SHAPE, tuple(f"c{i}" for i in range(CLASSES)), "toy", 0)
    base = build_model("logistic-regression", INPUT_SHAPE, CLASSES).eval()
    base_path = save_checkpoint(base, card, root / "base")
    code = build_code("linear", k, r)
    run = ParityRun.create(root / "run", code, BaseRun(base_path), dataset="toy")
    for j, row in enumerate(code.coefficients):
        parity = build_model("logistic-regression", INPUT_SHAPE, CLASSES)
        parity.load_state_dict(base.state_dict())
        bias = next(p for name, p in parity.named_parameters() if name.endswith("bias"))
        with torch.no_grad():
            bias.mul_(float(row.sum()))
        run.save_parity_model(j, parity, card)
    return run.path, base
