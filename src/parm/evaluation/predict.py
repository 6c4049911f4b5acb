"""Batched inference over a split."""

from __future__ import annotations

import torch
from torch import nn

from parm.data.dataset import Preprocess, Split

GPU_BATCH = 8192  # evaluation batches on a GPU: large enough to fill it, small enough for any model of the zoo


def eval_batch(device: torch.device | str, cpu_batch: int) -> int:
    """Samples (or groups) per evaluation batch: ``cpu_batch`` on the CPU, `GPU_BATCH` elsewhere."""
    return cpu_batch if torch.device(device).type == "cpu" else GPU_BATCH


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    split: Split,
    preprocess: Preprocess,
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The model's raw outputs for every sample of ``split``, in order, on the CPU (``batch_size`` None: 1,024
    samples per batch on the CPU, `GPU_BATCH` on a GPU)."""
    batch_size = batch_size or eval_batch(device, 1024)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(split), batch_size):
        x = preprocess(split.x[start : start + batch_size].to(device))
        outputs.append(model(x).float().cpu())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)
