"""``parm train-base``: train a base model F and report its test scores in its task's measures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from parm.cli.options import add_dataset_options, add_training_options, load_dataset_from_args, training_config
from parm.models import build_model
from parm.runtime import seed_everything
from parm.training import BaseTrainConfig, train_base

DEFAULTS = BaseTrainConfig()


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-base",
        help="train a base model (the network parm protects)",
        description="Train a base model with Adam on its dataset's task (cross-entropy for classes, smooth L1 for "
        "boxes), keep the best validation epoch, and write its "
        "checkpoint (model.safetensors + model.json), metrics.json, report.md and curves.png.",
        epilog="example: parm train-base --dataset fashion-mnist --model base-mlp",
    )
    add_dataset_options(parser)
    parser.add_argument("--model", required=True, help="a zoo model (see `parm models`) or package.module:function")
    parser.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=None,
        help="random crop + flip (default: on for CIFAR, off for the MNIST family)",
    )
    add_training_options(parser, DEFAULTS, unit="images", out="runs/base/DATASET-MODEL")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed)  # first: the initial weights too are a function of --seed
    dataset = load_dataset_from_args(args)
    model = build_model(args.model, dataset.input_shape, dataset.num_classes)
    out = args.out or Path("runs") / "base" / f"{dataset.name}-{args.model.replace(':', '.')}"
    config = training_config(args, BaseTrainConfig, augment=args.augment)
    print(
        f"training {args.model} on {dataset.name}: {len(dataset.train):,} train / {len(dataset.val):,} val / "
        f"{len(dataset.test):,} test inputs of shape {'x'.join(map(str, dataset.input_shape))}"
    )
    result = train_base(model, dataset, out, model_name=args.model, config=config, resume=args.resume, overwrite=args.overwrite)
    metric = dataset.task_definition.metric
    print(json.dumps({"best_epoch": result.best_epoch, f"val_{metric}": result.best_score, "test": result.test}, indent=2))
    print(f"results written to {out}/ (model.safetensors, model.json, metrics.json, report.md, curves.png)")
    return 0
