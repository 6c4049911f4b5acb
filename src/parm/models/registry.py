"""Base models by name, so configs and the CLI can pick the network F that parm protects.

A registered name (``resnet18``) builds a zoo model; a name of the form ``package.module:function``
builds any user ``torch.nn.Module`` factory with the same signature, so the zoo is never a limit.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from torch import nn

InputShape: TypeAlias = tuple[int, int, int]
"""Channels x height x width of one input example."""

Builder: TypeAlias = Callable[[InputShape, int], nn.Module]
"""``build(input_shape, num_classes) -> module`` returning raw logits of shape (N, num_classes)."""


class UnknownModelError(KeyError):
    """A model name is neither registered nor an importable ``module:function`` factory."""

    def __str__(self) -> str:
        # KeyError would show the message as a quoted repr; this one is meant for people.
        return str(self.args[0])


@dataclass(frozen=True)
class _Entry:
    builder: Builder
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, *, description: str) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name``; the builder is returned unchanged."""
    if ":" in name:
        raise ValueError(f"model name {name!r} may not contain ':', which marks module:function names")
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")

    def decorate(builder: Builder) -> Builder:
        _REGISTRY[name] = _Entry(builder, description)
        return builder

    return decorate


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def describe_models() -> dict[str, str]:
    """Registered name -> one-line description, sorted by name."""
    return {name: _REGISTRY[name].description for name in model_names()}


def build_model(name: str, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build model ``name`` (registered, or ``package.module:function``) for the given data shape."""
    shape = _check_input_shape(input_shape)
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    model = _resolve(name)(shape, int(num_classes))
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model factory {name!r} returned {type(model).__name__}, not a torch.nn.Module; "
            "make it return the network itself"
        )
    return model


def _resolve(name: str) -> Builder:
    if ":" in name:
        return _import_factory(name)
    try:
        return _REGISTRY[name].builder
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(model_names())}, "
            "or give a factory as 'package.module:function'"
        ) from None


def _import_factory(name: str) -> Builder:
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError) as exc:  # ValueError: empty or relative module name
        raise UnknownModelError(
            f"cannot import module {module_name!r} for model {name!r} ({exc}); "
            "install it or add its directory to PYTHONPATH"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownModelError(
            f"module {module_name!r} has no callable {attr!r} for model {name!r}; "
            "define a function (input_shape, num_classes) -> torch.nn.Module with that name"
        )
    return factory


def _check_input_shape(input_shape: Sequence[int]) -> InputShape:
    dims = tuple(input_shape) if isinstance(input_shape, Sequence) else ()
    if len(dims) != 3 or not all(_is_int(d) and d > 0 for d in dims):
        raise ValueError(
            f"input_shape must be 3 positive integers (channels, height, width), got {input_shape!r}"
        )
    c, h, w = (int(d) for d in dims)
    return c, h, w


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
