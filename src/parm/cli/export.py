"""``parm export``: a trained run as a Triton model repository, with a cluster file for the remote backend."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from parm.export import CLUSTER_NAME, FORMATS, MAX_BATCH_SIZE, ExportedModel, export_run


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="write a run's base and parity models as a Triton model repository (ONNX or TorchScript)",
        description=textwrap.fill(width=100, text="Export the base model and every parity model of a run (a learned "
        "code's parities run F, exported once) to DIR/MODEL/1/model.onnx (or model.pt) with DIR/MODEL/config.pbtxt: "
        "a Triton model repository with a dynamic batch dimension. Each model is run back (ONNX Runtime or libtorch) "
        "and checked against PyTorch on seeded random batches. Also writes DIR/cluster.yaml, the instances file of "
        "`parm serve --backend remote`, with every pool at one Triton server on 127.0.0.1:8000: edit its URLs, and "
        "add entries to add instances."),
        epilog="examples:\n"
        "  parm export runs/parity/fashion-mnist-base-mlp-sum-k2-r1 --out models/\n"
        "  parm export runs/base/fashion-mnist-base-mlp --format torchscript --out models-pt/\n"
        "  tritonserver --model-repository models/      # then edit models/cluster.yaml and point parm at it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", type=Path, metavar="RUN",
                        help="a coded run folder (parm train-parity / train-coder / make-run) or a base checkpoint folder")
    parser.add_argument("--format", choices=sorted(FORMATS), default="onnx",
                        help="onnx (Triton's onnxruntime_onnx; needs pip install 'parm-serving[export]') or "
                        "torchscript (pytorch_libtorch) (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the model repository to write")
    parser.add_argument("--max-batch-size", type=int, default=MAX_BATCH_SIZE,
                        help="max_batch_size in each config.pbtxt (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty DIR, replacing the model folders of an earlier export")
    parser.set_defaults(run=run)


def _print_model(model: ExportedModel) -> None:
    pools = ", ".join(str(pool) for pool in model.pools)
    print(f"  {model.name:<40} {model.path}  (pools {pools}; max |diff| vs PyTorch {model.max_diff:.2g} of the "
          "largest logit)", flush=True)


def run(args: argparse.Namespace) -> int:
    models = export_run(args.source, args.out, args.format, force=args.force, max_batch_size=args.max_batch_size,
                        report=_print_model)
    print(f"wrote {len(models)} model(s) to {args.out}/ and the instances template {args.out / CLUSTER_NAME}")
    return 0
