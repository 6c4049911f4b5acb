"""What an inference task is to parm: what F's output vector means, how F is trained, how outputs are scored,
and what a frontend answers when nothing else arrives in time.

Coding never looks inside outputs (it sums, subtracts and interpolates vectors), so a task is all that
separates a classifier from a box regressor: training, `parm evaluate`, serving's default answer and the replay
report all ask the dataset's task, and a user adds one with `register_task`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Task(ABC):
    """One kind of inference: its loss for F, its measures (the first is the headline: A_a, A_d, A_o) and its
    default prediction."""

    name: str
    metric: str  # the headline measure's key in `measures`, e.g. "accuracy" or "mean_iou"
    metric_label: str  # the headline measure in words, for tables and plots
    percent: bool  # whether the headline reads as a percentage

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The base model's training loss on a batch: outputs (B, m), targets as the dataset stores them."""

    @abstractmethod
    def per_sample(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The headline measure of each row (N,): whether it is right, or its box's IoU; `metric` is their mean."""

    @abstractmethod
    def measures(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Every measure of a batch of outputs against their targets, the headline (`metric`) first."""

    @abstractmethod
    def agreement(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        """How often ``outputs`` give the same answer as F's own ``reference`` outputs (rebuilt against F)."""

    @abstractmethod
    def default_output(self, train_targets: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """The output vector (m,) answered when neither a prediction nor a reconstruction arrives in time."""

    def score(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        """The headline measure alone."""
        return self.measures(outputs, targets)[self.metric]

    def format(self, value: float) -> str:
        """The headline measure as a table shows it."""
        return f"{100 * value:.2f}%" if self.percent else f"{value:.3f}"


TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Make ``task`` known by its name (datasets and checkpoints name their task); returns it."""
    if not getattr(task, "name", None):
        raise ValueError("a task needs a name")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(TASKS)}, or register it with "
                         "parm.tasks.register_task") from None
