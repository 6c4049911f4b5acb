"""The tolerance for `parm serve --verify`, measured on the validation split: how far clean groups' syndromes go,
and how often one wrong output is then found, located, or missed (offline, the serving code's own detector).

Run: .venv/bin/python benchmarks/byzantine_tolerance.py runs/parity/fashion-mnist-base-mlp-linear-k2-r2
For each group of the validation split (seeded, as `parm evaluate` groups the test split), the k + r outputs are
F's and the parity models'; then one slot at a time is made wrong (noise of the outputs' RMS, or another group's
output, as `parm serve --byzantine` does). Prints, per tolerance, the share of clean groups flagged (false alarms),
and of wrong ones found and located in the right slot, and writes the table as JSON beside the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from parm.codes import MatrixCode
from parm.codes.byzantine import CONSISTENT, locate_wrong, syndromes
from parm.evaluation import group_indices, parity_outputs, predict_logits
from parm.runs import open_coded_run

TOLERANCES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def group_outputs(run_dir: Path, seed: int) -> tuple[MatrixCode, torch.Tensor]:
    """The code and every validation group's k + r outputs (G, k + r, m), float64."""
    run = open_coded_run(run_dir)
    code = run.load_code()
    if not isinstance(code, MatrixCode) or code.r < 2:
        raise SystemExit(f"{run_dir}: --verify needs a linear or Berrut run with r >= 2, this is {code!r}")
    base, _ = run.base.load()
    dataset = run.base.dataset()
    groups = group_indices(len(dataset.val), code.k, seed)
    with torch.no_grad():
        originals = predict_logits(base, dataset.val, dataset.preprocess)[groups]
        parities = parity_outputs(run.load_parity_models(), code, dataset.val, dataset.preprocess, groups)
    return code, torch.cat([originals, parities], dim=1).double()


def corrupted(outputs: torch.Tensor, slot: int, kind: str, rng: np.random.Generator) -> torch.Tensor:
    wrong = outputs.clone()
    if kind == "noise":
        scale = outputs[:, slot].pow(2).mean(dim=1, keepdim=True).sqrt()
        wrong[:, slot] += scale * torch.from_numpy(rng.normal(size=wrong[:, slot].shape))
    else:  # another group's output in that slot
        wrong[:, slot] = outputs[:, slot].roll(1, dims=0)
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a linear or Berrut run with r >= 2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    code, outputs = group_outputs(args.run, args.seed)
    scale = outputs[:, : code.k].flatten(1).norm(dim=1)
    relative = (syndromes(code, outputs).flatten(1).norm(dim=1) / scale).numpy()
    print(f"{len(outputs)} validation groups; clean syndrome / originals' norm: median {np.median(relative):.3f}, "
          f"p99 {np.quantile(relative, 0.99):.3f}, p99.9 {np.quantile(relative, 0.999):.3f}, max {relative.max():.3f}")
    rows = []
    print("| tolerance | clean groups flagged | kind | wrong groups found | located in the right slot |")
    print("|---:|---:|---|---:|---:|")
    rng = np.random.default_rng(args.seed)
    for tolerance in TOLERANCES:
        flagged = float((locate_wrong(code, outputs, tolerance=tolerance) != CONSISTENT).float().mean())
        for kind in ("noise", "stale"):
            found = located = 0
            for slot in range(code.n):
                slots = locate_wrong(code, corrupted(outputs, slot, kind, rng), tolerance=tolerance)
                found += int((slots != CONSISTENT).sum())
                located += int((slots == slot).sum())
            total = len(outputs) * code.n
            rows.append({"tolerance": tolerance, "clean_flagged": flagged, "kind": kind, "found": found / total,
                         "located": located / total})
            print(f"| {tolerance} | {flagged:.2%} | {kind} | {found / total:.2%} | {located / total:.2%} |")
    (args.run / "byzantine_tolerance.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
