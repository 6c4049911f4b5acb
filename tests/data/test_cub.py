"""The CUB-200-2011 layout: a tiny fixture folder, its sizes, split and boxes checked exactly, and every malformed
input refused with a message that names the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from parm.data.errors import DataError
from parm.data.formats.cub import is_cub, read_cub
from parm.tasks import BOX_OUTPUTS

# image id: (path under images/, size (width, height), colour, box x y width height, 1 if training)
FIXTURE = {
    1: ("001.Albatross/a.png", (40, 30), (255, 0, 0), "4 3 20 15", 1),
    2: ("001.Albatross/b.png", (50, 50), (0, 255, 0), "0 0 50 50", 0),
    3: ("002.Auklet/with space.png", (20, 60), (0, 0, 255), "10.0 30.0 20.0 40.0", 1),  # overflows: clipped
    7: ("002.Auklet/d.png", (64, 32), (10, 20, 30), "16 8 32 16", 0),
}
BOXES = {1: [0.1, 0.1, 0.6, 0.6], 2: [0, 0, 1, 1], 3: [0.5, 0.5, 1, 1], 7: [0.25, 0.25, 0.75, 0.75]}


def write_cub(root: Path) -> Path:
    for path, size, colour, _, _ in FIXTURE.values():
        (root / "images" / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / "images" / path)
    lines = {
        "images.txt": [f"{i} {row[0]}" for i, row in FIXTURE.items()],
        "bounding_boxes.txt": [f"{i} {row[3]}" for i, row in FIXTURE.items()],
        "train_test_split.txt": [f"{i} {row[4]}" for i, row in FIXTURE.items()],
    }
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    return root


def edit(root: Path, name: str, old: str, new: str) -> None:
    text = (root / name).read_text()
    assert old in text
    (root / name).write_text(text.replace(old, new))


def test_reads_sizes_split_and_boxes(tmp_path: Path) -> None:
    source = read_cub(write_cub(tmp_path), size=16)
    assert source.task == "localization" and source.classes == BOX_OUTPUTS and source.dropped_rows == 0
    assert source.train.x.shape == (2, 3, 16, 16) and source.test.x.shape == (2, 3, 16, 16)
    assert source.train.y.dtype == np.float32
    for split, ids in ((source.train, [1, 3]), (source.test, [2, 7])):
        np.testing.assert_allclose(split.y, [BOXES[i] for i in ids], atol=1e-7)  # by the ORIGINAL sizes
        colours = [FIXTURE[i][2] for i in ids]
        expected = np.broadcast_to(np.array(colours, np.uint8)[:, :, None, None], (2, 3, 16, 16))
        np.testing.assert_array_equal(split.x, expected)  # a plain colour stays plain through Lanczos
    assert "4 images resized to 16x16" in source.description


def test_is_cub_needs_the_three_files_and_images(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    assert is_cub(root)
    (root / "train_test_split.txt").unlink()
    assert not is_cub(root) and not is_cub(tmp_path / "images")


def test_a_missing_image_is_dropped_and_counted(tmp_path: Path) -> None:
    root = write_cub(tmp_path)
    (root / "images" / FIXTURE[3][0]).unlink()
    (root / "images" / FIXTURE[2][0]).write_bytes(b"not a png")
    source = read_cub(root, size=8)
    assert source.dropped_rows == 2 and len(source.train) == 1 and len(source.test) == 1
    np.testing.assert_allclose(source.test.y, [BOXES[7]], atol=1e-7)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "bounding_boxes.txt").unlink(), r"bounding_boxes.txt is missing: point at the extracted "
                                                        r"CUB_200_2011 folder"),
        (lambda r: edit(r, "bounding_boxes.txt", "4 3 20 15", "4 3 20"), r"line 1 is malformed.*<x> <y> <width>"),
        (lambda r: edit(r, "bounding_boxes.txt", "4 3 20 15", "4 3 x 15"), r"line 1 is malformed.*correct or delete"),
        (lambda r: edit(r, "images.txt", "1 001", "one 001"), r"images.txt line 1 is malformed"),
        (lambda r: edit(r, "train_test_split.txt", "7 0", "7 2"), r"line 4 is malformed.*1 if training else 0"),
        (lambda r: edit(r, "train_test_split.txt", "7 0", "3 0"), r"line 4 repeats image id 3: delete one"),
        (lambda r: edit(r, "train_test_split.txt", "7 0\n", ""), r"train_test_split.txt has no line for image id 7 "
                                                                 r".*remove those images from images.txt"),
        (lambda r: edit(r, "bounding_boxes.txt", "16 8 32 16", "16 8 0 16"), r"box of image id 7 .*positive.*correct"),
        (lambda r: edit(r, "bounding_boxes.txt", "16 8 32 16", "16 8 nan 16"), r"box of image id 7 .*finite"),
        (lambda r: edit(r, "bounding_boxes.txt", "4 3 20 15", "40 30 5 5"), r"image id 1 .*lies outside its image"),
        (lambda r: [(r / "images" / FIXTURE[i][0]).unlink() for i in (2, 7)], r"no readable test image.*restore"),
    ],
)
def test_malformed_input_is_refused_with_the_fix(tmp_path: Path, damage, message: str) -> None:
    root = write_cub(tmp_path)
    damage(root)
    with pytest.raises(DataError, match=message):
        read_cub(root, size=8)
