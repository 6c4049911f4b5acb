"""Training parity models (paper section V): F_P learns to output what the code's decoder needs.

For a code with parities P_j = encode(X_1..X_k)_j, parity model j is trained (MSE by default)
towards the code's target, e.g. F(X_1) + ... + F(X_k) for the sum code. The base model F is frozen
and its outputs never change, so they are computed once per split and reused every epoch: an epoch
costs only the parity models' own forward and backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from parm.codes import Code
from parm.data.dataset import Dataset
from parm.models import ModelCard, build_model, load_checkpoint, save_checkpoint
from parm.models.init import paper_init
from parm.training.coded import BaseModel, CodedTask, CodedTrainConfig, train_coded
from parm.training.loop import TrainResult

INITS = ("base", "paper", "default")
LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss, "smooth-l1": nn.functional.smooth_l1_loss}


@dataclass
class ParityTrainConfig(CodedTrainConfig):
    """Parity-model training: the paper's MSE, Adam 1e-3, weight decay 1e-5 and 64 groups per batch."""

    loss: str = "mse"
    init: str = "base"  # start from F's weights ("base"), the paper's scheme ("paper") or torch's ("default")


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


class ParityTask(CodedTask):
    """The r parity models of one code, trained on groups of k training samples drawn without replacement."""

    def __init__(self, models: nn.ModuleList, cards: list[ModelCard], code: Code, dataset: Dataset, base: BaseModel,
                 config: ParityTrainConfig, device: torch.device) -> None:
        if config.loss not in LOSSES:
            raise ValueError(f"unknown loss {config.loss!r}: use one of {', '.join(LOSSES)}")
        super().__init__(models, code, dataset, base, config, device)
        self.cards = cards

    @property
    def parity_models(self) -> list[nn.Module]:
        return list(self.module)

    def batch_loss(self, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parities = self.code.encode(x)
        targets = self.code.parity_targets(self.train_outputs[index])
        predicted = torch.stack([model(parities[:, j]) for j, model in enumerate(self.module)], dim=1)
        return LOSSES[self.config.loss](predicted, targets)

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

    Writes ``parity-J.safetensors`` + ``.json`` per parity model besides the files of every coded
    run (`parm.training.coded.train_coded`).
    """
    config = config or ParityTrainConfig()

    def make_task(base: BaseModel, device: torch.device) -> ParityTask:
        models = build_parity_models(base.model, base.card, code.r, architecture=architecture, init=config.init)
        extra = {"role": "parity", "code": code.spec(), "base": str(base.weights), "dataset_args": dataset.load_args}
        cards = [ModelCard(architecture or base.card.model, base.card.input_shape, base.card.classes, dataset.name,
                           dataset.split_seed, base.card.preprocess, {**extra, "index": j}) for j in range(code.r)]
        return ParityTask(models, cards, code, dataset, base, config, device)

    title = f"{code.name} code (k={code.k}, r={code.r}) parity models"
    return train_coded(base_path, dataset, code, out_dir, config=config, make_task=make_task, title=title,
                       resume=resume, overwrite=overwrite)
