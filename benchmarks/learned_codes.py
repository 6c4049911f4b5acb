"""Learned encoders and decoders (paper Table IV rows this machine can run), Base-MLP, k = 2.

Run: .venv/bin/python benchmarks/learned_codes.py --dataset fashion-mnist --encoder mlp --loss ce --epochs 60
     [--seed 1] [--residual] [--balanced] [--joint] [--shift 2]
Trains (or reuses) runs/base/DATASET-base-mlp, then one learned code with the same defaults as
`parm train-coder`, and prints A_a, A_d (per number of lost originals), agreement with F, wall time
and median training groups/s as a Markdown table; the figures go to runs/bench/learned_codes/*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from common import ensure_base, markdown_table

from parm.codes import LearnedCode
from parm.codes.learned import ENCODERS
from parm.data import load_dataset
from parm.runtime import seed_everything
from parm.training.coder import LOSSES, CoderTrainConfig, train_coder, variant_suffix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--encoder", choices=ENCODERS, default="mlp")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="ce")
    parser.add_argument("--epochs", type=int, default=CoderTrainConfig().epochs)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--r", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="the code's initial weights and the batches' order")
    parser.add_argument("--residual", action="store_true", help="a linear code's parities plus a learned part (--residual)")
    parser.add_argument("--balanced", action="store_true", help="the worst lost position's loss (parm train-coder --balanced)")
    parser.add_argument("--joint", action="store_true", help="parity models learned with the code (parm train-coder --joint)")
    parser.add_argument("--shift", type=int, default=0, help="shift training images by up to this many pixels (--shift)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/learned_codes"))
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    base = ensure_base(dataset, "base-mlp")
    seed_everything(args.seed)
    code = LearnedCode(args.k, args.r, encoder=args.encoder, input_shape=dataset.input_shape, num_outputs=dataset.num_classes,
                       residual=args.residual)
    variant = variant_suffix(residual=args.residual, balanced=args.balanced, joint=args.joint, shift=args.shift)
    name = f"{args.dataset}-{args.encoder}-{args.loss}{variant}-k{args.k}-r{args.r}-e{args.epochs}-s{args.seed}"
    started = time.perf_counter()
    config = CoderTrainConfig(epochs=args.epochs, loss=args.loss, seed=args.seed, balanced=args.balanced, joint=args.joint,
                              shift=args.shift, progress=False)
    result = train_coder(base, dataset, code, args.out / name, config=config, overwrite=True)
    test = result.test
    row = {
        "dataset": args.dataset, "encoder": args.encoder, "loss": args.loss + variant, "seed": args.seed, "k": args.k,
        "r": args.r,
        "epochs": f"{args.epochs} ({result.best_epoch})", "A_a": test["available_accuracy"],
        **{f"A_d{s['lost']}": s["accuracy"] for s in test["by_lost"]}, "agreement": f"{test['agreement']:.2%}",
        "minutes": f"{(time.perf_counter() - started) / 60:.1f}",
        "groups_per_second": statistics.median(row["groups_per_second"] for row in result.history),
        "val_curve": [round(100 * row["val_degraded_accuracy"], 1) for row in result.history],
    }
    (args.out / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n")
    print(markdown_table([row], {"dataset": "dataset", "encoder": "encoder", "loss": "loss", "seed": "seed", "k": "k", "r": "r",
                                 "epochs": "epochs (best)", "A_a": "A_a", "A_d1": "A_d, 1 lost", "A_d2": "A_d, 2 lost",
                                 "agreement": "agrees with F", "minutes": "wall minutes",
                                 "groups_per_second": "groups/s (median)"}))
    print("validation A_d per epoch:", row["val_curve"])


if __name__ == "__main__":
    main()
