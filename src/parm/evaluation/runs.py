"""Evaluating trained coded runs (``parm train-parity`` or ``parm train-coder``) on a test split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model

from parm.codes import Code, LearnedCode, code_from_spec
from parm.data import Dataset, load_dataset
from parm.evaluation.degraded import (
    DegradedEvaluation,
    evaluate_code,
    group_indices,
    most_common_class,
)
from parm.evaluation.predict import predict_logits
from parm.models import ModelCard, load_checkpoint
from parm.training.coded import CODE_NAME
from parm.training.coder import CODE_WEIGHTS
from parm.training.parity import parity_path
from parm.training.runtime import resolve_device


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


def load_coded_run(run_dir: str | Path) -> tuple[Code, Path]:
    """The trained code of a run folder (a learned code with its weights loaded) and its base checkpoint."""
    run_dir = Path(run_dir)
    if not (run_dir / CODE_NAME).is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a coded run (no {CODE_NAME}): train one with `parm train-parity` or `parm train-coder`"
        )
    meta = json.loads((run_dir / CODE_NAME).read_text())
    code = code_from_spec(meta["code"])
    if isinstance(code, LearnedCode):
        load_model(code, str(run_dir / CODE_WEIGHTS))
        code.eval()
    return code, Path(meta["base"])


def dataset_of(card: ModelCard, *, data_dir: str | Path | None = None, cache_dir: Path | None = None) -> Dataset:
    """The dataset, with the same splits, that the checkpoint behind ``card`` was trained on."""
    recorded = card.extra.get("dataset_args") or {"name": card.dataset}
    return load_dataset(recorded["name"], data_dir=data_dir or recorded.get("data_dir"), cache_dir=cache_dir,
                        seed=card.split_seed)


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
    code, base_path = load_coded_run(run_dir)
    base_model, card = load_checkpoint(base_path)
    if isinstance(code, LearnedCode):
        parity_models = [base_model] * code.r  # a learned code runs F itself on its parities
    else:
        parity_models = [load_checkpoint(parity_path(Path(run_dir), j))[0] for j in range(code.r)]
    dataset = dataset_of(card, data_dir=data_dir, cache_dir=cache_dir)
    target = resolve_device(device)
    base_model.to(target)
    if isinstance(code, LearnedCode):
        code.to(target)
    for model in parity_models:
        model.to(target)
    base_out = predict_logits(base_model, dataset.test, dataset.preprocess, device=target)
    groups = group_indices(len(dataset.test), code.k, seed)
    evaluation = evaluate_code(code, parity_models, dataset.test, dataset.preprocess, base_out, groups,
                               default_class=most_common_class(dataset.train.y), device=target)
    return EvaluatedRun(str(run_dir), card.model, card.dataset, evaluation)
