"""``parm evaluate``: degraded-mode scores of trained coded runs, in their task's measure, with tables and plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from parm.evaluation.report import results_table, write_evaluation_report
from parm.evaluation.runs import evaluate_run


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="degraded-mode scores (A_a, A_d, A_o, default baseline) of parity-model, learned-code or Berrut runs",
        description="Evaluate parity-model, learned-code and training-free (Berrut) runs on the test split: A_a, "
        "A_d for every erasure pattern of 1 to r lost originals, A_o(f) and the default-prediction baseline, in the "
        "task's measures (classification: top-1, top-5; localization: mean IoU, IoU >= 0.5) with agreement with the "
        "base model. Writes evaluation.json, evaluation.md, accuracy.png (paper "
        "Fig. 8), overall.png (Fig. 9) and degraded_vs_k.png (Fig. 11).",
        epilog="example: parm evaluate runs/parity/fashion-mnist-base-mlp-sum-k2-r1 runs/parity/fashion-mnist-base-mlp-sum-k4-r1",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="folders written by `parm train-parity`, `parm train-coder` or `parm make-run`")
    parser.add_argument("--out", type=Path, help="report folder (default: RUN/evaluation for one run, else runs/evaluation)")
    parser.add_argument("--data-dir", type=Path, help="read the dataset from local files instead of the cache")
    parser.add_argument("--cache-dir", type=Path, help="converted-dataset cache (default: $PARM_DATA or ~/.cache/parm/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test grouping (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ... (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    runs = [evaluate_run(path, data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed, device=args.device)
            for path in args.runs]
    out = args.out or (args.runs[0] / "evaluation" if len(args.runs) == 1 else Path("runs") / "evaluation")
    paths = write_evaluation_report(runs, out)
    print(results_table(runs))
    print(f"results written to {out}/ ({', '.join(p.name for p in paths)})")
    return 0
