"""The --reuse pass of benchmarks/codes_vs_k.py over every finished run (linear-r2 at k = 12 was not trained)."""
from pathlib import Path
from parm.evaluation.runs import evaluate_run
from parm.evaluation.report import results_table, write_evaluation_report
root = Path("runs/bench/codes_vs_k")
runs = []
for name in ("sum", "concat", "learned-mlp", "berrut", "linear-r2", "berrut-r2"):
    for k in (2, 3, 4, 6, 8, 10, 12):
        path = root / f"{name}-k{k}"
        if (path / "code.json").exists():
            runs.append(evaluate_run(path, device="cpu"))
            print(name, k, [f"{s.lost}: {s.accuracy:.2%}" for s in runs[-1].evaluation.by_lost], flush=True)
out = Path("docs/codes/codes-vs-k-all")
write_evaluation_report(runs, out)
print(results_table(runs))
