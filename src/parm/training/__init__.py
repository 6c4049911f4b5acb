"""Training: base models F, and (on the same loop) parity models."""

from parm.training.base import BaseTrainConfig, train_base
from parm.training.loop import CheckpointExistsError, TrainConfig, TrainResult
from parm.training.runtime import resolve_device, seed_everything

__all__ = [
    "BaseTrainConfig",
    "CheckpointExistsError",
    "TrainConfig",
    "TrainResult",
    "resolve_device",
    "seed_everything",
    "train_base",
]
