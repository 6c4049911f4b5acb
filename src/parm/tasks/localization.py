"""Object localization: F regresses one box ``[x_min, y_min, x_max, y_max]`` in coordinates normalised to the
image (the paper's CUB-200 task), trained with the smooth L1 loss and judged by the mean intersection over union.

The default answer is the training split's mean box, the best a frontend can say without looking.
"""

from __future__ import annotations

import torch
from torch import nn

from parm.tasks.base import Task

BOX_OUTPUTS = ("x_min", "y_min", "x_max", "y_max")
HIT_IOU = 0.5  # the usual threshold of a correct detection


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two (N, 4) box tensors; a box whose corners are swapped has no area."""
    width = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    height = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    intersection = width * height

    def area(box: torch.Tensor) -> torch.Tensor:
        return (box[:, 2] - box[:, 0]).clamp(min=0) * (box[:, 3] - box[:, 1]).clamp(min=0)

    union = area(a) + area(b) - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1e-12), torch.zeros_like(union))


class Localization(Task):
    name = "localization"
    metric = "mean_iou"
    metric_label = "mean IoU"
    percent = False

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.smooth_l1_loss(outputs, targets, beta=0.05)

    def per_sample(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return box_iou(outputs.float(), targets.float())

    def measures(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        if len(targets) == 0:
            return {"mean_iou": float("nan"), "iou_at_least_0.5": float("nan")}
        iou = self.per_sample(outputs, targets)
        return {"mean_iou": iou.mean().item(), "iou_at_least_0.5": (iou >= HIT_IOU).float().mean().item()}

    def agreement(self, outputs: torch.Tensor, reference: torch.Tensor) -> float:
        return (box_iou(outputs.float(), reference.float()) >= HIT_IOU).float().mean().item()

    def default_output(self, train_targets: torch.Tensor, num_outputs: int) -> torch.Tensor:
        return train_targets.float().mean(0)
