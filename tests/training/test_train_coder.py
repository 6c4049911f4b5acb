"""Learned-code training: F stays the trained base model, and a short run really learns."""

import pytest
import torch
from conftest import fit_affine_base
from safetensors.torch import load_file

from parm.codes import LearnedCode
from parm.evaluation import group_indices, parity_outputs, score_reconstructions
from parm.models import load_checkpoint
from parm.training.coder import CoderTrainConfig, train_coder


@pytest.fixture
def base_checkpoint(request, tmp_path):
    """The affine base model of the test's dataset (``small_dataset`` when the test asks for it)."""
    name = "small_dataset" if "small_dataset" in request.fixturenames else "tiny_dataset"
    return fit_affine_base(request.getfixturevalue(name), tmp_path / "base")


def _code(dataset, encoder="mlp", r=1):
    torch.manual_seed(0)
    return LearnedCode(2, r, encoder=encoder, input_shape=dataset.input_shape, num_outputs=dataset.num_classes)


def _config(**kw):
    return CoderTrainConfig(**{"epochs": 2, "batch_size": 8, "progress": False, "device": "cpu", **kw})


def _test_mse(code, dataset, base_checkpoint):
    base, _ = load_checkpoint(base_checkpoint)
    groups = group_indices(len(dataset.test), code.k, 0)
    with torch.no_grad():
        out = parity_outputs([base] * code.r, code, dataset.test, dataset.preprocess, groups)
        base_out = base(dataset.preprocess(dataset.test.x))
        return score_reconstructions(code, base_out, out, groups, dataset.test.y, task=dataset.task_definition,
                                     default_output=dataset.default_output()).mse


def test_base_model_is_never_touched(tiny_dataset, base_checkpoint, tmp_path, monkeypatch):
    before = load_file(str(base_checkpoint))
    seen = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append({id(p) for group in self.param_groups for p in group["params"]})
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    import parm.training.coded as coded

    loaded = []
    real_load = coded.load_frozen_base
    monkeypatch.setattr(coded, "load_frozen_base", lambda *a: loaded.append(real_load(*a)) or loaded[-1])
    code = _code(tiny_dataset, encoder="conv")
    train_coder(base_checkpoint, tiny_dataset, code, tmp_path / "c", config=_config())
    f = loaded[0].model
    assert all(p.grad is None and not p.requires_grad for p in f.parameters())  # no gradient ever reached F
    assert not any(id(p) in step for p in f.parameters() for step in seen)  # no optimiser step saw F
    assert {id(p) for p in code.parameters()} == seen[0]
    after = {name: value for name, value in f.state_dict().items()}
    assert all(torch.equal(before[name], after[name]) for name in before)  # F equals the base checkpoint
    assert all(torch.equal(before[name], value) for name, value in load_file(str(base_checkpoint)).items())


def test_short_training_learns_to_rebuild_a_linear_f(small_dataset, base_checkpoint, tmp_path):
    code = _code(small_dataset)
    untrained = _test_mse(code, small_dataset, base_checkpoint)
    train_coder(base_checkpoint, small_dataset, code, tmp_path / "c", config=_config(epochs=40, lr=1e-2, batch_size=16, loss="mse"))
    trained = _test_mse(code, small_dataset, base_checkpoint)
    assert trained < 0.1 * untrained


@pytest.mark.parametrize("loss", ["kl", "ce"])
def test_other_losses_and_r2_train(tiny_dataset, base_checkpoint, tmp_path, loss):
    result = train_coder(base_checkpoint, tiny_dataset, _code(tiny_dataset, r=2), tmp_path / loss, config=_config(loss=loss))
    assert [s["lost"] for s in result.test["by_lost"]] == [1, 2]
    assert (tmp_path / loss / "code.safetensors").exists()


def test_unknown_loss_is_refused(tiny_dataset, base_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="unknown loss"):
        train_coder(base_checkpoint, tiny_dataset, _code(tiny_dataset), tmp_path / "c", config=_config(loss="hinge"))


def test_joint_learning_trains_parity_models_that_the_run_serves_on_its_parities(small_dataset, base_checkpoint, tmp_path):
    """Paper section VI-C: encoder, parity model and decoder together; the run's parity instances run the parity
    model, which started as F and moved, while F's own checkpoint is untouched."""
    from parm.runs import JointRun, open_run
    from parm.serving import ServeOptions, build_deployment
    from parm.serving.core.pools import BASE_POOL

    before = load_file(str(base_checkpoint))
    out = tmp_path / "joint"
    result = train_coder(base_checkpoint, small_dataset, _code(small_dataset), out, config=_config(joint=True, epochs=4))
    run = open_run(out)
    assert isinstance(run, JointRun) and run.parity_checkpoint(0) == out / "parity-0.safetensors"
    (model,) = run.load_parity_models()
    moved = [not torch.equal(model.state_dict()[name], weight) for name, weight in before.items()]
    assert any(moved) and all(torch.equal(load_file(str(base_checkpoint))[n], w) for n, w in before.items())
    deployment = build_deployment(out, ServeOptions(instances=2))
    parity = {spec.checkpoint for spec in deployment.instances if spec.pool != BASE_POOL}
    assert parity == {str(out / "parity-0.safetensors")}
    assert len(result.history) == 4 and (out / "parity-0.json").exists()


def test_a_balanced_run_trains_on_its_worst_lost_position(tiny_dataset, base_checkpoint, tmp_path):
    result = train_coder(base_checkpoint, tiny_dataset, _code(tiny_dataset, r=2), tmp_path / "balanced",
                         config=_config(balanced=True))
    assert (tmp_path / "balanced" / "code.safetensors").exists() and result.config["balanced"] is True
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in result.history)


def test_shifted_batches_carry_f_of_the_shifted_images(tiny_dataset, base_checkpoint, tmp_path):
    from parm.training.coded import CodedTraining

    code = _code(tiny_dataset)
    plain = CodedTraining(base_checkpoint, tiny_dataset, code, tmp_path / "plain", _config(), resume=False, overwrite=False)
    shifted = CodedTraining(base_checkpoint, tiny_dataset, code, tmp_path / "shift", _config(shift=2), resume=False,
                            overwrite=False)
    index, x, outputs = next(plain.batches(torch.Generator().manual_seed(0)))
    assert torch.equal(outputs, plain.train_outputs[index])  # unshifted: F's outputs computed once, before training
    s_index, s_x, s_outputs = next(shifted.batches(torch.Generator().manual_seed(0)))
    assert torch.equal(s_index, index) and s_x.shape == x.shape and not torch.equal(s_x, x)
    f = shifted.base.model
    assert torch.allclose(s_outputs, f(s_x.flatten(0, 1)).view(*index.shape, -1))  # F of what the code is given
    result = train_coder(base_checkpoint, tiny_dataset, code, tmp_path / "run", config=_config(shift=1))
    assert result.config["shift"] == 1
