"""Judging models and codes: batched prediction and degraded-mode scores, in the task's measures (`parm.tasks`)."""

from parm.evaluation.degraded import (
    DegradedEvaluation,
    ErasureScore,
    evaluate_code,
    group_indices,
    parity_outputs,
    score_reconstructions,
)
from parm.evaluation.predict import predict_logits
from parm.tasks import most_common_class, top_k_accuracy  # the classification task's measures, kept here too

__all__ = [
    "DegradedEvaluation",
    "ErasureScore",
    "evaluate_code",
    "group_indices",
    "most_common_class",
    "parity_outputs",
    "predict_logits",
    "score_reconstructions",
    "top_k_accuracy",
]
