"""Deterministic splits, stratified by class where targets are labels: the same targets and seed always give the
same indices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from parm.data.dataset import Dataset, LabeledArrays, Preprocess, SourceData, Split

DEFAULT_SPLIT_SEED = 0
MAX_VAL_SIZE = 5_000  # the paper holds 5,000 training images out for validation


def _allocate(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Share ``total`` among classes in proportion to their sizes (largest remainder, exact sum)."""
    exact = class_counts * (total / class_counts.sum())
    share = np.floor(exact).astype(np.int64)
    shortfall = total - int(share.sum())
    order = np.argsort(-(exact - share), kind="stable")
    share[order[:shortfall]] += 1
    return share


def stratified_split(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Cut ``labels``' indices into parts of the given sizes, each with the class mix of the whole.

    The first ``len(sizes)`` parts are returned (sorted indices); whatever is left over forms one
    more part at the end. Classes are shuffled independently with one seeded generator.
    """
    labels = np.asarray(labels)
    if sum(sizes) > len(labels):
        raise ValueError(f"cannot take {sum(sizes)} samples from {len(labels)}")
    if labels.ndim != 1:  # regression targets: one class, a plain seeded permutation
        labels = np.zeros(len(labels), dtype=np.int64)
    rng = np.random.Generator(np.random.PCG64(seed))
    classes, counts = np.unique(labels, return_counts=True)
    shares = [_allocate(counts, size) for size in sizes]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(sizes) + 1)]
    for c, cls in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == cls))
        bounds = np.cumsum([0] + [int(share[c]) for share in shares])
        for p in range(len(sizes)):
            parts[p].append(members[bounds[p] : bounds[p + 1]])
        parts[-1].append(members[bounds[-1] :])
    return [np.sort(np.concatenate(p)) for p in parts]


def default_val_size(n_train: int) -> int:
    """5,000 images, or a tenth of a smaller training pool."""
    return min(MAX_VAL_SIZE, n_train // 10)


def split_source(
    name: str,
    source: SourceData,
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    test_size: int | None = None,
    val_size: int | None = None,
    normalize: bool = False,
    augment: bool = False,
) -> Dataset:
    """Turn a source into a `Dataset` with stratified validation (and, if needed, test) splits.

    A source without its own test set needs ``test_size``. ``normalize`` adds per-channel
    mean/std computed on the training split.
    """
    pool = source.train
    if source.test is None:
        if test_size is None:
            raise ValueError(f"{name}: the source has no test set, so test_size is required")
        test_idx, pool_idx = stratified_split(pool.y, [test_size], seed)
        test, pool = pool.take(test_idx), pool.take(pool_idx)
    else:
        test = source.test
    n_val = default_val_size(len(pool)) if val_size is None else val_size
    val_idx, train_idx = stratified_split(pool.y, [n_val], seed + 1)
    train, val = pool.take(train_idx), pool.take(val_idx)
    return Dataset(
        name=name,
        train=Split.from_arrays(train),
        val=Split.from_arrays(val),
        test=Split.from_arrays(test),
        classes=source.classes,
        split_seed=seed,
        preprocess=Preprocess.of_inputs(train.x, normalize=normalize),
        augment=augment,
        dropped_rows=source.dropped_rows,
        source=source.description,
        task=source.task,
    )


def to_labeled(x: np.ndarray, y: np.ndarray) -> LabeledArrays:
    """Labeled arrays with int64 labels (sources produce various integer widths)."""
    return LabeledArrays(np.ascontiguousarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64))
