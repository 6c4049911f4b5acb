"""In-memory datasets: uint8 image tensors with labels, split three ways, plus their preprocessing.

Images stay uint8 (N, C, H, W) in memory and are scaled per batch by `Preprocess`, which keeps a
70,000-image dataset at 55 MB and lets training move whole batches without per-image transforms.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class LabeledArrays:
    """Images ``x`` (uint8, N x C x H x W) with integer labels ``y`` (int64, N)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.x.dtype} {self.x.shape}")
        if self.y.ndim != 1 or len(self.y) != len(self.x):
            raise ValueError(f"labels must be a vector of {len(self.x)} entries, got shape {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> LabeledArrays:
        return LabeledArrays(self.x[index], self.y[index])


@dataclass(frozen=True)
class SourceData:
    """What a dataset source yields before splitting.

    ``test`` is set when the source carries its own test set (IDX t10k files, CIFAR test batch,
    an image folder with ``test/``); otherwise a stratified test split is cut from ``train``.
    """

    train: LabeledArrays
    classes: tuple[str, ...]
    test: LabeledArrays | None = None
    dropped_rows: int = 0
    description: str = ""


@dataclass(frozen=True)
class Split:
    """One split as torch tensors: ``x`` uint8 (N, C, H, W), ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    @classmethod
    def from_arrays(cls, arrays: LabeledArrays) -> Split:
        x = torch.from_numpy(np.ascontiguousarray(arrays.x))
        return cls(x, torch.from_numpy(np.ascontiguousarray(arrays.y, dtype=np.int64)))

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
    """uint8 images to model inputs: scale to [0, 1], then optional per-channel mean/std.

    Stored in every checkpoint so that evaluation and serving feed models exactly what they
    were trained on.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = x.float().div_(255.0)
        if self.mean is not None and self.std is not None:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(self.mean, device=out.device).view(shape)
            std = torch.tensor(self.std, device=out.device).view(shape)
            out = out.sub_(mean).div_(std)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scale": 1 / 255, "mean": self.mean and list(self.mean), "std": self.std and list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        mean, std = data.get("mean"), data.get("std")
        return cls(tuple(mean) if mean else None, tuple(std) if std else None)

    @classmethod
    def channel_stats(cls, x: np.ndarray) -> Preprocess:
        """Per-channel mean/std of uint8 images (the CIFAR convention), computed on the train split."""
        scaled = x.astype(np.float64) / 255.0
        return cls(tuple(scaled.mean(axis=(0, 2, 3)).tolist()), tuple(scaled.std(axis=(0, 2, 3)).tolist()))


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

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def checksums(self) -> dict[str, str]:
        return {"train": self.train.checksum(), "val": self.val.checksum(), "test": self.test.checksum()}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: sizes, shape, classes, dropped rows and split checksums."""
        return {
            "name": self.name,
            "source": self.source,
            "input_shape": list(self.input_shape),
            "classes": list(self.classes),
            "split_seed": self.split_seed,
            "sizes": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
            "dropped_rows": self.dropped_rows,
            "checksums": self.checksums(),
        }
