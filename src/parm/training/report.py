"""What a finished training run leaves behind: metrics.json, a Markdown table and its learning curves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parm.tasks import TASKS

METRICS_NAME = "metrics.json"
REPORT_NAME = "report.md"
CURVES_NAME = "curves.png"


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


def score_task(key: str) -> str | None:
    """The task whose headline measure a history key holds (``val_accuracy``, ``val_degraded_mean_iou``), if any."""
    return next((task.name for task in TASKS.values() if key.endswith(task.metric)), None)


def _cell(key: str, value: float) -> str:
    if "accuracy" in key:
        return f"{value:.2%}"
    if score_task(key):
        return f"{value:.3f}"
    if key.endswith("per_second"):
        return f"{value:,.0f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def training_table(result: TrainResult) -> str:
    """The run as Markdown: test scores of the kept epoch, then one row per epoch."""
    scores = ", ".join(f"{key} {_cell(key, value)}" for key, value in result.test.items() if isinstance(value, float))
    keys = [key for key in result.history[0] if key != "epoch"] if result.history else []
    lines = [
        f"# {result.title}",
        "",
        f"Test ({scores}) at the best validation epoch {result.best_epoch}.",
        "",
        "| epoch | " + " | ".join(keys) + " |",
        "|---:|" + "---:|" * len(keys),
    ]
    for row in result.history:
        mark = " **best**" if row["epoch"] == result.best_epoch else ""
        lines.append(f"| {row['epoch']}{mark} | " + " | ".join(_cell(k, row[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(result: TrainResult) -> None:
    """Losses, and the task's scores (accuracies in percent), against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in result.history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in (k for k in result.history[0] if "loss" in k):
        ax_loss.plot(epochs, [row[key] for row in result.history], marker="o", label=key)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    scores = [k for k in result.history[0] if score_task(k)]
    task = TASKS[score_task(scores[0])] if scores else TASKS["classification"]
    scale = 100 if task.percent else 1
    for key in scores:
        ax_acc.plot(epochs, [scale * row[key] for row in result.history], marker="o", label=key)
    ax_acc.axvline(result.best_epoch, color="grey", linestyle=":", label=f"best epoch ({result.best_epoch})")
    ax_acc.set(xlabel="epoch", ylabel=task.metric_label + (" (%)" if task.percent else ""), title=result.title)
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(result.out_dir / CURVES_NAME, dpi=120)
    plt.close(fig)


def write_training_report(result: TrainResult) -> None:
    """metrics.json (the result as JSON), report.md and curves.png in the run folder."""
    (result.out_dir / METRICS_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    (result.out_dir / REPORT_NAME).write_text(training_table(result))
    if result.history:
        plot_curves(result)
