"""Training a base model F: the network whose predictions parm later protects.

`train_base` is what ``parm train-base`` runs; a notebook calls it with the same defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from parm.data.dataset import Dataset, Split
from parm.evaluation import predict_logits, top_k_accuracy
from parm.models.checkpoint import WEIGHTS_NAME, ModelCard, load_checkpoint, save_checkpoint
from parm.training.augment import random_crop_flip
from parm.training.loop import Advance, Task, TrainConfig, TrainResult, fit, prepare_run
from parm.training.report import write_training_report
from parm.training.runtime import resolve_device


@dataclass
class BaseTrainConfig(TrainConfig):
    """Base-model training: Adam on cross-entropy, optional crop + flip augmentation."""

    augment: bool | None = None  # None: the dataset's own default (crop + flip for CIFAR)


class BaseTask(Task):
    """Supervised training of one classifier on a dataset's train split, scored on validation accuracy."""

    def __init__(self, model: nn.Module, model_name: str, dataset: Dataset, config: BaseTrainConfig, device: torch.device):
        super().__init__(model.to(device))
        self.model_name, self.dataset, self.config, self.device = model_name, dataset, config, device
        self.augment = dataset.augment if config.augment is None else config.augment
        self.train = Split(dataset.train.x.to(device), dataset.train.y.to(device))
        self.card = ModelCard(
            model=model_name,
            input_shape=dataset.input_shape,
            classes=dataset.classes,
            dataset=dataset.name,
            split_seed=dataset.split_seed,
            preprocess=dataset.preprocess.to_dict(),
            extra={"dataset_args": dataset.load_args},
        )
        self._fingerprint = {"model_name": model_name, "dataset": dataset.name, "test_checksum": dataset.test.checksum()}

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def epoch_size(self) -> int:
        return len(self.train)

    def train_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator, advance: Advance) -> dict[str, float]:
        model, split, batch = self.module, self.train, self.config.batch_size
        model.train()
        order = torch.randperm(len(split), generator=generator).to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for step, start in enumerate(range(0, len(split), batch), 1):
            index = order[start : start + batch]
            x, y = self.dataset.preprocess(split.x[index]), split.y[index]
            if self.augment:
                x = random_crop_flip(x, generator)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen = min(start + batch, len(split))
            advance(len(y), {"loss": loss_sum.item() / seen, "acc": correct.item() / seen} if step % 50 == 0 else {})
        return {"train_loss": loss_sum.item() / len(split), "train_accuracy": correct.item() / len(split)}

    def validate(self) -> dict[str, float]:
        logits = predict_logits(self.module, self.dataset.val, self.dataset.preprocess, device=self.device)
        labels = self.dataset.val.y
        return {"val_loss": nn.functional.cross_entropy(logits, labels).item(), "val_accuracy": top_k_accuracy(logits, labels)}

    def save_best(self, out_dir: Path) -> None:
        save_checkpoint(self.module, self.card, out_dir / WEIGHTS_NAME)

    def load_best(self, out_dir: Path) -> None:
        load_checkpoint(out_dir / WEIGHTS_NAME, self.module)


def train_base(
    model: nn.Module,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    model_name: str,
    config: BaseTrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` on ``dataset``, keeping the weights of the best validation epoch.

    Writes ``model.safetensors`` + ``model.json`` (best epoch), ``train_state.pt`` (last epoch,
    for ``resume``), ``metrics.json`` (test accuracy of the best epoch), ``report.md`` and
    ``curves.png`` into ``out_dir``.
    """
    config = config or BaseTrainConfig()
    out_dir = Path(out_dir)
    generator = prepare_run(out_dir, config, resume=resume, overwrite=overwrite)
    device = resolve_device(config.device)
    task = BaseTask(model, model_name, dataset, config, device)
    outcome = fit(task, out_dir, config, generator, resume=resume)
    logits = predict_logits(task.module, dataset.test, dataset.preprocess, device=device)
    result = TrainResult(
        out_dir=out_dir,
        title=f"{model_name} on {dataset.name}",
        best_epoch=outcome.best_epoch,
        best_score=outcome.best_score,
        test={"accuracy": top_k_accuracy(logits, dataset.test.y, 1), "top5_accuracy": top_k_accuracy(logits, dataset.test.y, 5)},
        history=outcome.history,
        config=asdict(config),
    )
    write_training_report(result)
    return result
