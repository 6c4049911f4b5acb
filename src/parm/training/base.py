"""Training a base model F: the network whose predictions parm later protects.

`train_base` is what ``parm train-base`` runs; a notebook calls it with the same defaults.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from parm.data.dataset import Dataset, Split
from parm.evaluation import predict_logits, top_k_accuracy
from parm.models.checkpoint import WEIGHTS_NAME, ModelCard, load_checkpoint, save_checkpoint
from parm.training.augment import random_crop_flip
from parm.training.report import write_training_report
from parm.training.runtime import flush_denormals, resolve_device, seed_everything

STATE_NAME = "train_state.pt"
METRICS_NAME = "metrics.json"


@dataclass
class TrainConfig:
    """Hyper-parameters of base-model training (Adam, as in the paper's code)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    schedule: str = "cosine"  # or "constant"; cosine decays the rate to 0 by the last epoch
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    augment: bool | None = None  # None: the dataset's own default (crop + flip for CIFAR)
    progress: bool = True


@dataclass
class TrainResult:
    """What a training run produced, as written to ``metrics.json``."""

    out_dir: Path
    model: str
    dataset: str
    best_epoch: int
    best_val_accuracy: float
    test_accuracy: float
    test_top5_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


def epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of a 1-based epoch: a pure function of the epoch, so resuming needs no state."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    raise ValueError(f"unknown schedule {config.schedule!r}: use cosine or constant")


class CheckpointExistsError(FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


def _atomic_torch_save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_state(path: Path, model_name: str, dataset: Dataset) -> dict[str, Any]:
    state = torch.load(path, weights_only=True, map_location="cpu")
    expected = {"model_name": model_name, "dataset": dataset.name, "test_checksum": dataset.test.checksum()}
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"cannot resume from {path}: it was trained with {key}={state.get(key)!r}, not {value!r}; "
                "use another --out folder or --overwrite"
            )
    return state


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    dataset: Dataset,
    config: TrainConfig,
    augment: bool,
    generator: torch.Generator,
    bar: tqdm,
) -> tuple[float, float]:
    """One pass over the training split in shuffled batches; returns (mean loss, accuracy)."""
    model.train()
    order = torch.randperm(len(split), generator=generator).to(split.x.device)
    loss_sum = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.long)
    for step, start in enumerate(range(0, len(split), config.batch_size), 1):
        index = order[start : start + config.batch_size]
        x, y = dataset.preprocess(split.x[index]), split.y[index]
        if augment:
            x = random_crop_flip(x, generator)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        bar.update(len(y))
        if step % 50 == 0:
            seen = min(start + config.batch_size, len(split))
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.2%}")
    return loss_sum.item() / len(split), correct.item() / len(split)


def train_base(
    model: nn.Module,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    model_name: str,
    config: TrainConfig | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``model`` on ``dataset``, keeping the weights of the best validation epoch.

    Writes ``model.safetensors`` + ``model.json`` (best epoch), ``train_state.pt`` (last epoch,
    for ``resume``) and ``metrics.json`` (test accuracy of the best epoch) into ``out_dir``.
    """
    config = config or TrainConfig()
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("epochs and batch size must be at least 1")
    epoch_lr(config, 1)  # rejects an unknown schedule before any work
    out_dir = Path(out_dir)
    state_path = out_dir / STATE_NAME
    if state_path.exists() and not (resume or overwrite):
        raise CheckpointExistsError(
            f"{out_dir} already holds a training run: pass --resume to continue it or --overwrite to start again"
        )
    flush_denormals()
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    augment = dataset.augment if config.augment is None else config.augment
    train = Split(dataset.train.x.to(device), dataset.train.y.to(device))
    val = Split(dataset.val.x.to(device), dataset.val.y.to(device))
    card = ModelCard(
        model=model_name,
        input_shape=dataset.input_shape,
        classes=dataset.classes,
        dataset=dataset.name,
        split_seed=dataset.split_seed,
        preprocess=dataset.preprocess.to_dict(),
    )

    history: list[dict[str, float]] = []
    best_epoch, best_val = 0, -1.0
    if resume and state_path.exists():
        state = _load_state(state_path, model_name, dataset)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, best_epoch, best_val = state["history"], state["best_epoch"], state["best_val_accuracy"]

    out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(len(history) + 1, config.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, epoch)
        started = time.perf_counter()
        with tqdm(
            total=len(train), desc=f"epoch {epoch}/{config.epochs}", unit="img", leave=False, disable=None if config.progress else True
        ) as bar:
            loss, acc = _train_epoch(model, optimizer, train, dataset, config, augment, generator, bar)
        seconds = time.perf_counter() - started
        val_acc = top_k_accuracy(predict_logits(model, val, dataset.preprocess, device=device), val.y.cpu())
        improved = val_acc > best_val
        if improved:
            best_epoch, best_val = epoch, val_acc
            save_checkpoint(model, card, out_dir / WEIGHTS_NAME)
        history.append(
            {"epoch": epoch, "train_loss": loss, "train_accuracy": acc, "val_accuracy": val_acc, "seconds": seconds}
        )
        if config.progress:
            tqdm.write(
                f"epoch {epoch:3d}/{config.epochs}  loss {loss:.4f}  train {acc:.2%}  val {val_acc:.2%}  "
                f"{len(train) / seconds:,.0f} img/s{'  (best)' if improved else ''}"
            )
        _atomic_torch_save(
            {
                "model_name": model_name,
                "dataset": dataset.name,
                "test_checksum": dataset.test.checksum(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "best_epoch": best_epoch,
                "best_val_accuracy": best_val,
            },
            state_path,
        )

    load_checkpoint(out_dir / WEIGHTS_NAME, model)
    logits = predict_logits(model, dataset.test, dataset.preprocess, device=device)
    result = TrainResult(
        out_dir=out_dir,
        model=model_name,
        dataset=dataset.name,
        best_epoch=best_epoch,
        best_val_accuracy=best_val,
        test_accuracy=top_k_accuracy(logits, dataset.test.y, 1),
        test_top5_accuracy=top_k_accuracy(logits, dataset.test.y, 5),
        history=history,
        config=asdict(config),
    )
    (out_dir / METRICS_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    write_training_report(result)
    return result
