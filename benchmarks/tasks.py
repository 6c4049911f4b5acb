"""The paper's other tasks (issue 18): object localization and speech recognition, base model and parity models.

Run: .venv/bin/python benchmarks/tasks.py [--tasks localization speech] [--out runs/bench/tasks]
Every setting below was fixed before the first measurement: the datasets reachable here (boxed Fashion-MNIST, not
CUB-200; espeak-ng speech, not recordings), the models (a small CNN for boxes, since ResNet-18 at 64x64 costs about
2.2 GFLOPs per image and would take hours per epoch on 2 CPU cores; the paper's VGG-11 for speech), the epochs and
the codes; everything else is `parm train-base` / `parm train-parity`'s defaults (for boxes the parity loss is the
paper's MSE). Prints A_a, A_d and the default baseline in each task's measure with wall times, writes results.json,
results.md and, for boxes, boxes.png (ground truth, F's box and the reconstruction, as the paper's Fig. 10).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from parm.codes import build_code
from parm.data import load_dataset
from parm.evaluation import group_indices, parity_outputs, predict_logits
from parm.evaluation.runs import evaluate_run
from parm.models import build_model
from parm.runs import open_coded_run
from parm.runtime import seed_everything
from parm.tasks import get_task
from parm.training import BaseTrainConfig, train_base
from parm.training.parity import ParityTrainConfig, train_parity

# task: (dataset, base model, base epochs, parity epochs, codes at k = 2), fixed before the first run
SETTINGS = {
    "localization": ("fashion-mnist-boxes", "small-cnn", 10, 20, ("sum", "concat")),
    "speech": ("espeak-commands", "vgg11", 15, 15, ("sum",)),
}
K = 2
FIGURE_GROUPS = 4  # groups of the test split drawn in boxes.png, each with its first original lost


def plot_boxes(run_dir: Path, path: Path) -> None:
    """Test canvases with the true box, F's box and the box rebuilt from the parity model when F's is lost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    run = open_coded_run(run_dir)
    code, (base, _), parity = run.load_code(), run.base.load(), run.load_parity_models()
    dataset = run.base.dataset()
    groups = group_indices(len(dataset.test), code.k, 0)[:FIGURE_GROUPS]
    members = groups[:, 0]
    f_out = predict_logits(base, dataset.test, dataset.preprocess)[groups]  # (G, k, 4)
    outputs = torch.cat([f_out, parity_outputs(parity, code, dataset.test, dataset.preprocess, groups)], dim=1)
    lost_first = torch.tensor([False, *[True] * (code.k - 1), *[True] * code.r])
    rebuilt = code.decode(outputs, lost_first)[:, 0]
    fig, axes = plt.subplots(1, FIGURE_GROUPS, figsize=(2.6 * FIGURE_GROUPS, 2.9))
    side = dataset.input_shape[-1]
    for ax, index, own, again in zip(axes, members, f_out[:, 0], rebuilt):
        ax.imshow(dataset.test.x[index, 0], cmap="gray")
        for box, colour, label in ((dataset.test.y[index], "lime", "truth"), (own, "tab:blue", "F"),
                                   (again, "tab:red", "reconstructed")):
            x0, y0, x1, y1 = (side * box).tolist()
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=colour, lw=1.6, label=label))
        ax.set_axis_off()
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.8)
    fig.suptitle(f"{run.base.card().model} on {dataset.name}: true box, F's, and rebuilt (k={code.k}, {code.name} code)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_task(task_name: str, out: Path) -> list[dict]:
    dataset_name, model_name, base_epochs, parity_epochs, codes = SETTINGS[task_name]
    dataset = load_dataset(dataset_name)
    task = get_task(dataset.task)
    base_dir = out / f"{dataset_name}-{model_name}"
    seed_everything(0)
    started = time.perf_counter()
    base = train_base(build_model(model_name, dataset.input_shape, dataset.num_classes), dataset, base_dir,
                      model_name=model_name, config=BaseTrainConfig(epochs=base_epochs, progress=False), overwrite=True)
    base_seconds = time.perf_counter() - started
    print(f"{task_name}: base {model_name} {task.metric_label} {task.format(base.test[task.metric])} "
          f"in {base_seconds:.0f} s", flush=True)
    rows = []
    for code_name in codes:
        seed_everything(0)
        started = time.perf_counter()
        run_dir = out / f"{dataset_name}-{model_name}-{code_name}-k{K}"
        train_parity(base_dir, dataset, build_code(code_name, K), run_dir,
                     config=ParityTrainConfig(epochs=parity_epochs, progress=False), overwrite=True)
        ev = evaluate_run(run_dir, device="cpu").evaluation
        rows.append({"task": task_name, "dataset": dataset_name, "model": model_name, "code": code_name, "k": K,
                     "measure": task.metric_label, "A_a": ev.available_accuracy, "A_d": ev.degraded_accuracy,
                     "default": ev.default_accuracy, "A_d_measures": ev.degraded_measures,
                     "base_epochs": base_epochs, "parity_epochs": parity_epochs, "base_seconds": base_seconds,
                     "parity_seconds": time.perf_counter() - started, "run": str(run_dir)})
        print(f"{task_name} {code_name}: A_a {task.format(ev.available_accuracy)} A_d {task.format(ev.degraded_accuracy)}"
              f" default {task.format(ev.default_accuracy)} ({rows[-1]['parity_seconds']:.0f} s)", flush=True)
        if task.name == "localization":
            plot_boxes(run_dir, out / f"boxes-{code_name}.png")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=Path("runs/bench/tasks"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.tasks:
        rows += run_task(name, args.out)
        (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")  # kept after every task
    lines = ["| task | dataset | model | code | k | measure | A_a | A_d | default | base | parity models |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        show = get_task("localization" if row["task"] == "localization" else "classification").format
        lines.append(f"| {row['task']} | {row['dataset']} | {row['model']} | {row['code']} | {row['k']} | "
                     f"{row['measure']} | {show(row['A_a'])} | {show(row['A_d'])} | {show(row['default'])} | "
                     f"{row['base_epochs']} epochs, {row['base_seconds'] / 60:.1f} min | "
                     f"{row['parity_epochs']} epochs, {row['parity_seconds'] / 60:.1f} min |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
