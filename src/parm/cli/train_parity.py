"""``parm train-parity``: train the parity models of a code for a trained base model."""

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
from parm.codes import PARITY_MODEL_CODES, build_code
from parm.runtime import seed_everything
from parm.tasks import get_task
from parm.training import TrainResult
from parm.training.parity import DECODED_LOSSES, INITS, LOSSES, ParityTrainConfig, train_parity

DEFAULTS = ParityTrainConfig()


def parse_coefficients(text: str) -> list[list[float]]:
    """``"1,1;1,2"`` -> [[1, 1], [1, 2]]: rows (one per parity) separated by semicolons."""
    try:
        return [[float(v) for v in row.split(",")] for row in text.split(";")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read coefficients {text!r}: write rows like '1,1;1,2'") from None


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train-parity",
        help="train parity models for a base model (sum, linear or concatenation code)",
        description="Train the r parity models of a code so that the code's decoder can rebuild the "
        "base model's lost predictions. Writes parity-J.safetensors (+ .json), code.json, metrics.json "
        "(degraded-mode test scores), report.md and curves.png.",
        epilog="example: parm train-parity --dataset fashion-mnist --model base-mlp --k 2 --code sum",
    )
    add_coded_run_options(parser)
    parser.add_argument("--code", choices=PARITY_MODEL_CODES, default="sum", help="erasure code (default: %(default)s)")
    parser.add_argument("--coefficients", type=parse_coefficients,
                        help="linear code only: r x k coefficient rows, e.g. '1,1;1,2' (default: Vandermonde on Chebyshev nodes)")
    parser.add_argument("--parity-model", help="parity-model architecture (default: the base model's)")
    parser.add_argument("--init", choices=INITS, default=DEFAULTS.init,
                        help="start from the base model's weights, the paper's initialisation, or torch's (default: %(default)s)")
    parser.add_argument("--loss", choices=[*sorted(LOSSES), *DECODED_LOSSES], default=DEFAULTS.loss,
                        help="against the code's target (mse, l1, smooth-l1: the paper's setting is mse), or on the "
                        "decoded reconstruction: KL to F's softmax (decoded-kl) or cross-entropy to the label "
                        "(decoded-ce) (default: decoded-kl for a classifier, mse for any other task)")
    add_training_options(parser, DEFAULTS, unit="coding groups", out="runs/parity/DATASET-MODEL-CODE-kK-rR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    seed_everything(args.seed)  # first: parity models not copied from F draw their initial weights
    dataset = load_dataset_from_args(args)
    base = base_checkpoint(args, dataset.name)
    options = {"coefficients": args.coefficients} if args.coefficients is not None else {}
    code = build_code(args.code, args.k, args.r, **options)
    name = args.model or base.stem
    out = args.out or Path("runs") / "parity" / f"{dataset.name}-{name.replace(':', '.')}-{code.name}-k{code.k}-r{code.r}"
    config = training_config(args, ParityTrainConfig, loss=args.loss, init=args.init, shift=args.shift)
    print(f"training {code.r} parity model(s) of the {code.name} code (k={code.k}) for {base} on {dataset.name}")
    result = train_parity(base, dataset, code, out, architecture=args.parity_model, config=config,
                          resume=args.resume, overwrite=args.overwrite)
    print_coded_result(result, "parity-*.safetensors")
    return 0


def print_coded_result(result: TrainResult, weights: str) -> None:
    """The headline of a coded run: A_a, A_d and the default baseline, and where the files are."""
    test = result.test
    task = get_task(test["task"])
    print(f"{task.metric_label}: A_a {task.format(test['available_accuracy'])}   A_d {task.format(test['degraded_accuracy'])}"
          f"   default baseline {task.format(test['default_accuracy'])}   (best epoch {result.best_epoch})")
    print(f"results written to {result.out_dir}/ ({weights}, code.json, metrics.json, report.md, curves.png)")
