"""MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST downloads), gzipped or not."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from parm.data.dataset import SourceData
from parm.data.errors import DataError
from parm.data.splits import to_labeled

# IDX type code (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
# Globs that also match the dotted variant (train-images.idx3-ubyte) and the .gz downloads.
_PATTERNS = {
    "train-images": "train-images*idx3*",
    "train-labels": "train-labels*idx1*",
    "t10k-images": "t10k-images*idx3*",
    "t10k-labels": "t10k-labels*idx1*",
}
_REDOWNLOAD = "download it again or unpack it with `gunzip`"


def read_idx_file(path: Path) -> np.ndarray:
    """One IDX file as a native-endian array shaped by its header.

    Gzip is recognised by its magic bytes, so a decompressed file that kept its ``.gz`` name
    (or the reverse) still reads.
    """
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path} is a damaged gzip file ({err}): {_REDOWNLOAD}") from err
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path} is not an IDX file (its first bytes are {raw[:4].hex(' ') or 'missing'}, expected "
            f"00 00 <type> <dims>): point the data directory at MNIST-style idx files or {_REDOWNLOAD}"
        )
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise DataError(f"{path} ends inside its IDX header: the file is truncated, {_REDOWNLOAD}")
    dims = struct.unpack(f">{raw[3]}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: its header promises dims {dims} ({expected} data bytes) but it holds "
            f"{len(raw) - header}: the file is truncated or damaged, {_REDOWNLOAD}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(path: Path, pattern: str) -> Path | None:
    """The first file matching ``pattern`` (the unpacked one wins over ``.gz`` when both exist)."""
    return min((p for p in path.glob(pattern) if p.is_file()), default=None)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx_file(images_path), read_idx_file(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_path} holds {images.dtype} {images.shape}, expected unsigned-byte images "
            f"N x H x W (IDX type 0x08, 3 dims): check that the images and labels files are not swapped"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise DataError(
            f"{labels_path} holds {labels.dtype} {labels.shape}, expected a vector of non-negative integer "
            f"labels (IDX 1 dim): check that the images and labels files are not swapped"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_path.name} holds {len(images)} images but {labels_path.name} holds {len(labels)} "
            f"labels: use the images and labels files of the same download"
        )
    return images[:, None], labels


def looks_like_idx(path: Path) -> bool:
    return any(p.is_file() for p in path.glob("*idx3*"))


def read_idx_dir(path: Path) -> SourceData:
    """The train pair and, when present, the t10k pair of an MNIST-style download."""
    found = {key: _find(path, pattern) for key, pattern in _PATTERNS.items()}
    if found["train-images"] is None or found["train-labels"] is None:
        raise DataError(
            f"expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] in {path}: "
            f"put both MNIST-style training files there"
        )
    if (found["t10k-images"] is None) != (found["t10k-labels"] is None):
        missing = "t10k-images-idx3-ubyte[.gz]" if found["t10k-images"] is None else "t10k-labels-idx1-ubyte[.gz]"
        raise DataError(f"{path} has half of the t10k test pair: add {missing} or remove the other t10k file")
    train_x, train_y = _read_pair(found["train-images"], found["train-labels"])
    test = None
    n_classes = int(train_y.max(initial=0)) + 1
    if found["t10k-images"] is not None and found["t10k-labels"] is not None:
        test_x, test_y = _read_pair(found["t10k-images"], found["t10k-labels"])
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"{path}: t10k images are {test_x.shape[2:]} but train images are {train_x.shape[2:]}: "
                f"use the train and t10k files of the same dataset"
            )
        test = to_labeled(test_x, test_y)
        n_classes = max(n_classes, int(test_y.max(initial=0)) + 1)
    return SourceData(
        train=to_labeled(train_x, train_y),
        classes=tuple(str(i) for i in range(n_classes)),
        test=test,
        description=f"IDX files in {path}",
    )
