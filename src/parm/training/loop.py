"""The epoch loop every parm training shares: seeding, schedule, progress, best epoch, resume.

A `Task` says what one epoch does and how it is scored (a base model, parity models, a learned
code); `fit` does everything else, so all trainings resume, checkpoint and report alike.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from parm.training.runtime import flush_denormals, seed_everything

STATE_NAME = "train_state.pt"

Advance = Callable[[int, dict[str, float]], None]
"""Progress callback of an epoch: (units done since the last call, running metrics to show)."""


@dataclass
class TrainConfig:
    """Hyper-parameters every training shares. ``batch_size`` counts samples, or groups for codes."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # or "constant"; cosine decays the rate to 0 by the last epoch
    seed: int = 0
    device: str = "auto"
    progress: bool = True


class CheckpointExistsError(FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


class Task(ABC):
    """One kind of training. ``module`` holds every trainable weight (and is what resume restores)."""

    unit: str = "img"
    score_key: str = "val_accuracy"
    tiebreak_key: str = "val_loss"  # lower is better; decides between epochs of equal score

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What must match for a saved run to be resumed by this task."""

    @abstractmethod
    def epoch_size(self) -> int:
        """Units (samples or groups) in one epoch, for the progress bar and throughput."""

    @abstractmethod
    def train_epoch(self, optimizer: torch.optim.Optimizer, generator: torch.Generator, advance: Advance) -> dict[str, float]:
        """One pass over the training data; returns epoch metrics such as ``train_loss``."""

    @abstractmethod
    def validate(self) -> dict[str, float]:
        """Validation metrics: ``score_key`` (higher is better) and ``tiebreak_key`` (lower is better)."""

    @abstractmethod
    def save_best(self, out_dir: Path) -> None:
        """Write the checkpoint that the run keeps (called whenever validation improves)."""

    @abstractmethod
    def load_best(self, out_dir: Path) -> None:
        """Load the kept checkpoint back into ``module``."""


@dataclass
class TrainResult:
    """What a training run produced, as written to ``metrics.json``: ``test`` holds its test-split scores."""

    out_dir: Path
    title: str
    best_epoch: int
    best_score: float
    test: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


@dataclass
class FitOutcome:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -math.inf
    best_tiebreak: float = math.inf

    def improves(self, score: float, tiebreak: float) -> bool:
        """Whether an epoch beats the best so far: a higher score, or the same score at a lower tiebreak."""
        return score > self.best_score or (score == self.best_score and tiebreak < self.best_tiebreak)


def epoch_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of a 1-based epoch: a pure function of the epoch, so resuming needs no state."""
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    raise ValueError(f"unknown schedule {config.schedule!r}: use cosine or constant")


def check_config(config: TrainConfig) -> None:
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("epochs and batch size must be at least 1")
    epoch_lr(config, 1)  # rejects an unknown schedule before any work


def prepare_run(out_dir: Path, config: TrainConfig, *, resume: bool, overwrite: bool) -> torch.Generator:
    """Refuse to clobber a run by accident, set up floats and seeds; returns the shuffling generator."""
    check_config(config)
    if (out_dir / STATE_NAME).exists() and not (resume or overwrite):
        raise CheckpointExistsError(
            f"{out_dir} already holds a training run: pass --resume to continue it or --overwrite to start again"
        )
    flush_denormals()
    return seed_everything(config.seed)


def _format(row: dict[str, float]) -> str:
    parts = []
    for key, value in row.items():
        if key in ("epoch", "seconds"):
            continue
        if key.endswith("s_per_second"):
            parts.append(f"{value:,.0f} {key.removesuffix('s_per_second')}/s")
            continue
        label = key.replace("_accuracy", "").replace("train_", "train ").replace("val_", "val ")
        parts.append(f"{label} {value:.2%}" if "accuracy" in key else f"{label} {value:.4g}")
    return "  ".join(parts)


def fit(
    task: Task,
    out_dir: Path,
    config: TrainConfig,
    generator: torch.Generator,
    *,
    resume: bool = False,
) -> FitOutcome:
    """Run the epochs not yet done, keeping the best validation epoch; leaves its weights loaded."""
    state_path = out_dir / STATE_NAME
    optimizer = torch.optim.Adam(task.module.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    outcome = FitOutcome()
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=True, map_location="cpu")
        for key, value in task.fingerprint().items():
            if state["fingerprint"].get(key) != value:
                raise ValueError(
                    f"cannot resume from {state_path}: it was trained with {key}={state['fingerprint'].get(key)!r}, "
                    f"not {value!r}; use another --out folder or --overwrite"
                )
        task.module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        outcome = FitOutcome(state["history"], state["best_epoch"], state["best_score"], state["best_tiebreak"])

    out_dir.mkdir(parents=True, exist_ok=True)
    size = task.epoch_size()
    for epoch in range(len(outcome.history) + 1, config.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, epoch)
        started = time.perf_counter()
        with tqdm(total=size, desc=f"epoch {epoch}/{config.epochs}", unit=task.unit, leave=False,
                  disable=None if config.progress else True) as bar:

            def advance(units: int, shown: dict[str, float]) -> None:
                bar.update(units)
                if shown:
                    bar.set_postfix({key: f"{value:.4g}" for key, value in shown.items()}, refresh=False)

            row: dict[str, float] = {"epoch": epoch, **task.train_epoch(optimizer, generator, advance)}
        seconds = time.perf_counter() - started
        row.update(task.validate())
        row[f"{task.unit}s_per_second"] = size / seconds
        row["seconds"] = seconds
        improved = outcome.improves(row[task.score_key], row[task.tiebreak_key])
        if improved:
            outcome.best_epoch, outcome.best_score, outcome.best_tiebreak = epoch, row[task.score_key], row[task.tiebreak_key]
            task.save_best(out_dir)
        outcome.history.append(row)
        if config.progress:
            tqdm.write(f"epoch {epoch:3d}/{config.epochs}  {_format(row)}{'  (best)' if improved else ''}")
        tmp = state_path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": task.fingerprint(),
                "module": task.module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "history": outcome.history,
                "best_epoch": outcome.best_epoch,
                "best_score": outcome.best_score,
                "best_tiebreak": outcome.best_tiebreak,
            },
            tmp,
        )
        os.replace(tmp, state_path)
    task.load_best(out_dir)
    return outcome
