"""Training: base models F now; parity models and learned codes build on the same runtime."""

from parm.training.base import CheckpointExistsError, TrainConfig, TrainResult, train_base
from parm.training.runtime import resolve_device, seed_everything

__all__ = ["CheckpointExistsError", "TrainConfig", "TrainResult", "resolve_device", "seed_everything", "train_base"]
