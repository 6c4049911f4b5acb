"""Judging models: batched prediction and accuracy (degraded-mode evaluation builds on these)."""

from parm.evaluation.predict import predict_logits, top_k_accuracy

__all__ = ["predict_logits", "top_k_accuracy"]
