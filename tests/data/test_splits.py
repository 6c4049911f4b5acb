import numpy as np
import pytest
from conftest import make_source

from parm.data.splits import default_val_size, split_source, stratified_split


def test_stratified_split_keeps_class_mix_and_is_exact():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    test, rest = stratified_split(labels, [40], seed=3)
    assert len(test) == 40 and len(rest) == 160
    assert np.bincount(labels[test]).tolist() == [20, 10, 6, 4]
    assert len(np.intersect1d(test, rest)) == 0
    assert sorted(np.concatenate([test, rest]).tolist()) == list(range(200))


def test_stratified_split_is_deterministic_and_seed_dependent():
    labels = np.repeat(np.arange(10), 70)
    a = stratified_split(labels, [100, 50], seed=0)
    b = stratified_split(labels, [100, 50], seed=0)
    c = stratified_split(labels, [100, 50], seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_largest_remainder_rounding_hits_the_requested_size():
    labels = np.repeat(np.arange(3), [7, 7, 7])
    (part, _) = stratified_split(labels, [10], seed=0)
    assert len(part) == 10
    assert sorted(np.bincount(labels[part]).tolist()) == [3, 3, 4]


def test_too_large_request_is_refused():
    with pytest.raises(ValueError, match="cannot take"):
        stratified_split(np.zeros(5), [6], seed=0)


def test_split_source_sizes_dtypes_and_checksums():
    ds = split_source("s", make_source(n_per_class=100, classes=4), seed=0, test_size=80)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (288, 32, 80)
    assert ds.train.x.dtype.is_floating_point is False and str(ds.train.x.dtype) == "torch.uint8"
    assert str(ds.train.y.dtype) == "torch.int64"
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 4
    again = split_source("s", make_source(n_per_class=100, classes=4), seed=0, test_size=80)
    assert ds.checksums() == again.checksums()
    other = split_source("s", make_source(n_per_class=100, classes=4), seed=5, test_size=80)
    assert other.test.checksum() != ds.test.checksum()


def test_default_validation_size():
    assert default_val_size(55_000 + 5_000) == 5_000
    assert default_val_size(8_000) == 800


def test_normalize_uses_training_statistics():
    ds = split_source("s", make_source(shape=(3, 4, 4)), seed=0, test_size=9, normalize=True)
    x = ds.preprocess(ds.train.x)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (x.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
