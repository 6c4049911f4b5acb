"""The CUB-200-2011 layout, for localization: ``images.txt``, ``bounding_boxes.txt``, ``train_test_split.txt`` and
``images/``, as the dataset's archive extracts them (into ``CUB_200_2011/``).

Every image is resized to one square size, because the models need one input shape; its box is normalised by the
image's original width and height, so that it still frames the bird after the resize.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image
from tqdm import tqdm

from parm.data.dataset import LabeledArrays, SourceData
from parm.data.errors import DataError
from parm.tasks.localization import BOX_OUTPUTS

__all__ = ["is_cub", "read_cub"]

IMAGES, BOXES, SPLIT = "images.txt", "bounding_boxes.txt", "train_test_split.txt"
_LINES = {  # what each line of each index file holds
    IMAGES: "<image_id> <path under images/>",
    BOXES: "<image_id> <x> <y> <width> <height>",
    SPLIT: "<image_id> <1 if training else 0>",
}
T = TypeVar("T")


def is_cub(path: Path) -> bool:
    """Whether ``path`` holds the three CUB index files and the ``images/`` folder."""
    return all((path / name).is_file() for name in _LINES) and (path / "images").is_dir()


def _image_path(fields: list[str]) -> str:
    (relative,) = fields
    return relative


def _box(fields: list[str]) -> tuple[float, ...]:
    left, top, width, height = map(float, fields)
    return left, top, width, height


def _is_training(fields: list[str]) -> bool:
    (flag,) = fields
    if flag not in ("0", "1"):
        raise ValueError(flag)
    return flag == "1"


def _read_table(path: Path, name: str, parse: Callable[[list[str]], T]) -> dict[int, T]:
    """``name``'s lines as image id -> ``parse`` of the line's other fields; a line it refuses is an error."""
    file = path / name
    if not file.is_file():
        raise DataError(f"{file} is missing: point at the extracted CUB_200_2011 folder, which holds "
                        f"{', '.join(_LINES)} and images/")
    table: dict[int, T] = {}
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1) if name == IMAGES else line.split()  # a path may hold spaces
        try:
            image_id, value = int(fields[0]), parse(fields[1:])
        except ValueError:
            raise DataError(f"{file} line {number} is malformed: {line!r}; each line must read {_LINES[name]!r}, "
                            f"so correct or delete it") from None
        if image_id in table:
            raise DataError(f"{file} line {number} repeats image id {image_id}: delete one of its lines")
        table[image_id] = value
    return table


def _described(path: Path, ids: list[int], table: dict[int, T], name: str) -> list[T]:
    """``table``'s value for each id of images.txt, which every index file must describe."""
    missing = [i for i in ids if i not in table]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise DataError(f"{path / name} has no line for image id {shown} ({len(missing)} of images.txt's ids): "
                        f"add the lines, or remove those images from images.txt")
    return [table[i] for i in ids]


def _degenerate(path: Path, ids: list[int], bad: np.ndarray, why: str) -> DataError:
    shown = ", ".join(str(ids[i]) for i in np.flatnonzero(bad)[:5])
    return DataError(f"{path / BOXES}: the box of image id {shown} ({int(bad.sum())} in all) {why}: correct those "
                     f"lines or remove the images from images.txt")


def read_cub(path: Path, *, size: int = 224) -> SourceData:
    """CUB's images resized to ``size`` x ``size`` RGB, their boxes normalised to [0, 1], and its official
    train/test split.

    Boxes are clipped to their image; one with no area inside it is refused. Image files that are missing or
    unreadable are skipped and counted in ``dropped_rows``, as in an image folder.
    """
    path = Path(path)
    files = {name: _read_table(path, name, parse) for name, parse in
             ((IMAGES, _image_path), (BOXES, _box), (SPLIT, _is_training))}
    ids = list(files[IMAGES])
    boxes = np.array(_described(path, ids, files[BOXES], BOXES), dtype=np.float64).reshape(-1, 4)
    training = np.array(_described(path, ids, files[SPLIT], SPLIT), dtype=bool)
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)
    if bad.any():
        raise _degenerate(path, ids, bad, "has no positive, finite width and height")

    x = np.zeros((len(ids), 3, size, size), np.uint8)
    original = np.ones((len(ids), 2))  # width, height of each image as stored
    read = np.zeros(len(ids), bool)
    for k, image_id in enumerate(tqdm(ids, desc="CUB-200-2011", unit="image", leave=False)):
        try:
            with Image.open(path / "images" / files[IMAGES][image_id]) as image:
                original[k] = image.size
                pixels = image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
            x[k] = np.asarray(pixels).transpose(2, 0, 1)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue
        read[k] = True
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    y = np.clip(corners / np.tile(original, 2), 0, 1).astype(np.float32)
    outside = read & ((y[:, 2] <= y[:, 0]) | (y[:, 3] <= y[:, 1]))
    if outside.any():
        raise _degenerate(path, ids, outside, "lies outside its image")
    for part, label in ((training, "training"), (~training, "test")):
        if not read[part].any():
            raise DataError(f"{path}: no readable {label} image under images/ ({int((~read).sum())} missing or "
                            f"unreadable): restore the images/ folder from the CUB_200_2011 archive")
    return SourceData(
        train=LabeledArrays(x[read & training], y[read & training]),
        classes=BOX_OUTPUTS,
        test=LabeledArrays(x[read & ~training], y[read & ~training]),
        dropped_rows=int((~read).sum()),
        description=f"CUB-200-2011 layout {path} ({int(read.sum())} images resized to {size}x{size} RGB with Lanczos, "
                    f"boxes normalised by their original sizes)",
        task="localization",
    )
