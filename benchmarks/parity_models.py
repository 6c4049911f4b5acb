"""Parity models on Fashion-MNIST with Base-MLP: degraded-mode accuracy, training time and throughput.

Run: .venv/bin/python benchmarks/parity_models.py [--epochs 100] [--only sum-k2] [--loss decoded-kl]
Trains (or reuses, with --resume semantics) the base model at runs/base/fashion-mnist-base-mlp, then
one parity run per configuration below, each with the same defaults as `parm train-parity`. Prints a
Markdown table (A_a, A_d per number of lost originals, default baseline, wall time, median training
groups/s) and writes the same figures to runs/bench/parity_models/results.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import ensure_base

from parm.codes import build_code
from parm.data import load_dataset
from parm.runtime import seed_everything
from parm.training.parity import DECODED_LOSSES, INITS, LOSSES, ParityTrainConfig, default_loss, train_parity

CONFIGS = {  # name: (code, k, r)
    "sum-k2": ("sum", 2, 1),
    "concat-k2": ("concat", 2, 1),
    "sum-k3": ("sum", 3, 1),
    "sum-k4": ("sum", 4, 1),
    "concat-k4": ("concat", 4, 1),
    "linear-k2-r2": ("linear", 2, 2),
    "linear-k3-r2": ("linear", 3, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=ParityTrainConfig().epochs)
    parser.add_argument("--init", choices=INITS, default=ParityTrainConfig().init, help="parity-model initialisation")
    parser.add_argument("--only", nargs="+", choices=sorted(CONFIGS), help="run only these configurations")
    parser.add_argument("--loss", choices=[*LOSSES, *DECODED_LOSSES], default=default_loss("classification"),
                        help="training loss: the paper's mse to the code's target, or one on the decoded reconstruction")
    parser.add_argument("--out", type=Path, help="default: runs/bench/parity_models (…-LOSS for a loss other than mse)")
    args = parser.parse_args()
    args.out = args.out or Path("runs/bench/parity_models" + ("" if args.loss == "mse" else f"-{args.loss}"))
    dataset = load_dataset("fashion-mnist")
    base = ensure_base(dataset, "base-mlp")
    rows = []
    for name in args.only or CONFIGS:
        code_name, k, r = CONFIGS[name]
        seed_everything(0)
        started = time.perf_counter()
        result = train_parity(base, dataset, build_code(code_name, k, r), args.out / name,
                              config=ParityTrainConfig(epochs=args.epochs, init=args.init, loss=args.loss, progress=False),
                              overwrite=True)
        test = result.test
        rows.append({
            "config": name, "code": code_name, "k": k, "r": r, "init": args.init, "loss": args.loss, "epochs": args.epochs, "best_epoch": result.best_epoch,
            "A_a": test["available_accuracy"], "A_d": test["degraded_accuracy"],
            "A_d_by_lost": {s["lost"]: s["accuracy"] for s in test["by_lost"]},
            "default": test["default_accuracy"], "wall_seconds": time.perf_counter() - started,
            "groups_per_second_median": statistics.median(row["groups_per_second"] for row in result.history),
        })
        print(f"{name}: A_d {test['degraded_accuracy']:.2%} in {rows[-1]['wall_seconds']:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\ninit: {args.init}, loss: {args.loss}")
    print("| config | epochs (best) | A_a | A_d, 1 lost | A_d, 2 lost | default | wall time | training groups/s (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        lost2 = f"{row['A_d_by_lost'][2]:.2%}" if 2 in row["A_d_by_lost"] else "—"
        print(f"| {row['config']} | {row['epochs']} ({row['best_epoch']}) | {row['A_a']:.2%} | {row['A_d_by_lost'][1]:.2%} "
              f"| {lost2} | {row['default']:.2%} | {row['wall_seconds']:.0f} s | {row['groups_per_second_median']:,.0f} |")
    print(f"\nJSON: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
