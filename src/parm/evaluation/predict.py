"""Batched inference over a split and the accuracy measures built on it."""

from __future__ import annotations

import torch
from torch import nn

from parm.data.dataset import Preprocess, Split


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    split: Split,
    preprocess: Preprocess,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The model's raw outputs for every sample of ``split``, in order, on the CPU."""
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(split), batch_size):
        x = preprocess(split.x[start : start + batch_size].to(device))
        outputs.append(model(x).float().cpu())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> float:
    """Fraction of rows whose label is among the k largest outputs."""
    if len(labels) == 0:
        return float("nan")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels.view(-1, 1)).any(dim=1).float().mean().item()
