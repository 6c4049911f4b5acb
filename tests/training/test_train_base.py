import json
import os
import pickle

import pytest
import torch

from parm.models import build_model
from parm.models.checkpoint import load_checkpoint
from parm.training import BaseTrainConfig, CheckpointExistsError, TrainConfig, loop, train_base
from parm.training.augment import random_crop_flip, random_shift


def _train(dataset, out, epochs, **kw):
    torch.manual_seed(0)
    model = build_model("base-mlp", dataset.input_shape, dataset.num_classes)
    config = BaseTrainConfig(epochs=epochs, batch_size=16, lr=1e-2, progress=False, device="cpu")
    return train_base(model, dataset, out, model_name="base-mlp", config=config, **kw)


def test_learns_and_writes_every_artifact(tiny_dataset, tmp_path):
    result = _train(tiny_dataset, tmp_path / "run", epochs=8)
    assert result.test["accuracy"] >= 0.9  # classes differ in brightness: easily learnable
    assert len(result.history) == 8 and 1 <= result.best_epoch <= 8
    assert result.best_score == max(row["val_accuracy"] for row in result.history)
    for name in ("model.safetensors", "model.json", "train_state.pt", "metrics.json", "report.md", "curves.png"):
        assert (tmp_path / "run" / name).exists(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"] == result.test and metrics["best_epoch"] == result.best_epoch
    model, card = load_checkpoint(tmp_path / "run")
    assert card.dataset == "tiny" and card.classes == tiny_dataset.classes


def test_same_seed_same_result(tiny_dataset, tmp_path):
    a = _train(tiny_dataset, tmp_path / "a", epochs=2)
    b = _train(tiny_dataset, tmp_path / "b", epochs=2)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]


def test_resume_continues_exactly_where_it_stopped(tiny_dataset, tmp_path, monkeypatch):
    straight = _train(tiny_dataset, tmp_path / "straight", epochs=4)
    real_epoch, calls = loop.train_epoch, []

    def interrupted_epoch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the run during its third epoch
        return real_epoch(*args)

    monkeypatch.setattr(loop, "train_epoch", interrupted_epoch)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_dataset, tmp_path / "split", epochs=4)
    monkeypatch.setattr(loop, "train_epoch", real_epoch)
    resumed = _train(tiny_dataset, tmp_path / "split", epochs=4, resume=True)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in straight.history]
    again = _train(tiny_dataset, tmp_path / "split", epochs=4, resume=True)  # nothing left to do
    assert again.history == resumed.history and again.test == resumed.test


def test_existing_run_is_not_overwritten_by_accident(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointExistsError, match="--resume"):
        _train(tiny_dataset, tmp_path / "run", epochs=1)
    assert len(_train(tiny_dataset, tmp_path / "run", epochs=1, overwrite=True).history) == 1


def test_resume_state_is_loaded_weights_only(tiny_dataset, tmp_path):
    _train(tiny_dataset, tmp_path / "run", epochs=1)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"model_name": Evil()}, tmp_path / "run" / "train_state.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        _train(tiny_dataset, tmp_path / "run", epochs=2, resume=True)
    assert not (tmp_path / "pwned").exists()


def test_crop_flip_moves_pixels_without_changing_them():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape
    for i in range(2):  # every non-zero output pixel comes from the same image
        kept = out[i][out[i] > 0]
        assert set(kept.tolist()) <= set(x[i].flatten().tolist())
    zero_pad = random_crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    assert all(torch.equal(zero_pad[i], x[i]) or torch.equal(zero_pad[i], x[i].flip(-1)) for i in range(2))


def test_cosine_schedule_decays_from_lr_towards_zero():
    config = TrainConfig(epochs=4, lr=1.0)
    rates = [loop.epoch_lr(config, e) for e in range(1, 5)]
    assert rates[0] == 1.0 and rates == sorted(rates, reverse=True) and rates[-1] > 0
    assert loop.epoch_lr(TrainConfig(schedule="constant", lr=0.5), 7) == 0.5
    with pytest.raises(ValueError, match="cosine or constant"):
        loop.epoch_lr(TrainConfig(schedule="step"), 1)


def test_shift_translates_each_image_as_a_whole():
    x = torch.arange(3 * 1 * 5 * 5, dtype=torch.uint8).view(3, 1, 5, 5) + 1
    out = random_shift(x, torch.Generator().manual_seed(1), padding=2)
    padded = torch.nn.functional.pad(x, (2,) * 4)
    for i in range(3):  # each output is one 5x5 window of its own zero-padded image
        windows = [padded[i, :, r:r + 5, c:c + 5] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], window) for window in windows)
    assert torch.equal(random_shift(x, torch.Generator().manual_seed(1), padding=0), x)
