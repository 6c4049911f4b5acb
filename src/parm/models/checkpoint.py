"""Safe checkpoints: weights in safetensors, metadata in a small JSON file beside them.

Loading never unpickles anything: safetensors holds raw tensors only, and the JSON names the
model to rebuild from the registry (or the caller passes the module to fill).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import nn

from parm import __version__

WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is: which model, for which inputs and outputs (classes, or a regression's values), trained
    on what data for which task, and the task's default answer (None in cards written before tasks: class 0)."""

    model: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    dataset: str
    split_seed: int
    preprocess: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    parm_version: str = __version__
    task: str = "classification"
    default_output: tuple[float, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        data = json.loads(text)
        data["input_shape"] = tuple(data["input_shape"])
        data["classes"] = tuple(data["classes"])
        if data.get("default_output") is not None:
            data["default_output"] = tuple(data["default_output"])
        return cls(**data)


def weights_path(path: str | Path) -> Path:
    """The weights file of a checkpoint given as a folder or as the ``.safetensors`` file itself."""
    path = Path(path)
    return path / WEIGHTS_NAME if path.is_dir() or not path.suffix else path


def save_checkpoint(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write ``model``'s weights and ``card``; ``path`` is a folder or a ``.safetensors`` file."""
    weights = weights_path(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(weights))
    weights.with_suffix(".json").write_text(card.to_json())
    return weights


def load_card(path: str | Path) -> ModelCard:
    """The metadata of a checkpoint, without touching its weights."""
    meta = weights_path(path).with_suffix(".json")
    try:
        return ModelCard.from_json(meta.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint metadata at {meta}: train one with `parm train-base`") from None


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> tuple[nn.Module, ModelCard]:
    """Rebuild the checkpoint's model (or fill the given ``model``) and load its weights."""
    from parm.models.registry import build_model

    card = load_card(path)
    if model is None:
        model = build_model(card.model, card.input_shape, card.num_classes)
    load_model(model, str(weights_path(path)), strict=True)
    return model.eval(), card
