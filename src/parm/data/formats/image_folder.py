"""A folder of image files with one sub-folder per class (the torchvision ``ImageFolder`` layout)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from parm.data.dataset import LabeledArrays, SourceData
from parm.data.errors import DataError
from parm.data.splits import to_labeled

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "F"})  # 16-bit grayscale becomes "L" in `_open`
_SPLITS = frozenset({"train", "test", "val", "valid"})


def _layout_hint(path: Path) -> str:
    kinds = "/".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
    return (
        f"put {kinds} files in {path}/<class>/, one sub-folder per class "
        f"(or in {path}/train/<class>/ and {path}/test/<class>/)"
    )


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def looks_like_image_folder(path: Path) -> bool:
    """Whether some image file sits one level (classes) or two levels (splits/classes) down."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES for pattern in ("*/*", "*/*/*") for p in path.glob(pattern))


def _open(path: Path) -> Image.Image | None:
    """The decoded image, 16-bit grayscale scaled to 8 bits (Pillow would clip it); None if unreadable."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith("I;16"):
                return Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
            return image.copy()  # closing the file would discard the pixels of `image` itself
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _read_classes(folders: list[Path], classes: list[str]) -> tuple[list[Image.Image], list[int], int]:
    """Images and labels of every ``folder/<class>/*``, plus the count of unreadable files skipped."""
    images: list[Image.Image] = []
    labels: list[int] = []
    dropped = 0
    for folder in folders:
        for label, name in enumerate(classes):
            class_dir = folder / name
            for file in _images_in(class_dir) if class_dir.is_dir() else []:
                image = _open(file)
                if image is None:
                    dropped += 1
                else:
                    images.append(image)
                    labels.append(label)
    return images, labels, dropped


def _to_array(images: list[Image.Image], mode: str, size: tuple[int, int]) -> np.ndarray:
    """N x C x H x W uint8 in ``mode`` ("L" or "RGB"), resized with Lanczos where needed."""
    pixels = []
    for image in images:
        image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, Image.Resampling.LANCZOS)
        pixels.append(np.asarray(image))
    x = np.stack(pixels)
    return x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)


def _split_dirs(path: Path) -> tuple[list[Path], Path | None]:
    """The train folders (``val``/``valid`` merged in) and the test folder, or ``[path]`` and None."""
    subdirs = _subdirs(path)
    names = {d.name for d in subdirs}
    if not ({"train", "test"} <= names <= _SPLITS):
        return [path], None
    for d in subdirs:
        if not _subdirs(d):
            raise DataError(f"{d} holds no class sub-folders: {_layout_hint(path)}")
    return [d for d in subdirs if d.name != "test"], path / "test"


def read_image_folder(path: Path) -> SourceData:
    """Class sub-folders of images, or ``train/`` + ``test/`` (+ ``val/``) each holding class sub-folders.

    Grayscale images stay one channel unless any image has colour; differing sizes are resized to
    the most common one, because the models need one input shape.
    """
    if not path.is_dir():
        raise DataError(f"{path} is not a folder: {_layout_hint(path)}")
    train_dirs, test_dir = _split_dirs(path)
    classes = sorted({d.name for folder in train_dirs for d in _subdirs(folder)})
    if test_dir is not None:
        extra = sorted({d.name for d in _subdirs(test_dir)} - set(classes))
        if extra:
            raise DataError(
                f"{test_dir} has classes {extra} that train lacks: add train/<class> folders for them "
                f"or remove them from test"
            )
    train_images, train_labels, dropped = _read_classes(train_dirs, classes)
    test_images, test_labels, test_dropped = _read_classes([] if test_dir is None else [test_dir], classes)
    dropped += test_dropped
    if not train_images:
        raise DataError(f"no readable images in {path} ({dropped} unreadable): {_layout_hint(path)}")
    if test_dir is not None and not test_images:
        raise DataError(f"no readable images in {test_dir}: {_layout_hint(path)}")

    everything = train_images + test_images
    mode = "L" if all(image.mode in _GRAY_MODES for image in everything) else "RGB"
    sizes = Counter(image.size for image in everything)
    size = sizes.most_common(1)[0][0]
    description = f"image folder {path} ({len(everything)} images, {mode}, {size[0]}x{size[1]})"
    if len(sizes) > 1:
        resized = len(everything) - sizes[size]
        description += f"; resized {resized} images of other sizes to {size[0]}x{size[1]} with Lanczos"

    def labeled(images: list[Image.Image], labels: list[int]) -> LabeledArrays:
        return to_labeled(_to_array(images, mode, size), np.array(labels))

    return SourceData(
        train=labeled(train_images, train_labels),
        classes=tuple(classes),
        test=labeled(test_images, test_labels) if test_dir is not None else None,
        dropped_rows=dropped,
        description=description,
    )
