"""Parity-model training end to end on a tiny dataset, with a linear base model where the math is exact."""

import json

import pytest
import torch
from conftest import fit_affine_base

from parm.codes import LinearCode, SumCode
from parm.evaluation import group_indices
from parm.training.parity import ParityTrainConfig, build_parity_models, train_parity


@pytest.fixture
def base_checkpoint(tiny_dataset, tmp_path):
    return fit_affine_base(tiny_dataset, tmp_path / "base")


def _config(**kw):
    return ParityTrainConfig(**{"epochs": 3, "batch_size": 8, "progress": False, "device": "cpu", **kw})


def test_trains_and_writes_every_artifact(tiny_dataset, base_checkpoint, tmp_path):
    out = tmp_path / "parity"
    result = train_parity(base_checkpoint, tiny_dataset, LinearCode(2, 2), out, config=_config())
    for name in ("parity-0.safetensors", "parity-1.json", "code.json", "metrics.json", "report.md", "curves.png"):
        assert (out / name).exists(), name
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["code"]["name"] == "linear" and [s["lost"] for s in test["by_lost"]] == [1, 2]
    assert test["default_accuracy"] == pytest.approx(1 / 3, abs=0.1)
    assert result.best_score == max(row["val_degraded_accuracy"] for row in result.history)


def test_an_affine_base_model_is_rebuilt_closely(tiny_dataset, base_checkpoint, tmp_path):
    """Logistic regression is affine: F(X1 + X2) = F(X1) + F(X2) - b, so a parity model that starts from
    F's weights only has to learn one bias; a short run must then rebuild F's outputs closely."""
    from parm.models import load_checkpoint

    out = tmp_path / "p"
    train_parity(base_checkpoint, tiny_dataset, SumCode(2), out,
                 config=_config(epochs=40, lr=3e-2, schedule="constant", loss="mse"))  # MSE: logits, not softmax
    base, _ = load_checkpoint(base_checkpoint)
    parity, _ = load_checkpoint(out / "parity-0.safetensors")
    x = tiny_dataset.preprocess(tiny_dataset.test.x).view(-1, 2, *tiny_dataset.input_shape)
    with torch.no_grad():
        truth = base(x[:, 0])
        rebuilt = parity(x[:, 0] + x[:, 1]) - base(x[:, 1])
        untrained = base(x[:, 0] + x[:, 1]) - base(x[:, 1])
    error = (rebuilt - truth).norm() / truth.norm()
    assert error < 0.1 and error < 0.25 * (untrained - truth).norm() / truth.norm()


def test_initialisations(tiny_dataset, base_checkpoint):
    from parm.models import load_checkpoint

    base, card = load_checkpoint(base_checkpoint)
    copied = build_parity_models(base, card, 2, init="base")
    assert all(torch.equal(m[1].weight, base[1].weight) for m in copied)
    paper = build_parity_models(base, card, 1, init="paper")[0]
    assert paper[1].bias.abs().sum() == 0 and paper[1].weight.std() < 0.02
    with pytest.raises(ValueError, match="base architecture"):
        build_parity_models(base, card, 1, architecture="base-mlp", init="base")


@pytest.mark.parametrize("n,k", [(10, 2), (11, 3), (100, 4)])
def test_groups_use_each_sample_at_most_once_per_epoch(n, k):
    generator = torch.Generator().manual_seed(0)
    first, second = group_indices(n, k, generator), group_indices(n, k, generator)
    for groups in (first, second):
        assert groups.shape == (n // k, k)
        assert len(torch.unique(groups)) == groups.numel()  # no sample twice in an epoch
        assert int(groups.min()) >= 0 and int(groups.max()) < n
    assert not torch.equal(first, second)  # a fresh grouping every epoch


def test_resume_refuses_another_code(tiny_dataset, base_checkpoint, tmp_path):
    train_parity(base_checkpoint, tiny_dataset, SumCode(2), tmp_path / "p", config=_config(epochs=1))
    with pytest.raises(ValueError, match="cannot resume"):
        train_parity(base_checkpoint, tiny_dataset, SumCode(3), tmp_path / "p", config=_config(epochs=2), resume=True)


def test_base_model_of_another_dataset_is_refused(tiny_dataset, base_checkpoint, tmp_path):
    from dataclasses import replace

    other = replace(tiny_dataset, name="other")
    with pytest.raises(ValueError, match="trained on tiny"):
        train_parity(base_checkpoint, other, SumCode(2), tmp_path / "p", config=_config())


def test_the_decoded_loss_is_zero_when_the_parity_outputs_are_the_codes_exact_targets():
    from parm.codes import erasure_patterns
    from parm.training.parity import decoded_loss

    generator = torch.Generator().manual_seed(0)
    code = LinearCode(3, 2)
    base = torch.randn(5, 3, 4, generator=generator, dtype=torch.float64)
    exact = code.parity_targets(base)
    patterns = erasure_patterns(3, 2)
    labels = torch.randint(0, 4, (5, 3), generator=generator)
    assert float(decoded_loss(code, "decoded-kl", base, exact, patterns, labels)) == pytest.approx(0, abs=1e-9)
    off = decoded_loss(code, "decoded-kl", base, exact + 0.5 * torch.randn(exact.shape, generator=generator,
                                                                             dtype=torch.float64), patterns, labels)
    assert float(off) > 1e-3
    # cross-entropy of exact reconstructions is F's own cross-entropy on the lost originals
    lost = (~patterns[:, :3]).sum(dim=0).to(torch.float64)  # how often each position is lost over the patterns
    per_sample = torch.nn.functional.cross_entropy(base.flatten(0, 1), labels.flatten(), reduction="none").view(5, 3)
    expected = (per_sample * lost).sum() / (lost.sum() * 5)
    assert float(decoded_loss(code, "decoded-ce", base, exact, patterns, labels)) == pytest.approx(float(expected))


@pytest.mark.parametrize("loss", ["decoded-kl", "decoded-ce"])
def test_parity_models_train_on_the_decoded_loss(small_dataset, tmp_path, loss):
    base = fit_affine_base(small_dataset, tmp_path / "base")
    out = tmp_path / loss
    result = train_parity(base, small_dataset, SumCode(2), out, config=_config(loss=loss, epochs=10))
    assert (out / "parity-0.safetensors").exists() and len(result.history) == 10
    # three classes: the default class scores 1/3, an untrained parity model about as much (0.43 after 3 epochs)
    assert json.loads((out / "metrics.json").read_text())["test"]["degraded_accuracy"] > 0.55
