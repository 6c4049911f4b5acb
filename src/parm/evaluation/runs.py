"""Evaluating coded runs (``parm train-parity``, ``parm train-coder`` or ``parm make-run``) on a test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from parm.evaluation.degraded import DegradedEvaluation, evaluate_code, group_indices
from parm.evaluation.predict import predict_logits
from parm.runs import open_coded_run
from parm.runtime import resolve_device


@dataclass
class EvaluatedRun:
    """One run's degraded-mode evaluation, labelled for tables and plots."""

    run: str
    base_model: str
    dataset: str
    evaluation: DegradedEvaluation

    @property
    def code(self) -> dict[str, Any]:
        return self.evaluation.code

    @property
    def code_name(self) -> str:
        """The code's name, with its encoder for a learned code (``learned-conv``)."""
        return "-".join(str(part) for part in (self.code["name"], self.code.get("encoder")) if part)

    @property
    def label(self) -> str:
        return f"{self.code_name} k={self.code['k']} r={self.code.get('r', 1)}"

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "base_model": self.base_model, "dataset": self.dataset, **self.evaluation.to_dict()}


@torch.no_grad()
def evaluate_run(
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    cache_dir: Path | None = None,
    seed: int = 0,
    device: str = "auto",
) -> EvaluatedRun:
    """A_a, A_d and the default baseline of a parity run on its dataset's test split."""
    run = open_coded_run(run_dir)
    code = run.load_code()
    base_model, card = run.base.load()
    parity_models = run.load_parity_models()  # a learned code's: F itself, loaded again (weights only)
    dataset = run.base.dataset(data_dir=data_dir, cache_dir=cache_dir)
    target = resolve_device(device)
    for module in (base_model, *parity_models, *([code] if isinstance(code, nn.Module) else [])):
        module.to(target)
    base_out = predict_logits(base_model, dataset.test, dataset.preprocess, device=target)
    groups = group_indices(len(dataset.test), code.k, seed)
    evaluation = evaluate_code(code, parity_models, dataset.test, dataset.preprocess, base_out, groups,
                               task=dataset.task_definition, default_output=dataset.default_output(), device=target)
    return EvaluatedRun(str(run_dir), card.model, card.dataset, evaluation)
