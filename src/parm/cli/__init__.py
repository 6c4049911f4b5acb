"""The ``parm`` command: a thin layer over the Python API, one module per sub-command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parm import __version__
from parm.cli import (bench, data, evaluate, export, instance, make_run, models, replay, serve, simulate, testbed,
                      train_base, train_coder, train_parity)
from parm.data.errors import DataError
from parm.models.registry import UnknownModelError
from parm.training import CheckpointExistsError

COMMANDS = (data, models, train_base, train_parity, train_coder, make_run, evaluate, export, serve, instance, replay,
            bench, simulate, testbed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parm",
        description="Learning-based coded computation: keep neural-network inference fast and "
        "accurate when model instances are slow or fail.",
    )
    parser.add_argument("--version", action="version", version=f"parm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; known user errors print one clear line instead of a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (DataError, UnknownModelError, CheckpointExistsError, FileNotFoundError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"parm {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"parm {args.command}: interrupted", file=sys.stderr)
        return 130
