"""Command-line options shared by several commands, so they read the same everywhere."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar

from parm.data import DEFAULT_SPLIT_SEED, Dataset, dataset_names, load_dataset
from parm.runtime import PRECISIONS
from parm.training import TrainConfig

Config = TypeVar("Config", bound=TrainConfig)


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


def add_training_options(parser: argparse.ArgumentParser, defaults: TrainConfig, *, unit: str, out: str) -> None:
    """Epochs, optimiser, schedule, output folder, resume, and the runtime options of every training command."""
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"{unit} per batch (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="default: %(default)s")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default=defaults.schedule,
                        help="learning-rate schedule over the epochs (default: %(default)s)")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="bf16 autocast of the training steps: auto (on CUDA only), fp32 or bf16 (default: %(default)s)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last,
                        help="channels-last convolutions (default: on CUDA only)")
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds,
                        help="time box: start no epoch that would end past it; the best epoch is kept (default: none)")
    parser.add_argument("--out", type=Path, help=f"output folder (default: {out})")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    parser.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    add_runtime_options(parser)


def training_config(args: argparse.Namespace, config_type: type[Config], **extra: Any) -> Config:
    """The command's config from the options of `add_training_options` plus its own ``extra``."""
    return config_type(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                       schedule=args.schedule, seed=args.seed, device=args.device, precision=args.precision,
                       channels_last=args.channels_last, max_seconds=args.max_seconds, progress=not args.no_progress,
                       **extra)


def add_coded_run_options(parser: argparse.ArgumentParser) -> None:
    """The dataset, the base model a coded run protects, its group shape (k queries, r parities), and its training
    images' shifts."""
    add_dataset_options(parser)
    parser.add_argument("--model", help="the base model's name: its checkpoint is runs/base/DATASET-MODEL")
    parser.add_argument("--base", type=Path, help="the base model's checkpoint (folder or .safetensors), instead of --model")
    parser.add_argument("--k", type=group_size, default=2, help="queries per coding group, at least 2 (default: %(default)s)")
    parser.add_argument("--r", type=parity_count, default=1, help="parities per group (default: %(default)s)")
    parser.add_argument("--shift", type=pixel_shift, default=0,
                        help="augment: shift each training image by up to this many pixels (zero padded) and train on "
                        "F's outputs for the shifted images; for small training splits (default: %(default)s, none)")


def whole_number(text: str, what: str) -> int:
    """``text`` as an int, or the error argparse shows, naming ``what`` the option counts."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"need a whole number of {what}, got {text!r}") from None


def pixel_shift(text: str) -> int:
    """``--shift``: 0 (none) or more pixels."""
    pixels = whole_number(text, "pixels")
    if pixels < 0:
        raise argparse.ArgumentTypeError(f"need a shift of 0 or more pixels, got {pixels}")
    return pixels


def parity_count(text: str) -> int:
    """``--r`` of a coded run: at least one parity per group."""
    r = whole_number(text, "parities per group")
    if r < 1:
        raise argparse.ArgumentTypeError(f"need r >= 1 parities per coding group, got {r}")
    return r


def group_size(text: str) -> int:
    """``--k`` of a coded run. The codes accept k = 1, but training one is refused here: with one query per
    group a parity only copies that query's output, which is replication, and serving gives that untrained."""
    k = whole_number(text, "queries per group")
    if k == 1:
        raise argparse.ArgumentTypeError("k = 1 is replication, not a code: use --k 2 or more (to serve replicas "
                                         "without training, use `parm serve --mode equal-resources`)")
    if k < 1:
        raise argparse.ArgumentTypeError(f"need k >= 2 queries per coding group, got {k}")
    return k


def base_checkpoint(args: argparse.Namespace, dataset_name: str) -> Path:
    """The base model a coded run protects: ``--base``, or the ``parm train-base`` folder of ``--model``."""
    if args.base is not None:
        return args.base
    if args.model is None:
        raise ValueError("name the base model with --model (trained by `parm train-base`) or --base PATH")
    path = Path("runs") / "base" / f"{dataset_name}-{args.model.replace(':', '.')}"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(
            f"no trained base model at {path}: train it first with "
            f"`parm train-base --dataset {args.dataset} --model {args.model}`, or pass --base PATH"
        )
    return path
