"""Training a base model F: the network whose predictions parm later protects.

The task's loss (`parm.tasks`: cross-entropy for classification) on shuffled batches of the train split (crop +
flip for CIFAR), scored on the task's validation measure. `train_base` is what ``parm train-base`` runs; a notebook calls it with the same defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from parm.data.dataset import Dataset
from parm.evaluation import predict_logits
from parm.models import ModelCard
from parm.runs import BaseRun
from parm.runtime import resolve_compute
from parm.training.augment import random_crop_flip
from parm.training.loop import Step, TrainConfig, Trainee, finish_run, fit, prepare_run
from parm.training.report import TrainResult


@dataclass
class BaseTrainConfig(TrainConfig):
    """Base-model training: Adam on the task's loss, optional crop + flip augmentation."""

    augment: bool | None = None  # None: the dataset's own default (crop + flip for CIFAR)


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

    The initial weights are the caller's: seed before building ``model`` for a reproducible run.
    Writes ``model.safetensors`` + ``model.json`` (best epoch), ``train_state.pt`` (last epoch,
    for ``resume``), ``metrics.json`` (the task's test measures of the best epoch), ``report.md`` and
    ``curves.png`` into ``out_dir``.
    """
    config = config or BaseTrainConfig()
    out_dir = Path(out_dir)
    prepare_run(out_dir, config, resume=resume, overwrite=overwrite)
    compute = resolve_compute(config.device, config.precision, config.channels_last)
    device = compute.device
    compute.place(model)
    run = BaseRun(out_dir)
    card = ModelCard(model_name, dataset.input_shape, dataset.classes, dataset.name, dataset.split_seed,
                     dataset.preprocess.to_dict(), {"dataset_args": dataset.load_args}, task=dataset.task,
                     default_output=tuple(dataset.default_output().tolist()))
    task, metric = dataset.task_definition, dataset.task_definition.metric
    train_x, train_y = dataset.train.x.to(device), dataset.train.y.to(device)
    augment = dataset.augment if config.augment is None else config.augment

    def batches(generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's shuffled batches, preprocessed and, if asked, augmented."""
        order = torch.randperm(len(train_y), generator=generator).to(device)
        for index in order.split(config.batch_size):
            x = dataset.preprocess(train_x[index])
            yield (random_crop_flip(x, generator) if augment else x), train_y[index]

    def step(x: torch.Tensor, y: torch.Tensor) -> Step:
        outputs = model(x)
        return Step(task.loss(outputs, y), len(y), {metric: task.per_sample(outputs.detach(), y).sum()})

    def validate() -> dict[str, float]:
        outputs = predict_logits(model, dataset.val, dataset.preprocess, device=device)
        return {"val_loss": task.loss(outputs, dataset.val.y).item(), f"val_{metric}": task.score(outputs, dataset.val.y)}

    trainee = Trainee(
        module=model,
        batches=batches,
        step=step,
        validate=validate,
        score=f"val_{metric}",
        save_best=lambda: run.save(model, card),
        load_best=lambda: run.load(model),
        fingerprint={"model_name": model_name, "dataset": dataset.name, "test_checksum": dataset.test.checksum()},
        epoch_size=len(train_y),
    )
    outcome = fit(trainee, out_dir, config, compute=compute, resume=resume)
    test = task.measures(predict_logits(model, dataset.test, dataset.preprocess, device=device), dataset.test.y)
    return finish_run(out_dir, f"{model_name} on {dataset.name}", outcome, test, config)
