"""The base-model zoo: the networks F whose predictions parm protects, built by name.

Importing the model modules registers them; see :func:`build_model` for user factories.
"""

from . import cnn, lenet, mlp, resnet, vgg  # noqa: F401  (imported to register their models)
from .checkpoint import ModelCard, load_card, load_checkpoint, save_checkpoint, weights_path
from .registry import UnknownModelError, build_model, describe_models, model_names, register_model

__all__ = [
    "ModelCard",
    "UnknownModelError",
    "build_model",
    "describe_models",
    "load_card",
    "load_checkpoint",
    "model_names",
    "register_model",
    "save_checkpoint",
    "weights_path",
]
