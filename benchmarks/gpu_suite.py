"""The GPU suite: Fashion-MNIST ResNet-18, its parity models and a learned code, each stage time-boxed.

Run on a GPU machine (Fashion-MNIST from the parm data cache; nothing is fetched):
    PARM_DATA=.gpu-data PYTHONPATH=src python3 benchmarks/gpu_suite.py --out OUT
Check it anywhere, on the CPU, on a tiny subset (the test suite does this):
    .venv/bin/python benchmarks/gpu_suite.py --tiny --device cpu --out /tmp/suite

Stages, in order, each with `parm train-*`'s code and defaults except where the table below says (larger batches
for a GPU, a time box, the best validation epoch kept): the ResNet-18 base model; its sum and concatenation parity
models at k = 2; then, while the suite's budget allows, the sum code at k = 3 and 4 and the ConvEncoder learned code.
Prints, and writes to OUT/suite.json and OUT/suite.md, each stage's epochs, training seconds, images/s or groups/s
(median over the epochs after the first), A_a and A_d, with the hardware (GPU, torch, CUDA) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from parm.codes import LearnedCode, build_code
from parm.data import Dataset, load_dataset
from parm.data.dataset import Split
from parm.models import build_model
from parm.runtime import resolve_device, seed_everything
from parm.training import BaseTrainConfig, train_base
from parm.training.coder import CoderTrainConfig, train_coder
from parm.training.parity import ParityTrainConfig, train_parity


@dataclass(frozen=True)
class Stage:
    """One training of the suite: what it trains, its epochs, batch (images or groups) and time box in seconds."""

    name: str
    kind: str  # base, parity or coder
    epochs: int
    batch_size: int
    max_seconds: float
    code: str = ""
    k: int = 2
    required: bool = False  # run even past the budget (the suite's headline rows)


STAGES = (
    Stage("base", "base", epochs=20, batch_size=512, max_seconds=90, required=True),
    Stage("sum-k2", "parity", epochs=60, batch_size=1024, max_seconds=60, code="sum", required=True),
    Stage("concat-k2", "parity", epochs=60, batch_size=1024, max_seconds=60, code="concat", required=True),
    Stage("sum-k3", "parity", epochs=60, batch_size=1024, max_seconds=60, code="sum", k=3),
    Stage("sum-k4", "parity", epochs=60, batch_size=1024, max_seconds=60, code="sum", k=4),
    Stage("learned-conv-k2", "coder", epochs=20, batch_size=512, max_seconds=60, code="conv"),
)
TINY = {"train": 256, "val": 64, "test": 128, "epochs": 1, "batch_size": 32}
STAGE_OVERHEAD_S = 15.0  # a stage's set-up, validation and test scoring beyond its time box, for the budget


def tiny_subset(dataset: Dataset) -> Dataset:
    """The first few samples of each split: the same code on a CPU-sized problem."""
    def head(split: Split, n: int) -> Split:
        return Split(split.x[:n], split.y[:n])

    return replace(dataset, train=head(dataset.train, TINY["train"]), val=head(dataset.val, TINY["val"]),
                   test=head(dataset.test, TINY["test"]))


def hardware(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def speed(history: list[dict], unit: str) -> float:
    """Median units/s over the epochs after the first (the first pays for cuDNN's autotuning and warm-up)."""
    rates = [row[f"{unit}s_per_second"] for row in history]
    return statistics.median(rates[1:] or rates)


def run_stage(stage: Stage, dataset: Dataset, work: Path, base: Path, args: argparse.Namespace) -> dict:
    epochs, batch = (TINY["epochs"], TINY["batch_size"]) if args.tiny else (stage.epochs, stage.batch_size)
    common = {"epochs": epochs, "batch_size": batch, "max_seconds": stage.max_seconds, "device": args.device,
              "precision": args.precision, "progress": False}
    seed_everything(0)
    out = work / stage.name
    if stage.kind == "base":
        model = build_model(args.model, dataset.input_shape, dataset.num_classes)
        result = train_base(model, dataset, out, model_name=args.model, config=BaseTrainConfig(**common),
                            overwrite=True)
        row = {"A_a": result.test["accuracy"], "images_per_second": speed(result.history, "img")}
    else:
        if stage.kind == "parity":
            result = train_parity(base, dataset, build_code(stage.code, stage.k), out,
                                  config=ParityTrainConfig(**common), overwrite=True)
        else:
            code = LearnedCode(stage.k, 1, encoder=stage.code, input_shape=dataset.input_shape,
                               num_outputs=dataset.num_classes)
            result = train_coder(base, dataset, code, out, config=CoderTrainConfig(**common), overwrite=True)
        row = {"A_a": result.test["available_accuracy"], "A_d": result.test["degraded_accuracy"],
               "groups_per_second": speed(result.history, "group")}
    return {"stage": stage.name, "epochs_run": len(result.history), "epochs_planned": epochs,
            "best_epoch": result.best_epoch, "batch_size": batch,
            "train_seconds": sum(row["seconds"] for row in result.history), **row}


def markdown(rows: list[dict], info: dict, wall: float) -> str:
    lines = [f"GPU suite on {info.get('gpu', info['device'])} (torch {info['torch']}, CUDA {info['cuda']}), "
             f"{wall:.0f} s wall time", "",
             "| stage | epochs (best) | batch | training s | images/s | groups/s | A_a | A_d |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        rate = {key: f"{row[key]:,.0f}" if key in row else "—" for key in ("images_per_second", "groups_per_second")}
        a_d = f"{row['A_d']:.2%}" if "A_d" in row else "—"
        lines.append(f"| {row['stage']} | {row['epochs_run']}/{row['epochs_planned']} ({row['best_epoch']}) | "
                     f"{row['batch_size']} | {row['train_seconds']:.1f} | {rate['images_per_second']} | "
                     f"{rate['groups_per_second']} | {row['A_a']:.2%} | {a_d} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where suite.json and suite.md go")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu-suite"), help="run folders (default: %(default)s)")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="wall time for the whole suite; optional stages that would not fit are skipped")
    parser.add_argument("--device", default="auto", help="default: %(default)s (CUDA when present)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA), fp32 or bf16 (default: %(default)s)")
    parser.add_argument("--model", default="resnet18", help="base model (default: %(default)s)")
    parser.add_argument("--tiny", action="store_true", help="a few samples and one epoch per stage: a check, not figures")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = hardware(resolve_device(args.device))
    print(json.dumps(info), flush=True)
    dataset = load_dataset("fashion-mnist")
    if args.tiny:
        dataset = tiny_subset(dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for stage in STAGES:
        elapsed = time.perf_counter() - started
        if not stage.required and elapsed + stage.max_seconds + STAGE_OVERHEAD_S > args.budget_s:
            print(f"{stage.name}: skipped ({elapsed:.0f} s of the {args.budget_s:.0f} s budget used)", flush=True)
            continue
        rows.append(run_stage(stage, dataset, args.work, args.work / "base", args))
        print(json.dumps(rows[-1]), flush=True)
        wall = time.perf_counter() - started
        (args.out / "suite.json").write_text(json.dumps({"hardware": info, "wall_seconds": wall, "stages": rows},
                                                        indent=2) + "\n")  # after every stage: a cut run keeps its rows
        (args.out / "suite.md").write_text(markdown(rows, info, wall))
    print(markdown(rows, info, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
