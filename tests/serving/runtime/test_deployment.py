"""Deploying a training-free (Berrut) run: F itself on the extra instances, the numpy codec, exact answers where
the code is exact (k = 2, r = 1 and an affine F: the extra query is the average, the decode the line through it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from parm.codes import BerrutCode
from parm.models import ModelCard, build_model, save_checkpoint
from parm.runs import BaseRun, TrainingFreeRun, open_run, write_training_free_run
from parm.serving import Frontend, ServeOptions, build_deployment
from parm.serving.core.codec import LinearCodec, codec_for
from parm.serving.core.coordinator import ORIGINAL, RECONSTRUCTED, CoordinatorConfig
from parm.serving.runtime.deployment import pool_model_name
from parm.tasks import class_output

from ..exact_runs import CLASSES, INPUT_SHAPE
from .test_frontend import InProcessBackend, infer_once, queries


def berrut_run(root: Path, k: int = 2, r: int = 1) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    card = ModelCard("logistic-regression", INPUT_SHAPE, tuple(f"c{i}" for i in range(CLASSES)), "toy", 0)
    base = build_model("logistic-regression", INPUT_SHAPE, CLASSES).eval()
    run = write_training_free_run(root / "run", BerrutCode(k, r), BaseRun(save_checkpoint(base, card, root / "base")))
    return run.path, base


def test_a_berrut_run_deploys_f_on_its_extra_instances(tmp_path: Path) -> None:
    path, _ = berrut_run(tmp_path, k=4, r=2)
    run = open_run(path)
    assert isinstance(run, TrainingFreeRun) and run.parity_checkpoint(1) == run.base.weights
    deployment = build_deployment(path, ServeOptions(instances=4))
    assert isinstance(deployment.code, BerrutCode) and (deployment.config.k, deployment.config.r) == (4, 2)
    assert len(deployment.instances) == 6 and {spec.checkpoint for spec in deployment.instances} == {str(run.base.weights)}
    assert deployment.model.parameters["code"] == "berrut"
    assert {pool_model_name(run, pool) for pool in deployment.pools} == {"toy-logistic-regression"}
    assert isinstance(codec_for(deployment.code), LinearCodec)  # numpy matrices on the serving path


def test_a_held_instance_is_rebuilt_exactly_by_the_berrut_code(tmp_path: Path) -> None:
    path, base = berrut_run(tmp_path)
    deployment = build_deployment(path, ServeOptions(instances=2, coding=CoordinatorConfig(group_wait=0.0)))
    prediction = infer_once(Frontend(deployment, InProcessBackend(held=[0]), max_pending=4), queries(2))
    with torch.no_grad():
        np.testing.assert_allclose(prediction.outputs, base(torch.from_numpy(queries(2))).numpy(), atol=1e-5)
    assert prediction.answers == (RECONSTRUCTED, ORIGINAL)  # query 0 went to the held instance 0


def test_the_default_answer_is_the_tasks_own_from_the_card(tmp_path: Path) -> None:
    """A box regressor answers its training split's mean box at the deadline; a classifier its most common class,
    unless --default-class says otherwise; a card older than tasks keeps class 0."""
    model = build_model("logistic-regression", INPUT_SHAPE, 4)
    mean_box = (0.25, 0.2, 0.75, 0.7)
    boxes = ModelCard("logistic-regression", INPUT_SHAPE, ("x_min", "y_min", "x_max", "y_max"), "toy", 0,
                      task="localization", default_output=mean_box)
    path = save_checkpoint(model, boxes, tmp_path / "boxes")
    deployment = build_deployment(path, ServeOptions(mode="none"))
    np.testing.assert_allclose(deployment.default_output, mean_box)
    assert deployment.model.parameters["task"] == "localization"
    with pytest.raises(ValueError, match="--default-class is for classifiers"):
        build_deployment(path, ServeOptions(mode="none", default_class=1))
    logits = tuple(float(v) for v in class_output(2, 4))
    labels = ModelCard("logistic-regression", INPUT_SHAPE, ("a", "b", "c", "d"), "toy", 0, default_output=logits)
    path = save_checkpoint(model, labels, tmp_path / "labels")
    assert build_deployment(path, ServeOptions(mode="none")).default_output.argmax() == 2
    assert build_deployment(path, ServeOptions(mode="none", default_class=3)).default_output.argmax() == 3
    with pytest.raises(ValueError, match="0..3"):
        build_deployment(path, ServeOptions(mode="none", default_class=4))
    old = save_checkpoint(model, ModelCard("logistic-regression", INPUT_SHAPE, ("a", "b", "c", "d"), "toy", 0),
                          tmp_path / "old")
    assert build_deployment(old, ServeOptions(mode="none")).default_output.argmax() == 0
