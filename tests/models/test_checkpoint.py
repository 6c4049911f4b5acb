import pickle

import pytest
import torch

from parm.models import build_model
from parm.models.checkpoint import ModelCard, load_card, load_checkpoint, save_checkpoint


def _card(**kw):
    base = dict(model="lenet5", input_shape=(1, 28, 28), classes=tuple("abcdefghij"), dataset="mnist", split_seed=0)
    return ModelCard(**{**base, **kw})


def test_round_trip_rebuilds_the_same_function(tmp_path):
    torch.manual_seed(0)
    model = build_model("lenet5", (1, 28, 28), 10).eval()
    path = save_checkpoint(model, _card(preprocess={"mean": None, "std": None}), tmp_path / "run")
    assert path.name == "model.safetensors" and path.with_suffix(".json").exists()
    loaded, card = load_checkpoint(tmp_path / "run")
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded(x), model(x))
    assert card == _card(preprocess={"mean": None, "std": None})
    assert load_card(path).num_classes == 10


def test_user_module_can_be_filled(tmp_path):
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    save_checkpoint(module, _card(model="custom", input_shape=(1, 2, 2), classes=("a", "b")), tmp_path / "m.safetensors")
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    loaded, _ = load_checkpoint(tmp_path / "m.safetensors", fresh)
    assert torch.equal(loaded[1].weight, module[1].weight)


def test_weights_file_is_not_a_pickle(tmp_path):
    path = save_checkpoint(build_model("base-mlp", (1, 28, 28), 10), _card(model="base-mlp"), tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(path.read_bytes())
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then a JSON header


def test_missing_metadata_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="parm train-base"):
        load_checkpoint(tmp_path / "nothing")
