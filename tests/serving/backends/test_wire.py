"""Frames to and from instance processes: exact round trips, partial reads, and no code on the wire."""

from __future__ import annotations

import os

import numpy as np
import pytest

from parm.serving.backends.local.wire import DTYPES, Batch, FrameReader, pack, split_frames


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_batch_comes_back_exactly_with_its_ids_shape_and_dtype(dtype: np.dtype) -> None:
    array = (np.random.default_rng(0).random((3, 1, 4, 5)) * 100).astype(dtype)
    (frame,), used = split_frames(bytearray(pack(Batch(7, -2, array))))  # as readers hold their bytes
    assert (frame.instance, frame.batch, frame.array.dtype, frame.array.shape) == (7, -2, dtype, array.shape)
    np.testing.assert_array_equal(frame.array, array)
    frame.array[0] = 0  # writable: a frame owns its bytes
    assert used == len(pack(Batch(7, -2, array)))


def test_control_documents_and_batches_interleave_and_a_partial_frame_waits() -> None:
    stream = pack({"ready": 3}) + pack(Batch(1, 5, np.zeros((2, 10), np.float32))) + pack({"kill": 1})
    frames, used = split_frames(stream[:-3])
    assert frames[0] == {"ready": 3} and frames[1].batch == 5 and len(frames) == 2
    assert split_frames(stream[used:])[0] == [{"kill": 1}]


def test_an_array_of_another_dtype_is_refused_not_pickled() -> None:
    with pytest.raises(TypeError, match="do not cross"):
        pack(Batch(0, 0, np.array(["text"])))


def test_a_reader_brings_every_frame_of_one_read_and_sees_the_end() -> None:
    read, write = os.pipe()
    os.write(write, pack(Batch(0, 1, np.ones((1, 3), np.float32))) + pack({"ready": 0}))
    os.close(write)
    reader = FrameReader(read)
    assert reader.next().batch == 1 and reader.take() == [{"ready": 0}]
    assert reader.next() is None
    os.close(read)
