"""What `parm serve` runs: the model it exposes, its instances, its code and its switches.

A deployment is built from a coded run folder (`parm train-parity`, `parm train-coder` or `parm make-run`:
base model, code and parity models) or, for the uncoded modes, from a base checkpoint alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from parm.codes import Code, MatrixCode
from parm.data.dataset import Preprocess
from parm.models import ModelCard
from parm.runs import BaseRun, CodedRun, open_run
from parm.serving.core.coordinator import CoordinatorConfig
from parm.serving.core.pools import BASE_POOL, Pool, model_name, plan_pools, pools_of_sizes
from parm.serving.http.model import ModelInfo, TensorSpec
from parm.serving.instance import InstanceSpec
from parm.tasks import class_output

INPUT_NAME, OUTPUT_NAME = "input", "logits"
OUT_OF_RANGE = ("refuse", "clip")


@dataclass(frozen=True)
class ServeOptions:
    """The knobs of `parm serve` that do not come from the trained models.

    ``coding`` holds the coordinator's switches; a coded run's own k and r replace the ones given there
    (which size the uncoded modes of a bare checkpoint), and its hedging delay applies in mode hedged only.
    """

    mode: str = "parm"
    instances: int = 2
    coding: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    default_class: int | None = None  # a classifier's default answer; None: the run's task's (its card's)
    noop: bool = False
    delays: Mapping[int, float] = field(default_factory=dict)
    wrong: Mapping[int, str] = field(default_factory=dict)  # Byzantine instances: id -> `WRONG_KINDS` entry
    name: str | None = None
    out_of_range: str = "refuse"  # inputs outside the training data's range: refuse them (400) or clip them in
    pool_sizes: Mapping[Pool, int] | None = None  # instances per pool, for a cluster that lists its own (remote)
    engine: str = "torch"  # what computes each instance's model (`parm.serving.engines`)

    def __post_init__(self) -> None:
        if self.out_of_range not in OUT_OF_RANGE:
            raise ValueError(f"out_of_range must be one of {', '.join(OUT_OF_RANGE)}, got {self.out_of_range!r}")


@dataclass(frozen=True)
class Deployment:
    model: ModelInfo
    instances: tuple[InstanceSpec, ...]
    pools: dict[Pool, list[int]]
    config: CoordinatorConfig
    code: Code | None
    default_output: np.ndarray
    mode: str


def build_deployment(source: str | Path, options: ServeOptions = ServeOptions()) -> Deployment:
    """A deployment of ``source`` (a coded run folder, or a base checkpoint for uncoded modes)."""
    run = _open_source(Path(source), options.mode)
    code = run.load_code() if isinstance(run, CodedRun) else None
    config = options.coding
    if code is not None:
        config = replace(config, k=code.k, r=code.r)
    if options.mode != "hedged":
        config = replace(config, hedge_after=None)
    if config.verify is not None and not (options.mode == "parm" and isinstance(code, MatrixCode) and config.r >= 2):
        raise ValueError("--verify checks a group's outputs against each other: it needs --mode parm and a run of a "
                         "linear or Berrut code with r >= 2 (e.g. parm train-parity --code linear --r 2, or "
                         "parm make-run --code berrut --r 2)")
    card = run.base.card()
    pools = (plan_pools(options.mode, options.instances, config.k, config.r) if options.pool_sizes is None
             else pools_of_sizes(options.mode, dict(options.pool_sizes), config.r))
    count = sum(len(ids) for ids in pools.values())  # instance ids run 0..count-1 over all pools
    for flag, named in (("--slow", options.delays), ("--byzantine", options.wrong)):
        unknown = sorted(i for i in named if not 0 <= i < count)
        if unknown:
            raise ValueError(f"{flag} names instances {unknown}, but this deployment has instances 0..{count - 1}")
    default_output = _default_output(card, options.default_class)
    specs = tuple(
        InstanceSpec(
            id=i, pool=pool,
            checkpoint=None if options.noop else str(checkpoint_of(pool, run)),
            output_shape=(card.num_classes,), delay_s=options.delays.get(i, 0.0), wrong=options.wrong.get(i),
            engine=options.engine,
        )
        for pool, ids in pools.items() for i in ids
    )
    model = ModelInfo(
        name=options.name or base_model_name(card),
        inputs=(TensorSpec(INPUT_NAME, "FP32", (-1, *card.input_shape), bounds=input_bounds(card),
                           clip=options.out_of_range == "clip"),),
        outputs=(TensorSpec(OUTPUT_NAME, "FP32", (-1, card.num_classes)),),
        parameters={"mode": options.mode, "k": str(config.k), "r": str(config.r),
                    "code": code.name if code is not None else "none", "task": card.task,
                    "classes": json.dumps(list(card.classes))},
    )
    return Deployment(model, specs, pools, config, code if options.mode == "parm" else None, default_output,
                      options.mode)


def _default_output(card: ModelCard, default_class: int | None) -> np.ndarray:
    """What a query is answered at its deadline: ``default_class`` of a classifier, else the card's task default (a
    classifier's most common training class, a box regressor's mean box; class 0 for cards older than tasks)."""
    if default_class is not None:
        if card.task != "classification":
            raise ValueError(f"--default-class is for classifiers, but this run's task is {card.task}: its default "
                             "answer comes from its training data")
        try:
            return class_output(default_class, card.num_classes).numpy()
        except ValueError as error:
            raise ValueError(f"--default-class: {error}") from None
    if card.default_output is None:
        return class_output(0, card.num_classes).numpy()
    return np.asarray(card.default_output, dtype=np.float32)


def base_model_name(card: ModelCard) -> str:
    """The name F is served and exported under: ``DATASET-MODEL``."""
    return f"{card.dataset}-{card.model}"


def pool_model_name(run: BaseRun | CodedRun, pool: Pool) -> str:
    """The name ``pool``'s model is served under on a model server (`parm instance`, `parm export`): F's name for
    the base pool and for pools that run F itself (a learned or training-free code's parity pools), ``BASE-parity-J``
    otherwise."""
    runs_base = pool.parity is None or checkpoint_of(pool, run) == run.base.weights
    return model_name(base_model_name(run.base.card()), BASE_POOL if runs_base else pool)


def input_bounds(card: ModelCard) -> tuple[float, float] | None:
    """The range of F's preprocessed training inputs: pixels in [0, 1], then per-channel (x - mean) / std; None for
    float features (spectrograms), whose range is not fixed."""
    preprocess = Preprocess.from_dict(card.preprocess)
    if not preprocess.pixels:
        return None
    if preprocess.mean is None or preprocess.std is None:
        return 0.0, 1.0
    lows = [(0.0 - m) / s for m, s in zip(preprocess.mean, preprocess.std, strict=True)]
    highs = [(1.0 - m) / s for m, s in zip(preprocess.mean, preprocess.std, strict=True)]
    return min(lows), max(highs)


def _open_source(source: Path, mode: str) -> BaseRun | CodedRun:
    """The run behind ``source``; a bare base checkpoint serves the uncoded modes only."""
    run = open_run(source)
    if isinstance(run, BaseRun) and mode == "parm":
        raise ValueError(
            f"{source} is a base checkpoint; `--mode parm` needs a coded run folder from "
            "`parm train-parity`, `parm train-coder` or `parm make-run` (or pick --mode none, equal-resources or hedged)"
        )
    return run


def checkpoint_of(pool: Pool, run: BaseRun | CodedRun) -> Path:
    """A base instance runs F; a parity instance what its run says (its parity model, or F for a learned or
    training-free code)."""
    return run.base.weights if pool.parity is None else run.parity_checkpoint(pool.parity)
