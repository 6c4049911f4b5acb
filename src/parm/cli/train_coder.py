"""``parm train-coder``: train a learned encoder and decoder through a frozen base model."""

from __future__ import annotations

import argparse
from pathlib import Path

from parm.cli.options import (
    add_coded_run_options,
    add_training_options,
    base_checkpoint,
    load_dataset_from_args,
    training_config,
)
from parm.cli.train_parity import print_coded_result
from parm.codes import LearnedCode
from parm.codes.learned import ENCODERS
from parm.runtime import seed_everything
from parm.training.coder import LOSSES, CoderTrainConfig, default_loss, train_coder, variant_suffix

DEFAULTS = CoderTrainConfig()


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-coder",
        help="train a learned encoder and decoder (no parity model: F runs on learned parities)",
        description="Train a neural encoder and decoder together, backpropagating through the frozen "
        "base model F, under every erasure pattern of up to r lost outputs. Writes code.safetensors, "
        "code.json, metrics.json (degraded-mode test scores), report.md and curves.png.",
        epilog="example: parm train-coder --dataset fashion-mnist --model base-mlp --k 2 --encoder conv",
    )
    add_coded_run_options(parser)
    parser.add_argument("--encoder", choices=ENCODERS, default="mlp", help="MLPEncoder or ConvEncoder (default: %(default)s)")
    parser.add_argument("--loss", choices=sorted(LOSSES),
                        help="ce to the true label, kl to F's output distribution, mse to F's outputs (the paper's; "
                        "default: ce for a classifier, mse for any other task)")
    parser.add_argument("--sentinel", type=float, default=0.0, help="decoder input for a lost output (default: %(default)s)")
    parser.add_argument("--residual", action="store_true",
                        help="the encoder learns a correction to a linear code's parities (weighted means of the k "
                        "inputs) and starts from them, so that every input is carried from the first step")
    parser.add_argument("--balanced", action="store_true",
                        help="train on the loss of the worst-rebuilt lost position instead of the mean over all, so "
                        "that the encoder cannot carry one original and drop another")
    parser.add_argument("--joint", action="store_true",
                        help="learn parity models (started from F's weights) with the encoder and decoder, and run them "
                        "on the parities instead of F (the paper's section VI-C); writes parity-J.safetensors too")
    add_training_options(parser, DEFAULTS, unit="coding groups", out="runs/coder/DATASET-MODEL-ENCODER-LOSS[-VARIANTS]-kK-rR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed)  # first: the code's initial weights are a function of --seed
    dataset = load_dataset_from_args(args)
    base = base_checkpoint(args, dataset.name)
    code = LearnedCode(args.k, args.r, encoder=args.encoder, input_shape=dataset.input_shape,
                       num_outputs=dataset.num_classes, sentinel=args.sentinel, residual=args.residual)
    name = (args.model or base.stem).replace(":", ".")
    args.loss = args.loss or default_loss(dataset.task)
    variant = variant_suffix(residual=args.residual, balanced=args.balanced, joint=args.joint, shift=args.shift)
    out = args.out or Path("runs") / "coder" / f"{dataset.name}-{name}-{args.encoder}-{args.loss}{variant}-k{args.k}-r{args.r}"
    config = training_config(args, CoderTrainConfig, loss=args.loss, joint=args.joint, balanced=args.balanced,
                             shift=args.shift)
    print(f"training a {'jointly ' if args.joint else ''}learned code ({args.encoder} encoder, k={args.k}, r={args.r}, "
          f"{args.loss} loss) for {base}")
    result = train_coder(base, dataset, code, out, config=config, resume=args.resume, overwrite=args.overwrite)
    print_coded_result(result, "code.safetensors")
    return 0
