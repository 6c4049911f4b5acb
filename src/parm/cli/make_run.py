"""``parm make-run``: a run folder for a base model and a code with nothing to train (the Berrut code)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from parm.cli.options import group_size, parity_count
from parm.codes import TRAINING_FREE_CODES, build_code
from parm.runs import CodedRun, open_run, write_training_free_run


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "make-run",
        help="a coded run folder without training: a base model and the Berrut code (F runs on the coded queries)",
        description=textwrap.fill(width=100, text="Write a run folder (code.json) for a trained base model and a "
        "training-free code, ready for `parm evaluate`, `parm serve`, `parm replay` and `parm export` like a "
        "trained coded run. The Berrut code (ApproxIFER, Soleymani et al., AAAI 2022) sends the k queries of a "
        "group as they are and r extra queries u(beta_i), where u is Berrut's rational interpolant of the k "
        "queries; the extra instances run F itself, and any k of the k + r outputs rebuild the lost ones by "
        "interpolating F's outputs."),
        epilog="example: parm make-run runs/base/fashion-mnist-base-mlp --code berrut --k 4 --r 2\n"
        "  then:  parm evaluate runs/codes/fashion-mnist-base-mlp-berrut-k4-r2\n"
        "         parm serve runs/codes/fashion-mnist-base-mlp-berrut-k4-r2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", type=Path, metavar="BASE_RUN",
                        help="the base model: a `parm train-base` folder or its model.safetensors")
    parser.add_argument("--code", choices=TRAINING_FREE_CODES, default="berrut", help="the code (default: %(default)s)")
    parser.add_argument("--k", type=group_size, default=2,
                        help="queries per coding group, at least 2 (default: %(default)s)")
    parser.add_argument("--r", type=parity_count, default=1,
                        help="extra (coded) queries per group: up to r lost outputs are rebuilt (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="the run folder (default: runs/codes/DATASET-MODEL-CODE-kK-rR)")
    parser.add_argument("--overwrite", action="store_true", help="replace the code.json of a different run in --out")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    base = open_run(args.base)
    if isinstance(base, CodedRun):
        raise ValueError(f"{args.base} is a coded run ({base.spec['name']} code), not a base model: "
                         f"pass the base model it protects, {base.base.path}")
    card = base.card()
    code = build_code(args.code, args.k, args.r)
    name = f"{card.dataset}-{card.model.replace(':', '.')}-{code.name}-k{code.k}-r{code.r}"
    out = args.out or Path("runs") / "codes" / name
    made = write_training_free_run(out, code, base, overwrite=args.overwrite)
    extras = "1 extra query" if code.r == 1 else f"{code.r} extra queries"
    print(f"{code.name} code (k={code.k}, r={code.r}) for {card.model} on {card.dataset}: nothing to train, "
          f"F itself runs on each group's {extras}")
    print(f"run written to {made.path}/ (code.json)")
    print(f"next: parm evaluate {made.path}   or   parm serve {made.path}")
    return 0
