"""``parm train-base``: train a base model F and report its test accuracy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from parm.cli.options import add_dataset_options, add_runtime_options, load_dataset_from_args
from parm.models import build_model
from parm.training import BaseTrainConfig, seed_everything, train_base

DEFAULTS = BaseTrainConfig()


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-base",
        help="train a base model (the network parm protects)",
        description="Train a base model with Adam, keep the best validation epoch, and write its "
        "checkpoint (model.safetensors + model.json), metrics.json, report.md and curves.png.",
        epilog="example: parm train-base --dataset fashion-mnist --model base-mlp",
    )
    add_dataset_options(parser)
    parser.add_argument("--model", required=True, help="a zoo model (see `parm models`) or package.module:function")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="default: %(default)s")
    parser.add_argument("--lr", type=float, default=DEFAULTS.lr, help="Adam learning rate (default: %(default)s)")
    parser.add_argument(
        "--schedule", choices=("cosine", "constant"), default=DEFAULTS.schedule,
        help="learning-rate schedule over the epochs (default: %(default)s)",
    )
    parser.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay, help="default: %(default)s")
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=None,
        help="random crop + flip (default: on for CIFAR, off for the MNIST family)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/base/DATASET-MODEL)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    parser.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    add_runtime_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dataset = load_dataset_from_args(args)
    seed_everything(args.seed)  # the initial weights too are a function of --seed
    model = build_model(args.model, dataset.input_shape, dataset.num_classes)
    out = args.out or Path("runs") / "base" / f"{dataset.name}-{args.model.replace(':', '.')}"
    config = BaseTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        seed=args.seed,
        device=args.device,
        augment=args.augment,
        progress=not args.no_progress,
    )
    print(
        f"training {args.model} on {dataset.name}: {len(dataset.train):,} train / {len(dataset.val):,} val / "
        f"{len(dataset.test):,} test images of shape {'x'.join(map(str, dataset.input_shape))}"
    )
    result = train_base(model, dataset, out, model_name=args.model, config=config, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps({"best_epoch": result.best_epoch, "val_accuracy": result.best_score, "test": result.test}, indent=2))
    print(f"results written to {out}/ (model.safetensors, model.json, metrics.json, report.md, curves.png)")
    return 0
