"""Command-line options shared by several commands, so they read the same everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from parm.data import DEFAULT_SPLIT_SEED, Dataset, dataset_names, load_dataset


def add_dataset_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--dataset",
        required=required,
        help=f"a registered dataset ({', '.join(dataset_names())}) or the path of a local dataset folder",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="read the dataset from local files instead of fetching it: IDX files, CIFAR python "
        "batches, or one sub-folder of images per class",
    )
    parser.add_argument("--cache-dir", type=Path, help="converted-dataset cache (default: $PARM_DATA or ~/.cache/parm/data)")
    parser.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT_SEED, help="seed of the stratified splits (default: %(default)s)")


def load_dataset_from_args(args: argparse.Namespace) -> Dataset:
    return load_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.split_seed)


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and augmentation (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ... (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (e.g. in log files)")
