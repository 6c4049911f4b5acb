"""Readers for local dataset layouts: tiny fixtures in each format, checked pixel for pixel."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parm.data.errors import DataError
from parm.data.formats import read_cifar_dir, read_idx_dir, read_idx_file, read_image_folder, read_local

# ---------------------------------------------------------------- IDX

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    header = struct.pack(">2xBB", _IDX_CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return path


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 3), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_file_round_trips_every_type(tmp_path: Path, dtype: type, gz: bool) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    read = read_idx_file(write_idx(tmp_path / "a-idx3-ubyte", array, gz=gz))
    assert read.dtype == np.dtype(dtype) and read.dtype.isnative
    np.testing.assert_array_equal(read, array)


def test_idx_gzip_is_detected_by_magic_not_name(tmp_path: Path) -> None:
    array = np.array([3, 1, 4], dtype=np.uint8)
    gz_without_suffix = write_idx(tmp_path / "labels-idx1-ubyte", array, gz=True)
    plain_with_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", array)
    np.testing.assert_array_equal(read_idx_file(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx_file(plain_with_suffix), array)


def test_idx_size_mismatch_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "short-idx3-ubyte", np.zeros((2, 3, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="short-idx3-ubyte.*download it again"):
        read_idx_file(path)


def test_idx_bad_magic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk-idx3-ubyte"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DataError, match="junk-idx3-ubyte is not an IDX file"):
        read_idx_file(path)


def test_idx_dir_reads_train_and_t10k(tmp_path: Path) -> None:
    train_x, train_y = mnist_like(7, seed=1)
    test_x, test_y = mnist_like(3, seed=2)
    train_y[0], test_y[0] = 4, 9  # the largest label sits in the test set
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_y, gz=True)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", test_x)  # dotted variant, unpacked
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", test_y)

    source = read_idx_dir(tmp_path)

    np.testing.assert_array_equal(source.train.x, train_x[:, None])
    np.testing.assert_array_equal(source.train.y, train_y)
    assert source.train.x.shape == (7, 1, 4, 3) and source.train.y.dtype == np.int64
    assert source.test is not None
    np.testing.assert_array_equal(source.test.x, test_x[:, None])
    np.testing.assert_array_equal(source.test.y, test_y)
    assert source.classes == tuple(str(i) for i in range(int(max(train_y.max(), test_y.max())) + 1))
    assert source.dropped_rows == 0 and str(tmp_path) in source.description


def test_idx_dir_without_t10k_has_no_test(tmp_path: Path) -> None:
    x, y = mnist_like(5, seed=3)
    y[:] = [0, 2, 1, 2, 0]
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    source = read_idx_dir(tmp_path)
    assert source.test is None
    assert source.classes == ("0", "1", "2")


def test_idx_dir_count_mismatch(tmp_path: Path) -> None:
    x, y = mnist_like(5, seed=4)
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y[:4])
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        read_idx_dir(tmp_path)


def test_idx_dir_missing_labels_names_the_files(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte", mnist_like(2, seed=5)[0])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\[\.gz\]"):
        read_idx_dir(tmp_path)


# ---------------------------------------------------------------- CIFAR


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes str and bytes as Python 2 strings, as the original CIFAR batches were written."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("ascii")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def dump(path: Path, obj: object, protocol: int | str = pickle.DEFAULT_PROTOCOL) -> None:
    """Pickle ``obj``; protocol "py2" mimics Python 2 with numpy 1 (``numpy.core`` globals)."""
    if protocol == "py2":
        buffer = io.BytesIO()
        _Py2Pickler(buffer, protocol=2).dump(obj)
        path.write_bytes(buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    else:
        with path.open("wb") as file:
            pickle.dump(obj, file, protocol=protocol)


def write_cifar10(folder: Path, protocol: int | str = pickle.DEFAULT_PROTOCOL) -> dict[str, tuple[np.ndarray, list]]:
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate(["data_batch_1", "data_batch_2", "test_batch"]):
        rows, labels = cifar_rows(3, seed=10 + i), [(i + k) % 10 for k in range(3)]
        batch = {b"batch_label": name.encode(), b"data": rows, b"labels": labels, b"filenames": []}
        dump(folder / name, batch, protocol)
        batches[name] = (rows, labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072}, protocol)
    return batches


@pytest.mark.parametrize("protocol", ["py2", 4, 5])
def test_cifar10_pixel_layout_round_trips(tmp_path: Path, protocol: int | str) -> None:
    batches = write_cifar10(tmp_path, protocol)
    source = read_cifar_dir(tmp_path)

    train_rows = np.concatenate([batches["data_batch_1"][0], batches["data_batch_2"][0]])
    assert source.train.x.shape == (6, 3, 32, 32) and source.train.x.dtype == np.uint8
    # Row layout: 1024 red values, then 1024 green, then 1024 blue, each plane row-major.
    assert source.train.x[0, 0, 0, 0] == train_rows[0, 0]
    assert source.train.x[0, 0, 0, 1] == train_rows[0, 1]
    assert source.train.x[0, 0, 1, 0] == train_rows[0, 32]
    assert source.train.x[0, 1, 0, 0] == train_rows[0, 1024]
    assert source.train.x[4, 2, 31, 31] == train_rows[4, 3071]
    np.testing.assert_array_equal(source.train.x.reshape(6, -1), train_rows)
    np.testing.assert_array_equal(source.train.y, [0, 1, 2, 1, 2, 3])
    assert source.test is not None
    np.testing.assert_array_equal(source.test.x.reshape(3, -1), batches["test_batch"][0])
    np.testing.assert_array_equal(source.test.y, [2, 3, 4])
    assert source.classes[:3] == ("airplane", "automobile", "bird") and len(source.classes) == 10


def test_cifar10_from_parent_folder_without_meta(tmp_path: Path) -> None:
    write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "batches.meta").unlink()
    source = read_cifar_dir(tmp_path)
    assert len(source.train) == 6
    assert source.classes == ("0", "1", "2", "3", "4")  # numbered up to the largest label


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train_rows, test_rows = cifar_rows(4, seed=20), cifar_rows(2, seed=21)
    dump(folder / "train", {b"data": train_rows, b"fine_labels": [5, 0, 99, 5], b"coarse_labels": [1, 0, 19, 1]})
    dump(folder / "test", {b"data": test_rows, b"fine_labels": [3, 7], b"coarse_labels": [2, 3]})
    names = [f"class{i}".encode() for i in range(100)]
    dump(folder / "meta", {b"fine_label_names": names, b"coarse_label_names": names[:20]})

    source = read_cifar_dir(tmp_path)

    np.testing.assert_array_equal(source.train.x.reshape(4, -1), train_rows)
    np.testing.assert_array_equal(source.train.y, [5, 0, 99, 5])
    assert source.test is not None
    np.testing.assert_array_equal(source.test.x.reshape(2, -1), test_rows)
    np.testing.assert_array_equal(source.test.y, [3, 7])
    assert source.classes == tuple(f"class{i}" for i in range(100))


class _RunsShell:
    """Unpickling this calls os.system: what a hostile 'CIFAR batch' would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    dump(tmp_path / "data_batch_1", {b"data": cifar_rows(1, seed=0), b"labels": _RunsShell(marker)})
    with pytest.raises(DataError, match=r"refuses to unpickle (posix|nt|os)\.system"):
        read_cifar_dir(tmp_path)
    assert not marker.exists()


def test_non_array_data_is_refused(tmp_path: Path) -> None:
    dump(tmp_path / "data_batch_1", {b"data": [[1, 2, 3]], b"labels": [0]})
    with pytest.raises(DataError, match="uint8 array"):
        read_cifar_dir(tmp_path)


def test_damaged_pickle_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError, match="not a readable CIFAR pickle"):
        read_cifar_dir(tmp_path)


# ---------------------------------------------------------------- image folders


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def gray(value: int, size: tuple[int, int] = (4, 5)) -> np.ndarray:
    """An H x W grayscale image whose pixel (r, c) is value + r * W + c."""
    return (value + np.arange(size[0] * size[1]).reshape(size)).astype(np.uint8)


def test_grayscale_class_folders(tmp_path: Path) -> None:
    save(tmp_path / "cat" / "a.png", gray(0))
    save(tmp_path / "cat" / "b.PNG", gray(100))  # extensions are case-insensitive
    save(tmp_path / "dog" / "a.png", gray(200))
    (tmp_path / "dog" / "notes.txt").write_text("not an image, not counted")

    source = read_image_folder(tmp_path)

    assert source.classes == ("cat", "dog")
    assert source.train.x.shape == (3, 1, 4, 5)
    np.testing.assert_array_equal(source.train.x[:, 0], [gray(0), gray(100), gray(200)])
    np.testing.assert_array_equal(source.train.y, [0, 0, 1])
    assert source.test is None and source.dropped_rows == 0


def test_rgb_wins_over_grayscale_and_corrupt_files_are_dropped(tmp_path: Path) -> None:
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    save(tmp_path / "b" / "rgb.png", rgb)
    save(tmp_path / "a" / "gray.png", gray(7))
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")

    source = read_image_folder(tmp_path)

    assert source.dropped_rows == 1
    assert source.train.x.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(source.train.x[0], np.repeat(gray(7)[None], 3, axis=0))
    np.testing.assert_array_equal(source.train.x[1], rgb.transpose(2, 0, 1))
    np.testing.assert_array_equal(source.train.y, [0, 1])


def test_16_bit_grayscale_keeps_its_high_byte(tmp_path: Path) -> None:
    save(tmp_path / "c" / "deep.png", np.array([[0, 0x1234, 0xFFFF]], dtype=np.uint16))
    source = read_image_folder(tmp_path)
    np.testing.assert_array_equal(source.train.x[0, 0], [[0, 0x12, 0xFF]])


def test_mixed_sizes_are_resized_to_the_most_common(tmp_path: Path) -> None:
    flat = np.full((8, 10), 60, dtype=np.uint8)
    save(tmp_path / "x" / "1.png", gray(0))
    save(tmp_path / "x" / "2.png", gray(50))
    save(tmp_path / "y" / "big.png", flat)

    source = read_image_folder(tmp_path)

    assert source.train.x.shape == (3, 1, 4, 5)
    np.testing.assert_array_equal(source.train.x[1, 0], gray(50))  # untouched
    expected = np.asarray(Image.fromarray(flat).resize((5, 4), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(source.train.x[2, 0], expected)
    np.testing.assert_array_equal(source.train.x[2, 0], 60)  # a flat image stays flat
    assert "resized 1 images" in source.description and "Lanczos" in source.description


def test_train_test_layout_merges_val(tmp_path: Path) -> None:
    save(tmp_path / "train" / "ant" / "1.png", gray(1))
    save(tmp_path / "train" / "bee" / "1.png", gray(2))
    save(tmp_path / "val" / "cow" / "1.png", gray(3))
    save(tmp_path / "test" / "bee" / "1.png", gray(4))
    save(tmp_path / "test" / "ant" / "1.png", gray(5))

    source = read_image_folder(tmp_path)

    assert source.classes == ("ant", "bee", "cow")
    np.testing.assert_array_equal(source.train.x[:, 0], [gray(1), gray(2), gray(3)])
    np.testing.assert_array_equal(source.train.y, [0, 1, 2])
    assert source.test is not None
    np.testing.assert_array_equal(source.test.x[:, 0], [gray(5), gray(4)])
    np.testing.assert_array_equal(source.test.y, [0, 1])


def test_test_class_missing_from_train(tmp_path: Path) -> None:
    save(tmp_path / "train" / "ant" / "1.png", gray(1))
    save(tmp_path / "test" / "yak" / "1.png", gray(2))
    with pytest.raises(DataError, match=r"\['yak'\].*add train/<class>"):
        read_image_folder(tmp_path)


def test_no_images_names_the_layout(tmp_path: Path) -> None:
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="one sub-folder per class"):
        read_image_folder(tmp_path)


# ---------------------------------------------------------------- auto-detection


def test_read_local_detects_each_format(tmp_path: Path) -> None:
    idx = tmp_path / "mnist"
    idx.mkdir()
    x, y = mnist_like(4, seed=6)
    write_idx(idx / "train-images-idx3-ubyte.gz", x, gz=True)
    write_idx(idx / "train-labels-idx1-ubyte.gz", y, gz=True)
    write_cifar10(tmp_path / "c10" / "cifar-10-batches-py")
    cifar100 = tmp_path / "c100"
    cifar100.mkdir()
    dump(cifar100 / "train", {b"data": cifar_rows(2, seed=1), b"fine_labels": [0, 1]})
    dump(cifar100 / "meta", {b"fine_label_names": [b"apple", b"bear"]})
    save(tmp_path / "pics" / "train" / "k" / "1.png", gray(9))
    save(tmp_path / "pics" / "test" / "k" / "1.png", gray(8))

    assert read_local(idx).description.startswith("IDX files")
    np.testing.assert_array_equal(read_local(str(idx)).train.y, y)
    assert read_local(tmp_path / "c10").train.x.shape == (6, 3, 32, 32)
    assert read_local(cifar100).classes == ("apple", "bear")
    pics = read_local(tmp_path / "pics")
    assert pics.classes == ("k",) and pics.test is not None
    np.testing.assert_array_equal(pics.test.x[0, 0], gray(8))


@pytest.mark.parametrize("make", ["empty", "unknown", "missing"])
def test_read_local_lists_the_accepted_layouts(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "data"
    if make != "missing":
        folder.mkdir()
    if make == "unknown":
        (folder / "readme.txt").write_text("hello")
        (folder / "sub").mkdir()
        (folder / "sub" / "table.csv").write_text("a,b")
    with pytest.raises(DataError) as caught:
        read_local(folder)
    message = str(caught.value)
    assert "IDX" in message and "CIFAR" in message and "image folder" in message
