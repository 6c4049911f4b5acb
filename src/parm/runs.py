"""Run folders: what a trained run is on disk, written by training and read by everything else.

Five kinds of run, one typed object each:

- `BaseRun`: a base model F (``model.safetensors`` + ``model.json``), from ``parm train-base``.
- `ParityRun`: a code with trained parity models (``code.json``, ``parity-J.safetensors`` + ``.json``),
  from ``parm train-parity``.
- `CoderRun`: a learned encoder and decoder (``code.json``, ``code.safetensors``), from ``parm train-coder``;
  F itself runs on its parities. `JointRun`: the same with parity models learned with them (``parity-J.safetensors``),
  from ``parm train-coder --joint``.
- `TrainingFreeRun`: a code with nothing to train (the Berrut code): ``code.json`` alone, from ``parm make-run``;
  F itself runs on its coded queries.

A coded run's ``code.json`` names the base checkpoint it belongs to. Training writes through these
objects; evaluation, serving and the benchmarks read through them, so file names live here alone.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

from parm.codes import TRAINING_FREE_CODES, Code, LearnedCode, code_from_spec
from parm.data import Dataset, load_dataset
from parm.data.cache import file_sha256
from parm.models import ModelCard, load_card, load_checkpoint
from parm.models.checkpoint import WEIGHTS_NAME, save_checkpoint, weights_path

CODE_NAME = "code.json"
CODE_WEIGHTS = "code.safetensors"


@dataclass(frozen=True)
class BaseRun:
    """A base model checkpoint: a folder holding ``model.safetensors``, or the ``.safetensors`` file itself."""

    path: Path

    @property
    def base(self) -> BaseRun:
        """The base model a run serves: for a base run, itself (as for a coded run, the one it protects)."""
        return self

    @property
    def weights(self) -> Path:
        return weights_path(self.path)

    def card(self) -> ModelCard:
        return load_card(self.path)

    def load(self, model: nn.Module | None = None) -> tuple[nn.Module, ModelCard]:
        """F, rebuilt from its card (or ``model`` filled), in eval mode."""
        return load_checkpoint(self.path, model)

    def save(self, model: nn.Module, card: ModelCard) -> Path:
        return save_checkpoint(model, card, self.weights)

    def dataset(self, *, data_dir: str | Path | None = None, cache_dir: Path | None = None) -> Dataset:
        """The dataset, with the same splits, that F was trained on."""
        card = self.card()
        recorded = card.extra.get("dataset_args") or {"name": card.dataset}
        return load_dataset(recorded["name"], data_dir=data_dir or recorded.get("data_dir"), cache_dir=cache_dir,
                            seed=card.split_seed)


@dataclass(frozen=True)
class CodedRun(ABC):
    """A code trained for a base model: its folder, the code's spec and the base run it protects."""

    path: Path
    spec: dict[str, Any]
    base: BaseRun

    @property
    def k(self) -> int:
        return int(self.spec["k"])

    @property
    def r(self) -> int:
        return int(self.spec.get("r", 1))

    def load_code(self) -> Code:
        """The code, ready to encode and decode."""
        return code_from_spec(self.spec)

    @abstractmethod
    def parity_checkpoint(self, index: int) -> Path:
        """The checkpoint the instances of parity ``index`` run."""

    def load_parity_models(self) -> list[nn.Module]:
        """The r models that run on the parities, in eval mode."""
        return [load_checkpoint(self.parity_checkpoint(j))[0] for j in range(self.r)]

    @classmethod
    def create(cls, path: str | Path, code: Code, base: BaseRun, **extra: Any) -> CodedRun:
        """Start a run folder: write ``code.json`` (the code, the base it belongs to and ``extra``)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"code": code.spec(), "base": str(base.weights.resolve()), **extra}
        (path / CODE_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        return cls(path, code.spec(), BaseRun(Path(meta["base"])))


class _OwnParityModels:
    """Parity j's instances run the run's own ``parity-j.safetensors`` (trained parity models)."""

    path: Path
    r: int

    def parity_checkpoint(self, index: int) -> Path:
        if not 0 <= index < self.r:
            raise ValueError(f"{self.path} has parities 0..{self.r - 1}, not {index}")
        return self.path / f"parity-{index}.safetensors"

    def save_parity_model(self, index: int, model: nn.Module, card: ModelCard) -> Path:
        return save_checkpoint(model, card, self.parity_checkpoint(index))


@dataclass(frozen=True)
class ParityRun(_OwnParityModels, CodedRun):
    """Parity models of a code: parity j's instances run ``parity-j.safetensors``."""


@dataclass(frozen=True)
class CoderRun(CodedRun):
    """A learned encoder and decoder (``code.safetensors``); its parity instances run F itself."""

    @property
    def code_weights(self) -> Path:
        return self.path / CODE_WEIGHTS

    def load_code(self) -> Code:
        code = super().load_code()
        load_model(code, str(self.code_weights))
        return code.eval()

    def save_code(self, code: nn.Module) -> None:
        save_model(code, str(self.code_weights))

    def parity_checkpoint(self, index: int) -> Path:
        return self.base.weights


@dataclass(frozen=True)
class JointRun(_OwnParityModels, CoderRun):
    """Encoder, parity models and decoder learned together (paper section VI-C, ``parm train-coder --joint``):
    ``code.safetensors`` for the encoder and decoder, and parity j's instances run ``parity-j.safetensors``."""


@dataclass(frozen=True)
class TrainingFreeRun(CodedRun):
    """A code with nothing to train (``code.json`` alone): its parity instances run F itself on the coded queries."""

    def parity_checkpoint(self, index: int) -> Path:
        return self.base.weights


def write_training_free_run(path: str | Path, code: Code, base: BaseRun, *, overwrite: bool = False) -> TrainingFreeRun:
    """A run folder for a code with nothing to train: ``code.json`` with the code, ``base`` and its hash, its dataset.

    Writing the same run again is a no-op; a folder holding another run is refused unless ``overwrite``.
    """
    if code.name not in TRAINING_FREE_CODES:
        raise ValueError(f"the {code.name} code needs training: use `parm train-parity` or `parm train-coder`")
    path = Path(path)
    meta = {"code": code.spec(), "base": str(base.weights.resolve())}
    if (path / CODE_NAME).is_file() and not overwrite:
        held = json.loads((path / CODE_NAME).read_text())
        if {key: held.get(key) for key in meta} != meta:
            raise ValueError(f"{path} holds another run ({held.get('code', {}).get('name')} code, base "
                             f"{held.get('base')}): pick another --out, or pass --overwrite to replace its {CODE_NAME}")
    return TrainingFreeRun.create(path, code, base, dataset=base.card().dataset,  # type: ignore[return-value]
                                  base_sha256=file_sha256(base.weights))


Run = BaseRun | ParityRun | CoderRun | JointRun | TrainingFreeRun
MAKE_ONE = "train one with `parm train-parity` or `parm train-coder`, or write one with `parm make-run`"


def open_run(path: str | Path) -> Run:
    """The run at ``path``: a coded run folder (with ``code.json``) or a base checkpoint."""
    path = _existing(path, "train a run first (`parm train-base`, `parm train-parity` or `parm train-coder`), "
                           "or write one with `parm make-run`")
    if (path / CODE_NAME).is_file():
        return open_coded_run(path)
    if weights_path(path).is_file():
        return BaseRun(path)
    raise FileNotFoundError(
        f"{path} is neither a coded run folder (with {CODE_NAME}) nor a checkpoint (with {WEIGHTS_NAME})"
    )


def _existing(path: str | Path, fix: str) -> Path:
    """``path``, which must exist: a mistyped path is then reported as such, not as a folder of the wrong kind."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: check the path, or {fix}")
    return path


def open_coded_run(path: str | Path) -> ParityRun | CoderRun | JointRun | TrainingFreeRun:
    """The coded run at ``path``, which must hold a ``code.json``."""
    path = _existing(path, MAKE_ONE)
    if not (path / CODE_NAME).is_file():
        raise FileNotFoundError(f"{path} is not a coded run (no {CODE_NAME}): {MAKE_ONE}")
    meta = json.loads((path / CODE_NAME).read_text())
    name = meta["code"]["name"]
    if name == LearnedCode.name:
        kind: type[CodedRun] = JointRun if meta.get("joint") else CoderRun
    else:
        kind = TrainingFreeRun if name in TRAINING_FREE_CODES else ParityRun
    return kind(path, meta["code"], BaseRun(Path(meta["base"])))
