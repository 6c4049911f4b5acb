"""Judging models and codes: batched prediction, accuracy, and degraded-mode accuracy."""

from parm.evaluation.degraded import (
    DegradedEvaluation,
    ErasureScore,
    evaluate_code,
    group_indices,
    most_common_class,
    parity_outputs,
    score_reconstructions,
)
from parm.evaluation.predict import predict_logits, top_k_accuracy

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
