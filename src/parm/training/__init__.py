"""Training: base models F, parity models and learned codes, all on one epoch loop (`loop.fit`)."""

from parm.training.base import BaseTrainConfig, train_base
from parm.training.loop import CheckpointExistsError, TrainConfig
from parm.training.report import TrainResult

__all__ = [
    "BaseTrainConfig",
    "CheckpointExistsError",
    "TrainConfig",
    "TrainResult",
    "train_base",
]
