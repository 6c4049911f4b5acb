"""Inference tasks: what F's outputs mean, its loss, its measures and its default answer (`Task`).

>>> task = get_task("localization")
>>> task.measures(predicted_boxes, true_boxes)      # {"mean_iou": ..., "iou_at_least_0.5": ...}
"""

from parm.tasks.base import TASKS, Task, get_task, register_task
from parm.tasks.classification import Classification, class_output, most_common_class, top_k_accuracy
from parm.tasks.localization import BOX_OUTPUTS, Localization, box_iou

CLASSIFICATION = register_task(Classification())
LOCALIZATION = register_task(Localization())

__all__ = [
    "BOX_OUTPUTS",
    "CLASSIFICATION",
    "Classification",
    "LOCALIZATION",
    "Localization",
    "TASKS",
    "Task",
    "box_iou",
    "class_output",
    "get_task",
    "most_common_class",
    "register_task",
    "top_k_accuracy",
]
