"""In-memory datasets: input tensors with targets, split three ways, plus their preprocessing.

Inputs are (N, C, H, W): uint8 images, scaled per batch by `Preprocess` (which keeps a 70,000-image dataset at
55 MB and lets training move whole batches without per-image transforms), or float32 features such as log-mel
spectrograms, passed through. Targets are int64 class labels (N,) or float32 vectors (N, m), such as boxes; the
dataset's task (`parm.tasks`) says which.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from parm.tasks import Task, get_task


INPUT_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))  # images, or features taken as they are


@dataclass(frozen=True)
class LabeledArrays:
    """Inputs ``x`` (uint8 or float32, N x C x H x W) with targets ``y``: int64 labels (N,) or float32 (N, m)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype not in INPUT_DTYPES or self.x.ndim != 4:
            raise ValueError(f"inputs must be uint8 or float32 N x C x H x W, got {self.x.dtype} {self.x.shape}")
        labels = self.y.ndim == 1 and self.y.dtype == np.int64
        vectors = self.y.ndim == 2 and self.y.dtype == np.float32
        if not (labels or vectors) or len(self.y) != len(self.x):
            raise ValueError(f"targets must be {len(self.x)} int64 labels or {len(self.x)} float32 rows, "
                             f"got {self.y.dtype} {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> LabeledArrays:
        return LabeledArrays(self.x[index], self.y[index])


@dataclass(frozen=True)
class SourceData:
    """What a dataset source yields before splitting.

    ``test`` is set when the source carries its own test set (IDX t10k files, CIFAR test batch,
    an image folder with ``test/``); otherwise a test split is cut from ``train`` (stratified by class for
    classification). ``classes`` names the outputs: the classes, or a regression's values (a box's coordinates).
    """

    train: LabeledArrays
    classes: tuple[str, ...]
    test: LabeledArrays | None = None
    dropped_rows: int = 0
    description: str = ""
    task: str = "classification"  # a name of `parm.tasks`


@dataclass(frozen=True)
class Split:
    """One split as torch tensors: ``x`` uint8 or float32 (N, C, H, W), ``y`` int64 (N,) or float32 (N, m)."""

    x: torch.Tensor
    y: torch.Tensor

    @classmethod
    def from_arrays(cls, arrays: LabeledArrays) -> Split:
        return cls(torch.from_numpy(np.ascontiguousarray(arrays.x)), torch.from_numpy(np.ascontiguousarray(arrays.y)))

    def __len__(self) -> int:
        return len(self.y)

    def checksum(self) -> str:
        """SHA-256 of shape, images and labels: equal checksums mean byte-identical splits."""
        digest = hashlib.sha256(repr(tuple(self.x.shape)).encode())
        digest.update(self.x.contiguous().numpy().tobytes())
        digest.update(self.y.contiguous().numpy().tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Preprocess:
    """Stored inputs to model inputs: uint8 images scaled to [0, 1] (``pixels``), or float features taken as they
    are, then optional per-channel mean/std.

    Stored in every checkpoint so that evaluation and serving feed models exactly what they
    were trained on.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    pixels: bool = True  # uint8 images in 0..255; False: float features (spectrograms), which have no fixed range

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x.float().div_(255.0) if self.pixels else x.float().clone()
        if self.mean is not None and self.std is not None:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(self.mean, device=out.device).view(shape)
            std = torch.tensor(self.std, device=out.device).view(shape)
            out = out.sub_(mean).div_(std)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scale": 1 / 255 if self.pixels else 1.0, "mean": self.mean and list(self.mean),
                "std": self.std and list(self.std), "pixels": self.pixels}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        mean, std = data.get("mean"), data.get("std")
        return cls(tuple(mean) if mean else None, tuple(std) if std else None, bool(data.get("pixels", True)))

    @classmethod
    def of_inputs(cls, x: np.ndarray, *, normalize: bool) -> Preprocess:
        """The preprocessing of a training split's inputs: pixels for uint8, and with ``normalize`` the per-channel
        mean/std of the inputs as scaled (the CIFAR convention)."""
        pixels = x.dtype == np.uint8
        if not normalize:
            return cls(pixels=pixels)
        scaled = x.astype(np.float64) / (255.0 if pixels else 1.0)
        return cls(tuple(scaled.mean(axis=(0, 2, 3)).tolist()), tuple(scaled.std(axis=(0, 2, 3)).tolist()), pixels)


@dataclass(frozen=True)
class Dataset:
    """A dataset with deterministic train / validation / test splits.

    ``augment`` says whether training should apply random crop and flip (the CIFAR recipe);
    the MNIST family is trained on plain scaled pixels, as in the paper.
    """

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    split_seed: int
    preprocess: Preprocess = field(default_factory=Preprocess)
    augment: bool = False
    dropped_rows: int = 0
    source: str = ""
    load_args: dict[str, Any] = field(default_factory=dict)  # how `load_dataset` was called, to load it again
    task: str = "classification"  # a name of `parm.tasks`: what the outputs mean and how they are scored

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """The number of F's outputs: classes, or a regression's values."""
        return len(self.classes)

    @property
    def task_definition(self) -> Task:
        return get_task(self.task)

    def default_output(self) -> torch.Tensor:
        """The task's default answer (m,), from the training split: what a frontend says when nothing came back."""
        return self.task_definition.default_output(self.train.y, self.num_classes)

    def checksums(self) -> dict[str, str]:
        return {"train": self.train.checksum(), "val": self.val.checksum(), "test": self.test.checksum()}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: sizes, shape, classes, dropped rows and split checksums."""
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "task": self.task,
            "classes": list(self.classes),
            "split_seed": self.split_seed,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "dropped_rows": self.dropped_rows,
            "checksums": self.checksums(),
        }
