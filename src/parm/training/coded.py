"""What every code-training run shares, whatever it trains (parity models or a learned code).

The base model F is loaded from its checkpoint and frozen; its outputs on every split are computed
once; each epoch cuts the train split into fresh coding groups of k; validation and the final test
score are the degraded-mode evaluation of `parm.evaluation`, so a run is judged exactly as
``parm evaluate`` judges it later. The trainers (`parm.training.parity`, `parm.training.coder`)
state their own loss and hand it, with these shared parts, to `parm.training.loop.fit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from parm.codes import Code
from parm.data.cache import file_sha256
from parm.data.dataset import Dataset
from parm.evaluation import DegradedEvaluation, evaluate_code, group_indices, predict_logits
from parm.models import ModelCard
from parm.runs import BaseRun, CodedRun
from parm.runtime import Compute, resolve_compute
from parm.training.augment import random_shift
from parm.training.loop import FitOutcome, Step, TrainConfig, Trainee, finish_run, prepare_run
from parm.training.report import TrainResult

Run = TypeVar("Run", bound=CodedRun)
Loss = TypeVar("Loss")


@dataclass
class CodedTrainConfig(TrainConfig):
    """Defaults of the paper for both approaches: Adam 1e-3, weight decay 1e-5, 64 groups per batch."""

    epochs: int = 100
    weight_decay: float = 1e-5
    eval_seed: int = 0  # seed of the validation and test grouping
    shift: int = 0  # shift each training image by up to this many pixels, F's outputs computed on the shifted ones


def choose_loss(losses: Mapping[str, Loss], name: str) -> Loss:
    """The loss called ``name``, refused before any work when it is unknown."""
    if name not in losses:
        raise ValueError(f"unknown loss {name!r}: use one of {', '.join(losses)}")
    return losses[name]


@dataclass
class FrozenBase:
    """The frozen F of a run, with its card, its checkpoint and its outputs on every split."""

    model: nn.Module
    card: ModelCard
    run: BaseRun
    outputs: dict[str, torch.Tensor]


def load_frozen_base(base_path: str | Path, dataset: Dataset, compute: Compute) -> FrozenBase:
    """F from its checkpoint, frozen, with its fp32 outputs on every split (the targets: computed once)."""
    run = BaseRun(Path(base_path))
    model, card = run.load()
    if card.dataset != dataset.name or card.input_shape != dataset.input_shape:
        raise ValueError(
            f"the base model at {base_path} was trained on {card.dataset} {card.input_shape}, "
            f"not {dataset.name} {dataset.input_shape}: pass the matching --dataset or --base"
        )
    compute.place(model).eval().requires_grad_(False)
    outputs = {name: predict_logits(model, getattr(dataset, name), dataset.preprocess, device=compute.device)
               for name in ("train", "val", "test")}
    return FrozenBase(model, card, run, outputs)


class CodedTraining:
    """One code-training run's shared parts: F and its outputs, the epoch's groups, degraded-mode scores.

    Building one starts the run: the config and the folder are checked (no accidental clobbering),
    then F is loaded and frozen, and its outputs computed once.
    """

    def __init__(self, base_path: str | Path, dataset: Dataset, code: Code, out_dir: str | Path,
                 config: CodedTrainConfig, *, resume: bool, overwrite: bool) -> None:
        self.out_dir = Path(out_dir)
        prepare_run(self.out_dir, config, resume=resume, overwrite=overwrite)
        self.code, self.dataset, self.config = code, dataset, config
        self.compute = resolve_compute(config.device, config.precision, config.channels_last)
        self.device = self.compute.device
        self.base = load_frozen_base(base_path, dataset, self.compute)
        self.train_x = dataset.train.x.to(self.device)
        self.train_outputs = self.base.outputs["train"].to(self.device)  # F(X) of every training sample, fixed
        self.train_y = dataset.train.y.to(self.device)
        self.task, self.default_output = dataset.task_definition, dataset.default_output()
        self.fingerprint = {"code": json.dumps(code.spec()), "dataset": dataset.name,
                            "test_checksum": dataset.test.checksum(), "base_sha256": file_sha256(self.base.run.weights)}

    def create_run(self, kind: type[Run], **extra: object) -> Run:
        """The run folder, with its ``code.json``: the code, the base checkpoint and its hash, the dataset, ``extra``."""
        return kind.create(self.out_dir, self.code, self.base.run, dataset=self.dataset.name,
                           base_sha256=self.fingerprint["base_sha256"], **extra)

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """This epoch's batches: group indices (b, k), their preprocessed inputs (b, k, C, H, W) and F's outputs on
        them (b, k, m).

        With ``shift`` the inputs are shifted at random (zero padded, before preprocessing, so that the padding is
        the images' own background) and F runs on them: a small training split then offers the code new groups of
        new images every epoch instead of the same images regrouped (MNIST, docs/RESULTS.md).
        """
        groups = group_indices(len(self.train_x), self.code.k, generator).to(self.device)
        for index in groups.split(self.config.batch_size):
            raw = self.train_x[index.flatten()]
            if not self.config.shift:
                x, outputs = self.dataset.preprocess(raw), self.train_outputs[index]
            else:
                x = self.dataset.preprocess(random_shift(raw, generator, self.config.shift))
                with torch.no_grad():
                    outputs = self.base.model(x).float().view(*index.shape, -1)
            yield index, x.view(*index.shape, *raw.shape[1:]), outputs

    def evaluate(self, split_name: str, parity_models: Sequence[nn.Module]) -> DegradedEvaluation:
        """Degraded-mode scores of the code as it stands on a split's (seeded) groups."""
        split = getattr(self.dataset, split_name)
        groups = group_indices(len(split), self.code.k, self.config.eval_seed)
        return evaluate_code(self.code, parity_models, split, self.dataset.preprocess, self.base.outputs[split_name],
                             groups, task=self.task, default_output=self.default_output, device=self.device)

    def trainee(self, module: nn.Module, step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Step],
                parity_models: Sequence[nn.Module], *, save_best: Callable[[], None],
                load_best: Callable[[], None]) -> Trainee:
        """What `fit` trains: ``module`` by ``step``'s loss on this run's groups, scored by degraded-mode accuracy."""

        def validate() -> dict[str, float]:
            evaluation = self.evaluate("val", parity_models)
            return {"val_loss": evaluation.mse, f"val_degraded_{self.task.metric}": evaluation.degraded_accuracy}

        return Trainee(module=module, batches=self.batches, step=step, validate=validate,
                       score=f"val_degraded_{self.task.metric}",
                       save_best=save_best, load_best=load_best, fingerprint=self.fingerprint,
                       epoch_size=len(self.train_x) // self.code.k, unit="group")

    def finish(self, title: str, outcome: FitOutcome, parity_models: Sequence[nn.Module]) -> TrainResult:
        """Score the kept epoch on test and write the run's metrics.json, report.md and curves.png."""
        return finish_run(self.out_dir, f"{title} for {self.base.card.model} on {self.dataset.name}", outcome,
                          self.evaluate("test", parity_models).to_dict(), self.config)
