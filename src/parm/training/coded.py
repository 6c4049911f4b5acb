"""What every code-training run shares, whatever it trains (parity models or a learned code).

The base model F is loaded from its checkpoint and frozen; its outputs on every split are computed
once; validation and the final test score are the degraded-mode evaluation of `parm.evaluation`,
so a run is judged exactly as ``parm evaluate`` judges it later.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from parm.codes import Code
from parm.data.cache import file_sha256
from parm.data.dataset import Dataset
from parm.evaluation import DegradedEvaluation, evaluate_code, group_indices, most_common_class, predict_logits
from parm.models import ModelCard, load_checkpoint, weights_path
from parm.training.loop import Advance, Task, TrainConfig, TrainResult, fit, prepare_run
from parm.training.report import write_training_report
from parm.training.runtime import resolve_device

CODE_NAME = "code.json"


@dataclass
class CodedTrainConfig(TrainConfig):
    """Defaults of the paper for both approaches: Adam 1e-3, weight decay 1e-5, 64 groups per batch."""

    epochs: int = 100
    weight_decay: float = 1e-5
    eval_seed: int = 0  # seed of the validation and test grouping


def epoch_groups(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's coding groups (n // k, k): samples drawn without replacement, none used twice."""
    return torch.randperm(n, generator=generator)[: (n // k) * k].view(-1, k)


@dataclass
class BaseModel:
    """The frozen F of a run, with its card, weights file and outputs on every split."""

    model: nn.Module
    card: ModelCard
    weights: Path
    outputs: dict[str, torch.Tensor]


def load_frozen_base(base_path: str | Path, dataset: Dataset, device: torch.device) -> BaseModel:
    model, card = load_checkpoint(base_path)
    if card.dataset != dataset.name or card.input_shape != dataset.input_shape:
        raise ValueError(
            f"the base model at {base_path} was trained on {card.dataset} {card.input_shape}, "
            f"not {dataset.name} {dataset.input_shape}: pass the matching --dataset or --base"
        )
    model.to(device).eval().requires_grad_(False)
    outputs = {name: predict_logits(model, getattr(dataset, name), dataset.preprocess, device=device)
               for name in ("train", "val", "test")}
    return BaseModel(model, card, weights_path(base_path), outputs)


class CodedTask(Task):
    """Training whose score is degraded-mode accuracy: groups of k training samples per epoch."""

    unit = "group"
    score_key = "val_degraded_accuracy"
    tiebreak_key = "val_loss"

    def __init__(self, module: nn.Module, code: Code, dataset: Dataset, base: BaseModel, config: CodedTrainConfig,
                 device: torch.device) -> None:
        super().__init__(module.to(device))
        self.code, self.dataset, self.base, self.config, self.device = code, dataset, base, config, device
        self.train_x = dataset.train.x.to(device)
        self.train_outputs = base.outputs["train"].to(device)
        self.val_groups = group_indices(len(dataset.val), code.k, config.eval_seed)
        self.default_class = most_common_class(dataset.train.y)
        self._fingerprint = {"code": json.dumps(code.spec()), "dataset": dataset.name,
                             "test_checksum": dataset.test.checksum(), "base_sha256": file_sha256(base.weights)}

    @property
    @abstractmethod
    def parity_models(self) -> list[nn.Module]:
        """The r models that run on the parities: trained parity models, or F itself."""

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def epoch_size(self) -> int:
        return len(self.train_x) // self.code.k

    @abstractmethod
    def batch_loss(self, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch: group indices (b, k) and their inputs (b, k, C, H, W)."""

    def train_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator, advance: Advance) -> dict[str, float]:
        self.module.train()
        loss_sum, groups = torch.zeros((), device=self.device), 0
        for step, (index, x) in enumerate(self.batches(generator), 1):
            loss = self.batch_loss(index, x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)
            groups += len(index)
            advance(len(index), {"loss": loss_sum.item() / groups} if step % 20 == 0 else {})
        return {"train_loss": loss_sum.item() / groups}

    def batches(self, generator: torch.Generator):
        """This epoch's batches: group indices (b, k) and their preprocessed inputs (b, k, C, H, W)."""
        groups = epoch_groups(len(self.train_x), self.code.k, generator).to(self.device)
        for start in range(0, len(groups), self.config.batch_size):
            index = groups[start : start + self.config.batch_size]
            yield index, self.dataset.preprocess(self.train_x[index.flatten()]).view(*index.shape, *self.train_x.shape[1:])

    def evaluate(self, split_name: str, groups: torch.Tensor) -> DegradedEvaluation:
        """Degraded-mode scores of the code as it stands on a split's groups."""
        split = getattr(self.dataset, split_name)
        was_training = self.module.training
        self.module.eval()
        evaluation = evaluate_code(self.code, self.parity_models, split, self.dataset.preprocess,
                                   self.base.outputs[split_name], groups, default_class=self.default_class, device=self.device)
        self.module.train(was_training)
        return evaluation

    def validate(self) -> dict[str, float]:
        evaluation = self.evaluate("val", self.val_groups)
        return {"val_loss": evaluation.mse, "val_degraded_accuracy": evaluation.degraded_accuracy}


def train_coded(
    base_path: str | Path,
    dataset: Dataset,
    code: Code,
    out_dir: str | Path,
    *,
    config: CodedTrainConfig,
    make_task: Callable[[BaseModel, torch.device], CodedTask],
    title: str,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Set up a run folder, train the task built by ``make_task``, and score the kept epoch on test.

    Writes ``code.json`` (the code and the base checkpoint it belongs to), ``metrics.json``
    (degraded-mode test scores), ``report.md``, ``curves.png`` and ``train_state.pt``; the task
    writes its own weights.
    """
    out_dir = Path(out_dir)
    generator = prepare_run(out_dir, config, resume=resume, overwrite=overwrite)
    device = resolve_device(config.device)
    base = load_frozen_base(base_path, dataset, device)
    task = make_task(base, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"code": code.spec(), "base": str(base.weights.resolve()), "dataset": dataset.name,
            "base_sha256": task.fingerprint()["base_sha256"]}
    (out_dir / CODE_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    outcome = fit(task, out_dir, config, generator, resume=resume)
    evaluation = task.evaluate("test", group_indices(len(dataset.test), code.k, config.eval_seed))
    result = TrainResult(
        out_dir=out_dir,
        title=f"{title} for {base.card.model} on {dataset.name}",
        best_epoch=outcome.best_epoch,
        best_score=outcome.best_score,
        test=evaluation.to_dict(),
        history=outcome.history,
        config=asdict(config),
    )
    write_training_report(result)
    return result
