"""CIFAR-10 / CIFAR-100 "python version" batches, unpickled without running foreign code."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parm.data.dataset import LabeledArrays, SourceData
from parm.data.errors import DataError
from parm.data.splits import to_labeled

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
_ROW = 3 * 32 * 32  # one image: the R, G, B planes of 32 x 32, row-major
_FIX = "download the python version of CIFAR again from https://www.cs.toronto.edu/~kriz/cifar.html"

# Everything a pickled numpy array (of any numpy version or pickle protocol) needs, and nothing else.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5 (the default from Python 3.14)
    ("numpy._core.numeric", "_frombuffer"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses every global but numpy's array constructors: a pickle can otherwise run any code."""

    def __init__(self, path: Path, file: Any) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise DataError(
                f"{self.path}: parm refuses to unpickle {module}.{name}, which a CIFAR batch never holds "
                f"(unpickling it could run foreign code): {_FIX}"
            )
        return super().find_class(module, name)


def _load(path: Path) -> dict[bytes, Any]:
    try:
        with path.open("rb") as file:
            batch = _NumpyOnlyUnpickler(path, file).load()
    except DataError:
        raise
    except Exception as err:  # a damaged pickle fails in many ways; all mean the same to the user
        raise DataError(f"{path} is not a readable CIFAR pickle ({err!r}): {_FIX}") from err
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}, not a CIFAR batch dict: {_FIX}")
    return batch


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _load(path)
    data, labels = batch.get(b"data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        raise DataError(
            f"{path}: expected b'data' to be a uint8 array N x {_ROW}, got "
            f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}: {_FIX}"
        )
    try:
        y = np.asarray(labels)
    except ValueError:  # a ragged list: reported below like any other malformed labels
        y = np.empty(0, dtype=object)
    if y.shape != (len(data),) or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        raise DataError(f"{path}: expected {label_key!r} to hold {len(data)} non-negative integer labels: {_FIX}")
    return data.reshape(-1, 3, 32, 32), y


def _read_split(paths: list[Path], label_key: bytes) -> LabeledArrays:
    parts = [_read_batch(p, label_key) for p in paths]
    return to_labeled(np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))


def _class_names(meta: Path, names_key: bytes, n_classes: int) -> tuple[str, ...]:
    if not meta.is_file():
        return tuple(str(i) for i in range(n_classes))
    names = _load(meta).get(names_key)
    if not isinstance(names, list) or len(names) < n_classes:
        raise DataError(
            f"{meta}: expected {names_key!r} to list at least {n_classes} class names: "
            f"{_FIX}, or delete {meta.name} to number the classes instead"
        )
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _root(path: Path) -> Path:
    """The batch folder itself, or the one known sub-folder of the extracted archive's parent."""
    inner = [path / name for name in (CIFAR10_DIR, CIFAR100_DIR) if (path / name).is_dir()]
    if len(inner) > 1:
        raise DataError(
            f"{path} holds both {CIFAR10_DIR} and {CIFAR100_DIR}: point the data directory at one of them"
        )
    return inner[0] if inner else path


def looks_like_cifar(path: Path) -> bool:
    root = _root(path)
    return (root / "data_batch_1").is_file() or ((root / "train").is_file() and (root / "meta").is_file())


@dataclass(frozen=True)
class _Layout:
    """Where one CIFAR variant keeps its batches, and the dict keys of its labels and names."""

    train: list[Path]
    test: Path
    meta: Path
    label_key: bytes
    names_key: bytes


def _layout(root: Path) -> _Layout | None:
    prefix = "data_batch_"
    batches = [p for p in root.glob(prefix + "*") if p.name[len(prefix) :].isdigit() and p.is_file()]
    if batches:
        batches.sort(key=lambda p: int(p.name[len(prefix) :]))
        return _Layout(batches, root / "test_batch", root / "batches.meta", b"labels", b"label_names")
    if (root / "train").is_file():
        return _Layout([root / "train"], root / "test", root / "meta", b"fine_labels", b"fine_label_names")
    return None


def read_cifar_dir(path: Path) -> SourceData:
    """CIFAR-10 (``data_batch_*``, ``test_batch``) or CIFAR-100 (``train``, ``test``; fine labels)."""
    root = _root(path)
    layout = _layout(root)
    if layout is None:
        raise DataError(
            f"expected CIFAR-10 data_batch_1..5 + test_batch, or CIFAR-100 train + test + meta, in {path}: "
            f"extract the python version of CIFAR (cifar-10-python.tar.gz or cifar-100-python.tar.gz) there"
        )
    train = _read_split(layout.train, layout.label_key)
    test = _read_split([layout.test], layout.label_key) if layout.test.is_file() else None
    top_label = max(int(train.y.max(initial=0)), int(test.y.max(initial=0)) if test is not None else 0)
    return SourceData(
        train=train,
        classes=_class_names(layout.meta, layout.names_key, top_label + 1),
        test=test,
        description=f"CIFAR python batches in {root}",
    )
