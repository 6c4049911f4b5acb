"""Human-readable views of a training run: a Markdown table and a PNG of its learning curves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parm.training.base import TrainResult

REPORT_NAME = "report.md"
CURVES_NAME = "curves.png"


def training_table(result: TrainResult) -> str:
    """The run as Markdown: a summary line, then one row per epoch."""
    lines = [
        f"# {result.model} on {result.dataset}",
        "",
        f"Test accuracy {result.test_accuracy:.2%} (top-5 {result.test_top5_accuracy:.2%}) "
        f"at the best validation epoch {result.best_epoch} ({result.best_val_accuracy:.2%}).",
        "",
        "| epoch | train loss | train acc | val acc | seconds |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result.history:
        mark = " **best**" if row["epoch"] == result.best_epoch else ""
        lines.append(
            f"| {row['epoch']}{mark} | {row['train_loss']:.4f} | {row['train_accuracy']:.2%} "
            f"| {row['val_accuracy']:.2%} | {row['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(result: TrainResult) -> None:
    """Training loss and train/validation accuracy against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in result.history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [row["train_loss"] for row in result.history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_acc.plot(epochs, [100 * row["train_accuracy"] for row in result.history], marker="o", label="train")
    ax_acc.plot(epochs, [100 * row["val_accuracy"] for row in result.history], marker="o", label="validation")
    ax_acc.axvline(result.best_epoch, color="grey", linestyle=":", label=f"best epoch ({result.best_epoch})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{result.model} on {result.dataset}")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(result.out_dir / CURVES_NAME, dpi=120)
    plt.close(fig)


def write_training_report(result: TrainResult) -> None:
    (result.out_dir / REPORT_NAME).write_text(training_table(result))
    plot_curves(result)
