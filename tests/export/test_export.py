"""`parm export`: a run as a Triton model repository, each model run back and compared with PyTorch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from parm.cli import main
from parm.codes import BerrutCode, LearnedCode
from parm.export import CLUSTER_NAME, TOLERANCE, ExportError, export_run
from parm.export.formats import FORMATS, write_checked
from parm.models import build_model
from parm.runs import BaseRun, CoderRun, open_run, write_training_free_run
from parm.serving.backends.remote.cluster import load_cluster
from parm.serving.core.pools import BASE_POOL, parity_pool
from serving.exact_runs import CLASSES, INPUT_SHAPE, affine_run

from .models import BASE, expected_models, pytorch


def batches(seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs of batch 1 and 5: the batch dimension must be dynamic."""
    rng = np.random.default_rng(seed)
    return [rng.random((n, *INPUT_SHAPE), dtype=np.float32) for n in (1, 5)]


def read_config(folder: Path) -> model_config_pb2.ModelConfig:
    """config.pbtxt parsed with Triton's own ModelConfig schema: a field Triton does not know fails here."""
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("r", [1, 2])
def test_onnx_repository_matches_pytorch_for_base_and_every_parity_model(tmp_path, r):
    run_path, _ = affine_run(tmp_path, k=2, r=r)
    out = tmp_path / "repo"
    exported = export_run(run_path, out, "onnx")
    models = expected_models(run_path)
    assert [m.name for m in exported] == list(models)
    assert sorted(p.name for p in out.iterdir()) == sorted([*models, CLUSTER_NAME])
    for model in exported:
        assert model.path == out / model.name / "1" / "model.onnx" and 0 <= model.max_diff <= TOLERANCE
        config = read_config(out / model.name)
        assert (config.name, config.platform, config.max_batch_size) == (model.name, "onnxruntime_onnx", 64)
        (tensor_in,), (tensor_out,) = config.input, config.output
        assert (tensor_in.name, list(tensor_in.dims), tensor_in.data_type) == \
            ("input", list(INPUT_SHAPE), model_config_pb2.TYPE_FP32)
        assert (tensor_out.name, list(tensor_out.dims), tensor_out.data_type) == \
            ("logits", [CLASSES], model_config_pb2.TYPE_FP32)
        assert config.HasField("dynamic_batching")
        graph = onnx.load(str(model.path)).graph
        assert [d.dim_param for d in (graph.input[0].type.tensor_type.shape.dim[0],
                                      graph.output[0].type.tensor_type.shape.dim[0])] == ["batch", "batch"]
        session = onnxruntime.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
        for x in batches():
            (logits,) = session.run(["logits"], {"input": x})
            assert logits.shape == (len(x), CLASSES)
            np.testing.assert_allclose(logits, pytorch(models[model.name], x), rtol=0, atol=TOLERANCE)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_round_trip_uses_tritons_positional_names(tmp_path):
    run_path, _ = affine_run(tmp_path, k=2, r=2)
    out = tmp_path / "repo"
    exported = export_run(run_path, out, "torchscript")
    models = expected_models(run_path)
    for model in exported:
        assert model.path == out / model.name / "1" / "model.pt" and model.max_diff <= TOLERANCE
        config = read_config(out / model.name)
        assert config.platform == "pytorch_libtorch"
        assert (config.input[0].name, config.output[0].name) == ("input__0", "logits__0")
        loaded = torch.jit.load(str(model.path))
        for x in batches(1):
            with torch.inference_mode():
                np.testing.assert_allclose(loaded(torch.from_numpy(x)).numpy(), pytorch(models[model.name], x),
                                           rtol=0, atol=TOLERANCE)
    endpoints = load_cluster(out / CLUSTER_NAME)
    assert {(e.input, e.output) for e in endpoints} == {("input__0", "logits__0")}


def test_cluster_template_names_one_instance_per_pool_and_loads_back(tmp_path):
    run_path, _ = affine_run(tmp_path, k=2, r=2)
    out = tmp_path / "repo"
    export_run(run_path, out)
    text = (out / CLUSTER_NAME).read_text()
    assert text.startswith("# ") and "add entries" in text
    endpoints = load_cluster(out / CLUSTER_NAME)
    assert [(e.pool, e.model) for e in endpoints] == [
        (BASE_POOL, BASE), (parity_pool(0), f"{BASE}-parity-0"), (parity_pool(1), f"{BASE}-parity-1")]
    assert {(e.url, e.input, e.output, e.binary) for e in endpoints} == {("http://127.0.0.1:8000", "input", "logits",
                                                                         True)}


def test_a_learned_code_exports_f_once_and_points_its_parity_pools_at_it(tmp_path):
    run_path, base = affine_run(tmp_path)
    code = LearnedCode(2, 2, input_shape=INPUT_SHAPE, num_outputs=CLASSES)
    coder = CoderRun.create(tmp_path / "coder", code, BaseRun(open_run(run_path).base.path))
    out = tmp_path / "repo"
    (model,) = export_run(coder.path, out)
    assert model.name == BASE and model.pools == (BASE_POOL, parity_pool(0), parity_pool(1))
    assert [(str(e.pool), e.model) for e in load_cluster(out / CLUSTER_NAME)] == [
        ("base", BASE), ("parity-0", BASE), ("parity-1", BASE)]


def test_a_berrut_run_exports_f_once_for_every_pool(tmp_path):
    run_path, _ = affine_run(tmp_path)
    berrut = write_training_free_run(tmp_path / "berrut", BerrutCode(3, 2), BaseRun(open_run(run_path).base.path))
    (model,) = export_run(berrut.path, tmp_path / "repo")
    assert model.name == BASE and model.pools == (BASE_POOL, parity_pool(0), parity_pool(1))


@pytest.mark.parametrize(("name", "shape"), [("base-mlp", (1, 28, 28)), ("lenet5", (1, 28, 28))])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_zoo_models_export_within_tolerance(tmp_path, name, shape, fmt):
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    assert write_checked(FORMATS[fmt], model, shape, tmp_path / FORMATS[fmt].filename) <= TOLERANCE


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_trained_models_large_logits_are_checked_against_their_scale(tmp_path, fmt):
    # Weights x 50 give logits in the hundreds, where float32 kernels that sum in another order differ by 1e-5 and
    # more in absolute terms (the demo's trained models under ONNX Runtime did, and an absolute check refused them).
    torch.manual_seed(0)
    model = build_model("base-mlp", (1, 28, 28), 10)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(50.0)
    assert write_checked(FORMATS[fmt], model, (1, 28, 28), tmp_path / FORMATS[fmt].filename) <= TOLERANCE


def test_the_check_measures_differences_against_the_largest_logit() -> None:
    from parm.export.formats import relative_diff

    want = np.array([[200.0, -3.0], [0.5, 1.0]], dtype=np.float32)
    assert relative_diff(want + np.float32(0.002), want) == pytest.approx(1e-5, rel=1e-2)
    assert relative_diff(np.array([[0.25]]), np.array([[0.5]])) == 0.25  # small logits: absolute, scale 1
    assert np.isnan(relative_diff(np.array([[np.nan]]), np.array([[1.0]])))


def test_a_non_empty_folder_is_refused_unless_forced_which_replaces_the_old_export(tmp_path):
    two_parities, _ = affine_run(tmp_path / "r2", k=2, r=2)
    one_parity, _ = affine_run(tmp_path / "r1", k=2, r=1)
    out = tmp_path / "repo"
    export_run(two_parities, out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="--force"):
        export_run(one_parity, out)
    assert (out / f"{BASE}-parity-1").is_dir()  # nothing touched
    export_run(one_parity, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted([BASE, f"{BASE}-parity-0", CLUSTER_NAME, "notes.txt"])
    assert len(load_cluster(out / CLUSTER_NAME)) == 2


def test_missing_onnxruntime_is_refused_naming_the_extra_before_anything_is_written(tmp_path, monkeypatch):
    run_path, _ = affine_run(tmp_path)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else
                        find_spec(name, *a))
    with pytest.raises(ExportError, match=r"onnxruntime.*pip install 'parm-serving\[export\]'"):
        export_run(run_path, tmp_path / "repo", "onnx")
    assert not (tmp_path / "repo").exists()
    export_run(run_path, tmp_path / "repo", "torchscript")  # needs neither


def test_cli_exports_a_run_and_a_base_checkpoint_and_refuses_a_full_folder(tmp_path, capsys):
    run_path, _ = affine_run(tmp_path)
    out = tmp_path / "repo"
    assert main(["export", str(run_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and all("max |diff| vs PyTorch" in line for line in printed[:2])
    assert printed[0].split()[0] == BASE and printed[1].split()[0] == f"{BASE}-parity-0"
    assert main(["export", str(run_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("parm export: error:") and "--force" in err and "Traceback" not in err
    base_out = tmp_path / "base-repo"
    assert main(["export", str(open_run(run_path).base.path), "--out", str(base_out), "--format", "torchscript",
                 "--max-batch-size", "8"]) == 0
    assert read_config(base_out / BASE).max_batch_size == 8
    assert [str(e.pool) for e in load_cluster(base_out / CLUSTER_NAME)] == ["base"]
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "example" in capsys.readouterr().out
