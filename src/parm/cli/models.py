"""``parm models``: list the base-model zoo."""

from __future__ import annotations

import argparse

from parm.models import describe_models


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models",
        help="list the base-model zoo",
        description="List the registered base models. Any torch.nn.Module factory can be used too, "
        "as --model package.module:function (called with input_shape and num_classes).",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name, description in describe_models().items():
        print(f"{name:20s} {description}")
    return 0
