"""Training parity models (paper section V): F_P learns to output what the code's decoder needs.

For a code with parities P_j = encode(X_1..X_k)_j, parity model j is trained (MSE by default)
towards the code's target, e.g. F(X_1) + ... + F(X_k) for the sum code. The base model F is frozen
and its outputs never change, so they are computed once per split and reused every epoch: an epoch
costs only the parity models' own forward and backward passes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from parm.codes import Code
from parm.data.dataset import Dataset
from parm.data.cache import file_sha256
from parm.evaluation import DegradedEvaluation, group_indices, most_common_class, parity_outputs, predict_logits, score_reconstructions
from parm.models import ModelCard, build_model, load_checkpoint, save_checkpoint, weights_path
from parm.models.init import paper_init
from parm.training.loop import Advance, Task, TrainConfig, TrainResult, fit, prepare_run
from parm.training.report import write_training_report
from parm.training.runtime import resolve_device

CODE_NAME = "code.json"
METRICS_NAME = "metrics.json"
INITS = ("base", "paper", "default")
LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss, "smooth-l1": nn.functional.smooth_l1_loss}


@dataclass
class ParityTrainConfig(TrainConfig):
    """Parity-model training: the paper's MSE, Adam 1e-3, weight decay 1e-5 and 64 groups per batch."""

    epochs: int = 100
    weight_decay: float = 1e-5
    loss: str = "mse"
    init: str = "base"  # start from F's weights ("base"), the paper's scheme ("paper") or torch's ("default")
    eval_seed: int = 0  # seed of the validation and test grouping


def epoch_groups(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's coding groups (n // k, k): samples drawn without replacement, none used twice."""
    return torch.randperm(n, generator=generator)[: (n // k) * k].view(-1, k)


def parity_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"parity-{index}.safetensors"


def build_parity_models(
    base_model: nn.Module, base_card: ModelCard, r: int, *, architecture: str | None = None, init: str = "base"
) -> nn.ModuleList:
    """r fresh parity models, by default of the base model's architecture."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    name = architecture or base_card.model
    if init == "base" and name != base_card.model:
        raise ValueError("--init base copies the base model's weights, so it needs the base architecture")
    models = nn.ModuleList(build_model(name, base_card.input_shape, base_card.num_classes) for _ in range(r))
    for model in models:
        if init == "base":
            model.load_state_dict(base_model.state_dict())
        elif init == "paper":
            paper_init(model)
    return models


class ParityTask(Task):
    """The r parity models of one code, trained on groups of k training samples drawn without replacement."""

    unit = "group"
    score_key = "val_degraded_accuracy"

    def __init__(
        self,
        parity_models: nn.ModuleList,
        cards: list[ModelCard],
        code: Code,
        dataset: Dataset,
        base_outputs: dict[str, torch.Tensor],
        fingerprint: dict[str, Any],
        config: ParityTrainConfig,
        device: torch.device,
    ) -> None:
        super().__init__(parity_models.to(device))
        if config.loss not in LOSSES:
            raise ValueError(f"unknown loss {config.loss!r}: use one of {', '.join(LOSSES)}")
        self.cards, self.code, self.dataset, self.config, self.device = cards, code, dataset, config, device
        self.base_outputs = base_outputs
        self._fingerprint = fingerprint
        self.train_x = dataset.train.x.to(device)
        self.train_targets = base_outputs["train"].to(device)
        self.val_groups = group_indices(len(dataset.val), code.k, config.eval_seed)
        self.default_class = most_common_class(dataset.train.y)

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def epoch_size(self) -> int:
        return len(self.train_x) // self.code.k

    def train_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator, advance: Advance) -> dict[str, float]:
        k, batch, loss_fn = self.code.k, self.config.batch_size, LOSSES[self.config.loss]
        groups = epoch_groups(len(self.train_x), k, generator).to(self.device)
        self.module.train()
        loss_sum = torch.zeros((), device=self.device)
        for step, start in enumerate(range(0, len(groups), batch), 1):
            index = groups[start : start + batch]
            x = self.dataset.preprocess(self.train_x[index.flatten()]).view(*index.shape, *self.train_x.shape[1:])
            parities = self.code.encode(x)
            targets = self.code.parity_targets(self.train_targets[index])
            predicted = torch.stack([model(parities[:, j]) for j, model in enumerate(self.module)], dim=1)
            loss = loss_fn(predicted, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)
            advance(len(index), {"loss": loss_sum.item() / min(start + batch, len(groups))} if step % 100 == 0 else {})
        return {"train_loss": loss_sum.item() / len(groups)}

    def validate(self) -> dict[str, float]:
        out = self._parity_outputs("val", self.val_groups)
        targets = self.code.parity_targets(self.base_outputs["val"].cpu()[self.val_groups])
        evaluation = self._score("val", self.val_groups, out)
        return {"val_loss": LOSSES[self.config.loss](out, targets).item(), "val_degraded_accuracy": evaluation.degraded_accuracy}

    def _parity_outputs(self, split_name: str, groups: torch.Tensor) -> torch.Tensor:
        split = getattr(self.dataset, split_name)
        return parity_outputs(list(self.module), self.code, split, self.dataset.preprocess, groups, device=self.device)

    def _score(self, split_name: str, groups: torch.Tensor, out: torch.Tensor) -> DegradedEvaluation:
        labels = getattr(self.dataset, split_name).y
        return score_reconstructions(
            self.code, self.base_outputs[split_name].cpu(), out, groups, labels, default_class=self.default_class
        )

    def evaluate(self, split_name: str, groups: torch.Tensor) -> DegradedEvaluation:
        """Degraded-mode scores of the current parity models on a split's groups."""
        return self._score(split_name, groups, self._parity_outputs(split_name, groups))

    def save_best(self, out_dir: Path) -> None:
        for j, (model, card) in enumerate(zip(self.module, self.cards)):
            save_checkpoint(model, card, parity_path(out_dir, j))

    def load_best(self, out_dir: Path) -> None:
        for j, model in enumerate(self.module):
            load_checkpoint(parity_path(out_dir, j), model)


def train_parity(
    base_path: str | Path,
    dataset: Dataset,
    code: Code,
    out_dir: str | Path,
    *,
    architecture: str | None = None,
    config: ParityTrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train the r parity models of ``code`` for the base model checkpointed at ``base_path``.

    Writes ``parity-J.safetensors`` + ``.json`` per parity model, ``code.json`` (the code and the
    base checkpoint it belongs to), ``metrics.json`` (degraded-mode test scores), ``report.md``,
    ``curves.png`` and ``train_state.pt`` into ``out_dir``.
    """
    config = config or ParityTrainConfig()
    out_dir = Path(out_dir)
    generator = prepare_run(out_dir, config, resume=resume, overwrite=overwrite)
    device = resolve_device(config.device)
    base_model, base_card = load_checkpoint(base_path)
    if base_card.dataset != dataset.name or base_card.input_shape != dataset.input_shape:
        raise ValueError(
            f"the base model at {base_path} was trained on {base_card.dataset} {base_card.input_shape}, "
            f"not {dataset.name} {dataset.input_shape}: pass the matching --dataset or --base"
        )
    base_model.to(device).requires_grad_(False)
    base_outputs = {
        name: predict_logits(base_model, getattr(dataset, name), dataset.preprocess, device=device)
        for name in ("train", "val", "test")
    }
    base_weights = weights_path(base_path)
    models = build_parity_models(base_model, base_card, code.r, architecture=architecture, init=config.init)
    extra = {"role": "parity", "code": code.spec(), "base": str(base_weights), "dataset_args": dataset.load_args}
    cards = [
        ModelCard(architecture or base_card.model, base_card.input_shape, base_card.classes, dataset.name,
                  dataset.split_seed, base_card.preprocess, {**extra, "index": j})
        for j in range(code.r)
    ]
    fingerprint = {"code": json.dumps(code.spec()), "dataset": dataset.name, "test_checksum": dataset.test.checksum(),
                   "base_sha256": file_sha256(base_weights)}
    task = ParityTask(models, cards, code, dataset, base_outputs, fingerprint, config, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CODE_NAME).write_text(json.dumps({"code": code.spec(), **{k: fingerprint[k] for k in ("dataset", "base_sha256")},
                                                 "base": str(base_weights.resolve())}, indent=2) + "\n")
    outcome = fit(task, out_dir, config, generator, resume=resume)
    evaluation = task.evaluate("test", group_indices(len(dataset.test), code.k, config.eval_seed))
    result = TrainResult(
        out_dir=out_dir,
        title=f"{code.name} code (k={code.k}, r={code.r}) parity models for {base_card.model} on {dataset.name}",
        best_epoch=outcome.best_epoch,
        best_score=outcome.best_score,
        test=evaluation.to_dict(),
        history=outcome.history,
        config=asdict(config),
    )
    (out_dir / METRICS_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    write_training_report(result)
    return result
