"""What `parm serve` runs: the model it exposes, its instances, its code and its switches.

A deployment is built from a trained run folder (`parm train-parity` or `parm train-coder`: base
model, code and parity models) or, for the uncoded modes, from a base checkpoint alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from parm.codes import Code, LearnedCode
from parm.evaluation.runs import load_coded_run
from parm.models import load_card
from parm.models.checkpoint import WEIGHTS_NAME, weights_path
from parm.serving.coordinator import BASE_POOL, CoordinatorConfig
from parm.serving.instance import InstanceSpec
from parm.serving.modes import plan_pools
from parm.serving.service import ModelInfo, TensorSpec
from parm.training.coded import CODE_NAME
from parm.training.parity import parity_path

INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass(frozen=True)
class ServeOptions:
    """The knobs of `parm serve` that do not come from the trained models.

    ``coding`` holds the coordinator's switches; a coded run's own k and r replace the ones given there
    (which size the uncoded modes of a bare checkpoint), and its hedging delay applies in mode hedged only.
    """

    mode: str = "parm"
    instances: int = 2
    coding: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    default_class: int = 0
    noop: bool = False
    delays: Mapping[int, float] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class Deployment:
    model: ModelInfo
    instances: tuple[InstanceSpec, ...]
    pools: dict[str, list[int]]
    config: CoordinatorConfig
    code: Code | None
    default_output: np.ndarray
    mode: str


def build_deployment(source: str | Path, options: ServeOptions = ServeOptions()) -> Deployment:
    """A deployment of ``source`` (a coded run folder, or a base checkpoint for uncoded modes)."""
    source = Path(source)
    code, base = _load_source(source, options.mode)
    config = options.coding
    if code is not None:
        config = replace(config, k=code.k, r=code.r)
    if options.mode != "hedged":
        config = replace(config, hedge_after=None)
    card = load_card(base)
    pools = plan_pools(options.mode, options.instances, config.k, config.r)
    count = sum(len(ids) for ids in pools.values())  # instance ids run 0..count-1 over all pools
    unknown = sorted(i for i in options.delays if not 0 <= i < count)
    if unknown:
        raise ValueError(f"--slow names instances {unknown}, but this deployment has instances 0..{count - 1}")
    if not 0 <= options.default_class < card.num_classes:
        raise ValueError(f"--default-class must be in 0..{card.num_classes - 1}, got {options.default_class}")
    specs = tuple(
        InstanceSpec(
            id=i, pool=pool,
            checkpoint=None if options.noop else str(_checkpoint_of(pool, source, base, code)),
            output_shape=(card.num_classes,), delay_s=options.delays.get(i, 0.0),
        )
        for pool, ids in pools.items() for i in ids
    )
    default_output = np.full(card.num_classes, -10.0, dtype=np.float32)
    default_output[options.default_class] = 10.0
    model = ModelInfo(
        name=options.name or f"{card.dataset}-{card.model}",
        inputs=(TensorSpec(INPUT_NAME, "FP32", (-1, *card.input_shape)),),
        outputs=(TensorSpec(OUTPUT_NAME, "FP32", (-1, card.num_classes)),),
        parameters={"mode": options.mode, "k": str(config.k), "r": str(config.r),
                    "code": code.name if code is not None else "none", "classes": json.dumps(list(card.classes))},
    )
    return Deployment(model, specs, pools, config, code if options.mode == "parm" else None, default_output,
                      options.mode)


def _load_source(source: Path, mode: str) -> tuple[Code | None, Path]:
    """The code (None for a bare checkpoint) and base checkpoint behind ``source``."""
    if (source / CODE_NAME).is_file():
        return load_coded_run(source)
    if weights_path(source).is_file():
        if mode == "parm":
            raise ValueError(
                f"{source} is a base checkpoint; `--mode parm` needs a coded run folder from "
                "`parm train-parity` or `parm train-coder` (or pick --mode none, equal-resources or hedged)"
            )
        return None, source
    raise FileNotFoundError(
        f"{source} is neither a coded run folder (with {CODE_NAME}) nor a checkpoint (with {WEIGHTS_NAME})"
    )


def _checkpoint_of(pool: str, source: Path, base: Path, code: Code | None) -> Path:
    """A base instance runs F; a parity instance its parity model (F itself for a learned code)."""
    if pool == BASE_POOL or code is None or isinstance(code, LearnedCode):
        return weights_path(base)
    return parity_path(source, int(pool.rsplit("-", 1)[1]))
