"""A run as a Triton model repository: one folder per model, its config.pbtxt, and a cluster file template.

Triton (and any server that reads its layout) loads ``DIR/<model>/1/<file>`` with ``DIR/<model>/config.pbtxt``;
parm's remote backend then finds each pool's model through ``DIR/cluster.yaml``. Models are named as every parm
server names them (`parm.serving.runtime.deployment.pool_model_name`), so one cluster file fits parm's servers and Triton alike.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from parm.export.formats import ExportError, Format, get_format, write_checked
from parm.models import load_card, load_checkpoint
from parm.runs import CodedRun, Run, open_run
from parm.serving.backends.remote.cluster import Endpoint, dump_cluster
from parm.serving.core.pools import BASE_POOL, Pool, parity_pool
from parm.serving.runtime.deployment import checkpoint_of, pool_model_name

CONFIG_NAME = "config.pbtxt"
CLUSTER_NAME = "cluster.yaml"
VERSION = "1"
MAX_BATCH_SIZE = 64
PLACEHOLDER_URL = "http://127.0.0.1:8000"  # one Triton server hosting every model of the repository
CLUSTER_HEADER = """\
Instances for `parm serve --backend remote --instances-file {path}`, written by `parm export`.
One entry per instance: the URL of a server hosting the model, and the model's name there.
Every entry points at one Triton server at {url} (`tritonserver --model-repository {repo}`);
edit the URLs to where your servers run, and add entries (same pool and model, another URL) to add instances."""


@dataclass(frozen=True)
class ExportedModel:
    """One model of the repository: its name, the pools whose instances run it, its file and the measured
    largest |exported - PyTorch| logit difference relative to the largest logit (`formats.relative_diff`)."""

    name: str
    pools: tuple[Pool, ...]
    path: Path
    max_diff: float


def pool_checkpoints(run: Run) -> dict[Pool, Path]:
    """The checkpoint each pool's instances run: F for the base pool, the run's parity checkpoint for parity j
    (F itself for a learned code)."""
    pools = [BASE_POOL, *(parity_pool(j) for j in range(run.r))] if isinstance(run, CodedRun) else [BASE_POOL]
    return {pool: checkpoint_of(pool, run) for pool in pools}


def plan_models(run: Run) -> dict[str, tuple[Path, tuple[Pool, ...]]]:
    """Model name -> (checkpoint, pools running it): a checkpoint several pools share is exported once, under
    the name of the first pool that runs it."""
    by_checkpoint: dict[Path, list[Pool]] = {}
    for pool, checkpoint in pool_checkpoints(run).items():
        by_checkpoint.setdefault(checkpoint.resolve(), []).append(pool)
    return {pool_model_name(run, pools[0]): (checkpoint, tuple(pools)) for checkpoint, pools in by_checkpoint.items()}


def config_pbtxt(name: str, fmt: Format, input_dims: tuple[int, ...], output_dims: tuple[int, ...],
                 max_batch_size: int = MAX_BATCH_SIZE) -> str:
    """Triton's model configuration: FP32 tensors, dims without the batch dimension, which is dynamic (up to
    ``max_batch_size``) and batched by Triton's dynamic batcher."""

    def tensor(tensor_name: str, dims: tuple[int, ...]) -> str:
        return (f'  {{\n    name: "{tensor_name}"\n    data_type: TYPE_FP32\n'
                f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')

    return (f'name: "{name}"\nplatform: "{fmt.platform}"\nmax_batch_size: {max_batch_size}\n'
            f"input [\n{tensor(fmt.input_name, input_dims)}\n]\n"
            f"output [\n{tensor(fmt.output_name, output_dims)}\n]\n"
            "dynamic_batching { }\n")


def cluster_template(models: list[ExportedModel], fmt: Format, out: Path) -> str:
    """A cluster file with one instance per pool, every one at `PLACEHOLDER_URL`, and how to edit it on top."""
    endpoints = [Endpoint(pool=pool, url=PLACEHOLDER_URL, model=model.name, input=fmt.input_name,
                          output=fmt.output_name)
                 for model in models for pool in model.pools]
    endpoints.sort(key=lambda e: -1 if e.pool.parity is None else e.pool.parity)  # base, parity-0, ...
    header = CLUSTER_HEADER.format(path=out / CLUSTER_NAME, url=PLACEHOLDER_URL, repo=out)
    return dump_cluster(endpoints, header)


def prepare_repository(out: Path, *, force: bool) -> None:
    """Make ``out`` ready to hold a repository: refuse a non-empty folder unless ``force``, and then remove the
    model folders of an earlier export (Triton would load every one it finds) and its cluster file."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file: give --out a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} is not empty: pick another --out, or pass --force to replace the export there")
        for stale in out.iterdir():
            if stale.is_dir() and (stale / CONFIG_NAME).is_file():
                shutil.rmtree(stale)
        (out / CLUSTER_NAME).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def export_run(source: str | Path, out: str | Path, fmt: str = "onnx", *, force: bool = False,
               max_batch_size: int = MAX_BATCH_SIZE, seed: int = 0,
               report: Callable[[ExportedModel], None] | None = None) -> list[ExportedModel]:
    """Export the base model and every parity model of ``source`` (a coded run folder or a base checkpoint) to a
    Triton model repository at ``out``, checking each against PyTorch; ``report`` hears of each model written."""
    form = get_format(fmt)
    form.require()
    if max_batch_size < 1:
        raise ExportError(f"--max-batch-size must be at least 1, got {max_batch_size}")
    run = open_run(source)
    plan = plan_models(run)
    for checkpoint, _ in plan.values():
        load_card(checkpoint)  # every checkpoint readable before anything is written
    out = Path(out)
    prepare_repository(out, force=force)
    models = []
    for name, (checkpoint, pools) in plan.items():
        model, card = load_checkpoint(checkpoint)
        folder = out / name
        (folder / VERSION).mkdir(parents=True, exist_ok=True)
        path = folder / VERSION / form.filename
        diff = write_checked(form, model, card.input_shape, path, seed=seed)
        (folder / CONFIG_NAME).write_text(config_pbtxt(name, form, card.input_shape, (card.num_classes,),
                                                       max_batch_size))
        models.append(ExportedModel(name, pools, path, diff))
        if report is not None:
            report(models[-1])
    (out / CLUSTER_NAME).write_text(cluster_template(models, form, out))
    return models
