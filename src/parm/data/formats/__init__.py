"""Readers for datasets users already have on disk: IDX files, CIFAR python batches, CUB-200-2011, image folders."""

from __future__ import annotations

from pathlib import Path

from parm.data.dataset import SourceData
from parm.data.errors import DataError
from parm.data.formats.cifar import looks_like_cifar, read_cifar_dir
from parm.data.formats.cub import is_cub, read_cub
from parm.data.formats.idx import looks_like_idx, read_idx_dir, read_idx_file
from parm.data.formats.image_folder import looks_like_image_folder, read_image_folder
from parm.data.formats.speech_commands import is_speech_commands, read_speech_commands

__all__ = ["read_cifar_dir", "read_cub", "read_idx_dir", "read_idx_file", "read_image_folder", "read_local",
           "read_speech_commands"]

ACCEPTED_LAYOUTS = (
    "parm reads five layouts: "
    "IDX files (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz], optionally t10k-*, as MNIST ships); "
    "CIFAR python batches (data_batch_1..5 + test_batch, or CIFAR-100 train + test + meta, "
    "or the folder holding cifar-10-batches-py / cifar-100-python); "
    "CUB-200-2011 (images.txt, bounding_boxes.txt, train_test_split.txt and images/: one box per image); "
    "Google Speech Commands (one folder of 1 s 16 kHz WAV clips per word, validation_list.txt, testing_list.txt); "
    "an image folder (one sub-folder of images per class, optionally under train/ and test/)"
)


def read_local(path: Path | str) -> SourceData:
    """Read whichever of the layouts ``path`` holds, so users need not say which it is."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path} is not a folder: point the data directory at a dataset folder. {ACCEPTED_LAYOUTS}")
    if looks_like_idx(path):
        return read_idx_dir(path)
    if looks_like_cifar(path):
        return read_cifar_dir(path)
    if is_cub(path):  # before image folders: its images/<class>/ would pass for one
        return read_cub(path)
    if is_speech_commands(path):  # folders of WAV clips, not of images
        return read_speech_commands(path)
    if looks_like_image_folder(path):
        return read_image_folder(path)
    raise DataError(f"{path} holds no dataset parm recognises: rearrange it into one of these. {ACCEPTED_LAYOUTS}")
