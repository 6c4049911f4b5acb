import sys; sys.path.insert(0, "benchmarks")  # run from the repository root: the fit probe of docs/RESULTS.md
import numpy as np, torch
from pathlib import Path
from byzantine_tolerance import group_outputs, corrupted
from parm.codes.byzantine import locate_wrong, CONSISTENT
code, out = group_outputs(Path("runs/parity/fashion-mnist-base-mlp-linear-k2-r2"), 0)
rng = np.random.default_rng(0)
for fit in (0.1, 0.3, 0.5, 0.7, 1.0):
    for kind in ("noise", "stale"):
        loc = tot = unres = 0
        per = []
        for slot in range(code.n):
            s = locate_wrong(code, corrupted(out, slot, kind, rng), tolerance=0.5, fit=fit)
            loc += int((s == slot).sum()); unres += int((s == code.n).sum()); tot += len(s)
            per.append(round(float((s == slot).float().mean()), 3))
        print(fit, kind, round(loc/tot, 3), 'unresolved', round(unres/tot, 3), 'per slot', per)
