"""Helpers the benchmark scripts share: the base models they protect, and their Markdown tables."""

from __future__ import annotations

from pathlib import Path

from parm.data import Dataset
from parm.models import build_model
from parm.runtime import seed_everything
from parm.training import BaseTrainConfig, train_base


def ensure_base(dataset: Dataset, model_name: str) -> Path:
    """runs/base/DATASET-MODEL, trained with `parm train-base` defaults unless it is already there."""
    path = Path("runs/base") / f"{dataset.name}-{model_name}"
    if not (path / "model.safetensors").exists():
        seed_everything(0)
        model = build_model(model_name, dataset.input_shape, dataset.num_classes)
        train_base(model, dataset, path, model_name=model_name, config=BaseTrainConfig(progress=False), resume=True)
    return path


def markdown_table(rows: list[dict], columns: dict[str, str]) -> str:
    """``columns`` maps each row key to its header; floats in [0, 1] under an "A_" header print as percentages."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, header in columns.items():
            value = row.get(key, "—")
            if isinstance(value, float):
                value = f"{value:.2%}" if header.startswith("A_") else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"
            cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
