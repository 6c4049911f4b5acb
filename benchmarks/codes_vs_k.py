"""Every code against k, side by side (issue 17): A_d of the sum and concatenation parity models, the learned MLP
code and the Berrut code, Fashion-MNIST Base-MLP, one split; r = 1 with one lost original, and r = 2 (two lost
too) for the codes that have it (linear parity models, Berrut).

Run: .venv/bin/python benchmarks/codes_vs_k.py [--ks 2 3 4 6 8 10 12] [--codes sum concat berrut] [--epochs 100]
Trains one run per code and k under runs/bench/codes_vs_k/ (with `parm train-parity` / `parm train-coder`
defaults, or writes it: Berrut has nothing to train; an existing run is reused with --reuse), evaluates each with
`parm evaluate`'s degraded-mode evaluation on the test split, and writes evaluation.json, evaluation.md and
degraded_vs_k.png (the paper's Fig. 11) there; prints the table and each run's wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import ensure_base

from parm.codes import BerrutCode, LearnedCode, build_code
from parm.data import load_dataset
from parm.evaluation.runs import evaluate_run
from parm.evaluation.report import results_table, write_evaluation_report
from parm.runs import BaseRun, write_training_free_run
from parm.runtime import seed_everything
from parm.training.coder import CoderTrainConfig, train_coder
from parm.training.parity import ParityTrainConfig, train_parity

CODES = {  # name: (kind, r)
    "sum": ("parity", 1), "concat": ("parity", 1), "linear-r2": ("parity", 2),
    "learned-mlp": ("coder", 1), "berrut": ("free", 1), "berrut-r2": ("free", 2),
}


def make_run(name: str, k: int, base: Path, dataset, out: Path, epochs: int, coder_epochs: int) -> None:
    """Train (or write) the run of code ``name`` at ``k`` in ``out``."""
    kind, r = CODES[name]
    seed_everything(0)
    if kind == "free":
        write_training_free_run(out, BerrutCode(k, r), BaseRun(base), overwrite=True)
    elif kind == "coder":
        code = LearnedCode(k, r, encoder="mlp", input_shape=dataset.input_shape, num_outputs=dataset.num_classes)
        train_coder(base, dataset, code, out, config=CoderTrainConfig(epochs=coder_epochs, progress=False), overwrite=True)
    else:
        code = build_code(name.split("-")[0], k, r)
        train_parity(base, dataset, code, out, config=ParityTrainConfig(epochs=epochs, progress=False), overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10, 12])
    parser.add_argument("--codes", nargs="+", choices=list(CODES), default=list(CODES))
    parser.add_argument("--epochs", type=int, default=ParityTrainConfig().epochs, help="parity-model epochs")
    parser.add_argument("--coder-epochs", type=int, default=CoderTrainConfig().epochs, help="learned-code epochs")
    parser.add_argument("--reuse", action="store_true", help="evaluate runs already there instead of training again")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/codes_vs_k"))
    args = parser.parse_args()
    dataset = load_dataset("fashion-mnist")
    base = ensure_base(dataset, "base-mlp")
    evaluated, times = [], {}
    for name in args.codes:
        for k in args.ks:
            out = args.out / f"{name}-k{k}"
            started = time.perf_counter()
            if not (args.reuse and (out / "code.json").exists()):
                make_run(name, k, base, dataset, out, args.epochs, args.coder_epochs)
            times[f"{name}-k{k}"] = time.perf_counter() - started
            evaluated.append(evaluate_run(out, device="cpu"))
            print(f"{name} k={k}: A_d {evaluated[-1].evaluation.degraded_accuracy:.2%} "
                  f"({times[f'{name}-k{k}']:.0f} s to make)", flush=True)
    write_evaluation_report(evaluated, args.out)
    (args.out / "times.json").write_text(json.dumps(times, indent=2) + "\n")
    print(results_table(evaluated))
    print(f"report and degraded_vs_k.png in {args.out}/")


if __name__ == "__main__":
    main()
