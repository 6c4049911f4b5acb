"""The epoch loop every parm training shares: schedule, progress, best epoch, resume.

A trainer (`parm.training.base`, `.parity`, `.coder`) states its batches, its loss and its
validation as a `Trainee`; `fit` does everything else, so all trainings resume, checkpoint and
report alike. Nothing here seeds the process: the command seeds once, before any weight is drawn
(`parm.runtime.seed_everything`); shuffling and augmentation draw from `fit`'s own generator,
seeded with ``config.seed`` and saved with every epoch so that a resumed run continues its stream.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from parm.runtime import PRECISIONS, Compute, flush_denormals
from parm.training.report import TrainResult, write_training_report

STATE_NAME = "train_state.pt"
SHOW_EVERY = 20  # steps between updates of the progress bar's running figures (each one syncs the device)


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
    precision: str = "auto"  # bf16 autocast of the training steps: auto (on CUDA), fp32 or bf16
    channels_last: bool | None = None  # channels-last convolutions; None: on CUDA
    max_seconds: float | None = None  # time box: no epoch is started that would end past it (the best epoch is kept)
    progress: bool = True


class CheckpointExistsError(FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


@dataclass
class Step:
    """One batch's loss (its mean, which is backpropagated) and the units (samples or groups) it covers.

    ``counts`` are per-batch totals, e.g. correct predictions, that the epoch reports per unit.
    """

    loss: torch.Tensor
    size: int
    counts: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Trainee:
    """One training as `fit` sees it; the trainer that builds it says what each part computes."""

    module: nn.Module  # every trainable weight: what Adam steps and what resume restores
    batches: Callable[[torch.Generator], Iterable[tuple[torch.Tensor, ...]]]  # one epoch, drawn from the generator
    step: Callable[..., Step]  # the loss of one batch, called as ``step(*batch)``
    validate: Callable[[], dict[str, float]]  # ``score`` (higher is better) and ``val_loss`` (breaks ties)
    score: str  # the key of ``validate``'s figures that picks the best epoch
    save_best: Callable[[], None]  # write the kept checkpoint (whenever validation improves)
    load_best: Callable[[], None]  # load it back into ``module``
    fingerprint: dict[str, Any]  # what must match for a saved run to be resumed
    epoch_size: int  # units per epoch, for the progress bar and the throughput
    unit: str = "img"


@dataclass
class FitOutcome:
    """The epochs done so far and the best of them: what `fit` returns and what resume restores."""

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


def prepare_run(out_dir: Path, config: TrainConfig, *, resume: bool, overwrite: bool) -> None:
    """Before any work: reject a bad config, refuse to clobber a run by accident, flush denormals."""
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("epochs and batch size must be at least 1")
    epoch_lr(config, 1)  # rejects an unknown schedule
    if config.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {config.precision!r}: use one of {', '.join(PRECISIONS)}")
    if (out_dir / STATE_NAME).exists() and not (resume or overwrite):
        raise CheckpointExistsError(
            f"{out_dir} already holds a training run: pass --resume to continue it or --overwrite to start again"
        )
    flush_denormals()


def fit(trainee: Trainee, out_dir: Path, config: TrainConfig, *, compute: Compute | None = None,
        resume: bool = False) -> FitOutcome:
    """Run the epochs not yet done, keeping the best validation epoch; leaves its weights loaded, in eval mode.

    ``compute`` (default: plain fp32) says how the training steps run; with ``config.max_seconds`` the loop stops
    before an epoch that, at the pace of the slowest so far, would end past the time box.
    """
    compute = compute or Compute(next(trainee.module.parameters()).device)
    fit_started, slowest = time.perf_counter(), 0.0
    state_path = out_dir / STATE_NAME
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(trainee.module.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                 fused=True)
    outcome = FitOutcome()
    if resume and state_path.exists():
        outcome = _restore(state_path, trainee, optimizer, generator)
    out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(len(outcome.history) + 1, config.epochs + 1):
        if config.max_seconds is not None and slowest and time.perf_counter() - fit_started + slowest > config.max_seconds:
            break
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, epoch)
        started = time.perf_counter()
        with tqdm(total=trainee.epoch_size, desc=f"epoch {epoch}/{config.epochs}", unit=trainee.unit, leave=False,
                  disable=None if config.progress else True) as bar:
            row: dict[str, float] = {"epoch": epoch, **train_epoch(trainee, optimizer, generator, bar, compute)}
        seconds = time.perf_counter() - started
        trainee.module.eval()
        row.update(trainee.validate())
        row[f"{trainee.unit}s_per_second"] = trainee.epoch_size / seconds
        row["seconds"] = seconds
        slowest = max(slowest, time.perf_counter() - started)  # the epoch and its validation
        improved = outcome.improves(row[trainee.score], row["val_loss"])
        if improved:
            outcome.best_epoch, outcome.best_score, outcome.best_tiebreak = epoch, row[trainee.score], row["val_loss"]
            trainee.save_best()
        outcome.history.append(row)
        if config.progress:
            tqdm.write(f"epoch {epoch:3d}/{config.epochs}  {_format(row)}{'  (best)' if improved else ''}")
        _save_state(state_path, trainee, optimizer, generator, outcome)
    trainee.load_best()
    trainee.module.eval()
    return outcome


def train_epoch(trainee: Trainee, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                bar: tqdm, compute: Compute) -> dict[str, float]:
    """One pass over the batches: ``train_loss`` and each of the steps' counts, per unit."""
    trainee.module.train()
    loss_sum = torch.zeros((), device=next(trainee.module.parameters()).device)
    counts: dict[str, torch.Tensor] = {}
    seen = 0

    def per_unit() -> dict[str, float]:
        return {"loss": loss_sum.item() / seen, **{key: count.item() / seen for key, count in counts.items()}}

    for number, batch in enumerate(trainee.batches(generator), 1):
        with compute.autocast():
            step = trainee.step(*batch)
        optimizer.zero_grad(set_to_none=True)
        step.loss.backward()
        optimizer.step()
        loss_sum += step.loss.detach() * step.size
        for key, count in step.counts.items():
            counts[key] = counts.get(key, 0) + count
        seen += step.size
        bar.update(step.size)
        if number % SHOW_EVERY == 0:
            bar.set_postfix({key: f"{value:.4g}" for key, value in per_unit().items()}, refresh=False)
    return {f"train_{key}": value for key, value in per_unit().items()}


def finish_run(out_dir: Path, title: str, outcome: FitOutcome, test: dict[str, Any],
               config: TrainConfig) -> TrainResult:
    """The run's result, with the kept epoch's ``test`` scores; written as metrics.json, report.md and curves.png."""
    result = TrainResult(out_dir=out_dir, title=title, best_epoch=outcome.best_epoch, best_score=outcome.best_score,
                         test=test, history=outcome.history, config=asdict(config))
    write_training_report(result)
    return result


def _restore(state_path: Path, trainee: Trainee, optimizer: torch.optim.Optimizer,
             generator: torch.Generator) -> FitOutcome:
    """The saved run's progress, after checking that it is this training's; weights, Adam and stream restored."""
    state = torch.load(state_path, weights_only=True, map_location="cpu")
    for key, value in trainee.fingerprint.items():
        if state["fingerprint"].get(key) != value:
            raise ValueError(
                f"cannot resume from {state_path}: it was trained with {key}={state['fingerprint'].get(key)!r}, "
                f"not {value!r}; use another --out folder or --overwrite"
            )
    trainee.module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return FitOutcome(state["history"], state["best_epoch"], state["best_score"], state["best_tiebreak"])


def _save_state(state_path: Path, trainee: Trainee, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                outcome: FitOutcome) -> None:
    """Everything a resume needs, replaced atomically so that an interrupted write leaves the last epoch's."""
    tmp = state_path.with_suffix(".tmp")
    torch.save(
        {
            "fingerprint": trainee.fingerprint,
            "module": trainee.module.state_dict(),
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


def _format(row: dict[str, float]) -> str:
    parts = []
    for key, value in row.items():
        if key in ("epoch", "seconds"):
            continue
        if key.endswith("s_per_second"):
            parts.append(f"{value:,.0f} {key.removesuffix('s_per_second')}/s")
            continue
        label = key.replace("_accuracy", "").replace("train_", "train ").replace("val_", "val ").replace("_", " ")
        parts.append(f"{label} {value:.2%}" if "accuracy" in key else f"{label} {value:.4g}")
    return "  ".join(parts)
