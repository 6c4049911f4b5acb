"""Foundation figures: fetch determinism and base-model accuracy and time on this machine.

Run: .venv/bin/python benchmarks/base_models.py [--out runs/bench/base_models]
Prints a Markdown table and writes the same figures as JSON. Everything goes through the public
Python API, with the same defaults as `parm train-base`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from parm.data import load_dataset
from parm.models import build_model
from parm.runtime import seed_everything
from parm.training import BaseTrainConfig, train_base

RUNS = [("fashion-mnist", "base-mlp"), ("mnist", "lenet5")]


def fetch_twice(name: str) -> dict:
    """Two independent fetches into empty caches: their split checksums must be equal."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        started = time.perf_counter()
        first = load_dataset(name, cache_dir=Path(a))
        seconds = time.perf_counter() - started
        second = load_dataset(name, cache_dir=Path(b))
    return {
        "dataset": name,
        "fetch_seconds": round(seconds, 1),
        "test_sha256": first.test.checksum(),
        "identical": first.checksums() == second.checksums(),
    }


def train(dataset_name: str, model_name: str, out: Path) -> dict:
    dataset = load_dataset(dataset_name)
    seed_everything(0)
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    started = time.perf_counter()
    result = train_base(model, dataset, out / f"{dataset_name}-{model_name}", model_name=model_name,
                        config=BaseTrainConfig(progress=False), overwrite=True)
    return {
        "dataset": dataset_name,
        "model": model_name,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "test_accuracy": round(100 * result.test["accuracy"], 2),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/base_models"))
    args = parser.parse_args()
    fetches = [fetch_twice(name) for name in ("fashion-mnist", "mnist")]
    trainings = [train(d, m, args.out) for d, m in RUNS]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"fetch": fetches, "train": trainings}, indent=2) + "\n")
    print("| dataset | fetch (s) | two fresh fetches identical | test split sha256 |")
    print("|---|---:|---|---|")
    for f in fetches:
        print(f"| {f['dataset']} | {f['fetch_seconds']} | {f['identical']} | `{f['test_sha256'][:16]}…` |")
    print()
    print("| dataset | model | epochs (best) | test accuracy | wall time (s) | torch threads |")
    print("|---|---|---:|---:|---:|---:|")
    for t in trainings:
        print(f"| {t['dataset']} | {t['model']} | {t['epochs']} ({t['best_epoch']}) | {t['test_accuracy']:.2f}% "
              f"| {t['wall_seconds']} | {t['threads']} |")
    print(f"\nJSON: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
