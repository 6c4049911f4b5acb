"""Classification: F returns one logit per class, trained with cross-entropy, judged by top-1 accuracy."""

from __future__ import annotations

import torch
from torch import nn

from parm.tasks.base import Task

DEFAULT_LOGIT = 10.0  # the default answer's logit for its class (and minus this for the others): a sure softmax


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Fraction of rows whose label is among the k largest outputs."""
    if len(labels) == 0:
        return float("nan")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels.view(-1, 1)).any(dim=1).float().mean().item()


def most_common_class(labels: torch.Tensor) -> int:
    """The default prediction a frontend without a code would return: the training split's mode."""
    return int(torch.bincount(labels).argmax())


class Classification(Task):
    name = "classification"
    metric = "accuracy"
    metric_label = "accuracy"
    percent = True

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs, targets)

    def per_sample(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.argmax(-1) == targets).float()

    def measures(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {"accuracy": top_k_accuracy(outputs, targets, 1), "top5_accuracy": top_k_accuracy(outputs, targets, 5)}

    def agreement(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        return (outputs.argmax(-1) == reference.argmax(-1)).float().mean().item()

    def default_output(self, train_targets: torch.Tensor, num_outputs: int) -> torch.Tensor:
        return class_output(most_common_class(train_targets), num_outputs)


def class_output(label: int, num_outputs: int) -> torch.Tensor:
    """The logits of a sure prediction of class ``label``."""
    if not 0 <= label < num_outputs:
        raise ValueError(f"the default class must be in 0..{num_outputs - 1}, got {label}")
    output = torch.full((num_outputs,), -DEFAULT_LOGIT)
    output[label] = DEFAULT_LOGIT
    return output
