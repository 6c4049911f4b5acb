"""Degraded-mode results for people: a Markdown table and the paper's three plots (Figs. 8, 9, 11)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from parm.evaluation.degraded import OVERALL_FRACTIONS
from parm.evaluation.runs import EvaluatedRun
from parm.tasks import get_task

MEASURE_LABELS = {"top5_accuracy": "top-5", "iou_at_least_0.5": "IoU >= 0.5"}


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _scale(runs: Sequence[EvaluatedRun]) -> tuple[float, str]:
    """How the plots draw the runs' headline measure: times 100 for a percentage, and its axis label."""
    task = get_task(runs[0].evaluation.task)
    return (100.0, f"{task.metric_label} (%)") if task.percent else (1.0, task.metric_label)


def results_table(runs: Sequence[EvaluatedRun]) -> str:
    """One row per run, in its task's headline measure (accuracy, mean IoU): A_a, A_d per number of lost originals,
    A_d in the task's second measure (top-5, IoU >= 0.5), agreement with F, the default baseline and A_o(10%)."""
    most_lost = max(max(s.lost for s in run.evaluation.by_lost) for run in runs)
    lost_cols = [f"A_d, {n} lost" for n in range(1, most_lost + 1)]
    header = ["base model", "dataset", "measure", "code", "k", "r", "A_a", *lost_cols, "A_d, second measure",
              "agrees with F", "default baseline", "A_o(f=0.1)", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        ev = run.evaluation
        task, show = get_task(ev.task), get_task(ev.task).format
        per_lost = {s.lost: s.accuracy for s in ev.by_lost}
        second = next((name for name in ev.degraded_measures if name != ev.metric), None)
        cells = [run.base_model, run.dataset, task.metric_label, run.code_name, str(run.code["k"]),
                 str(run.code.get("r", 1)), show(ev.available_accuracy),
                 *(show(per_lost[n]) if n in per_lost else "—" for n in range(1, most_lost + 1)),
                 f"{_pct(ev.degraded_measures[second])} ({MEASURE_LABELS.get(second, second)})" if second else "—",
                 _pct(ev.agreement), show(ev.default_accuracy), show(ev.overall_accuracy(0.1)), f"`{run.run}`"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@contextmanager
def _axes(path: Path, size: tuple[float, float] = (5.5, 3.8), **legend: Any) -> Iterator[Any]:
    """One set of axes, saved to ``path`` with its legend when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.legend(**legend)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def plot_accuracy_bars(runs: Sequence[EvaluatedRun], path: Path) -> None:
    """Fig. 8: A_a beside A_d for each run, with the default-prediction baseline."""
    with _axes(path, (max(5, 1.6 * len(runs) + 2), 4.2), loc="upper center", ncol=3) as ax:
        _draw_bars(ax, runs)


def _draw_bars(ax: Any, runs: Sequence[EvaluatedRun]) -> None:
    width, (scale, label) = 0.38, _scale(runs)
    for i, run in enumerate(runs):
        ev = run.evaluation
        ax.bar(i - width / 2, scale * ev.available_accuracy, width, color="tab:blue", label="A_a (available)" if i == 0 else None)
        ax.bar(i + width / 2, scale * ev.degraded_accuracy, width, color="tab:orange", label="A_d (degraded)" if i == 0 else None)
        for offset, value in ((-width / 2, ev.available_accuracy), (width / 2, ev.degraded_accuracy)):
            ax.text(i + offset, scale * (value + 0.01), f"{scale * value:.{1 if scale > 1 else 2}f}", ha="center", fontsize=8)
        ax.hlines(scale * ev.default_accuracy, i - 0.45, i + 0.45, colors="grey", linestyles="--",
                  label="default prediction" if i == 0 else None)
    ax.set_xticks(range(len(runs)), [run.label for run in runs], rotation=15)
    ax.set(ylabel=label, ylim=(0, 1.18 * scale), yticks=[scale * t / 5 for t in range(6)],
           title=f"{runs[0].base_model} on {runs[0].dataset}")


def plot_overall(runs: Sequence[EvaluatedRun], path: Path) -> None:
    """Fig. 9: the overall A_o against the fraction f of predictions that must be rebuilt."""
    fractions, (scale, label) = [100 * f for f in OVERALL_FRACTIONS], _scale(runs)
    with _axes(path) as ax:
        for run in runs:
            ax.plot(fractions, [scale * run.evaluation.overall_accuracy(f) for f in OVERALL_FRACTIONS], label=run.label)
        ax.axhline(scale * runs[0].evaluation.available_accuracy, color="black", linestyle=":", label="A_a")
        ax.set(xlabel="unavailable predictions f (%)", ylabel=f"overall A_o, {label}", title="A_o = (1-f) A_a + f A_d")


def plot_degraded_vs_k(runs: Sequence[EvaluatedRun], path: Path) -> None:
    """Fig. 11: A_d (one lost original) against k per code, with the default-prediction baseline."""
    series: dict[str, list[tuple[int, float]]] = {}
    for run in runs:
        name = f"{run.code_name} r={run.code.get('r', 1)}"
        series.setdefault(name, []).append((run.code["k"], run.evaluation.by_lost[0].accuracy))
    scale, label = _scale(runs)
    with _axes(path) as ax:
        for name, points in series.items():
            ks, accuracies = zip(*sorted(points))
            ax.plot(ks, [scale * a for a in accuracies], marker="o", label=name)
        ax.axhline(scale * runs[0].evaluation.available_accuracy, color="tab:blue", linestyle=":", label="A_a")
        ax.axhline(scale * runs[0].evaluation.default_accuracy, color="grey", linestyle="--", label="default prediction")
        ax.set(xlabel="k", ylabel=f"A_d, one lost original: {label}", ylim=(0, scale), title="degraded mode against k")
        ax.set_xticks(sorted({run.code["k"] for run in runs}))


def write_evaluation_report(runs: Sequence[EvaluatedRun], out_dir: Path) -> list[Path]:
    """evaluation.json, evaluation.md and the three plots; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in ("evaluation.json", "evaluation.md", "accuracy.png", "overall.png", "degraded_vs_k.png")]
    paths[0].write_text(json.dumps([run.to_dict() for run in runs], indent=2) + "\n")
    paths[1].write_text("# Degraded-mode evaluation\n\n" + results_table(runs))
    plot_accuracy_bars(runs, paths[2])
    plot_overall(runs, paths[3])
    plot_degraded_vs_k(runs, paths[4])
    return paths
