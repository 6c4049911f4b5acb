"""Frames between the frontend and its local instance processes: control documents and tensor batches.

No pickle crosses the pipe, so a confused or hostile peer can send bad numbers but never code. A frame is a
5-byte prefix (body length, kind) and a body: a JSON document for control frames (the instances to host, ready,
kill), or, for the batches and outputs on the per-query path, a fixed binary header (instance, batch id, dtype,
shape) and the array's bytes: no JSON is written or read per batch.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections import deque
from typing import Any, NamedTuple

import numpy as np

_PREFIX = struct.Struct("<IB")  # body length, kind
_BATCH = struct.Struct("<iiBB")  # instance, batch id, dtype code, ndim; then ndim x uint32 dims
CONTROL, BATCH = 0, 1
DTYPES = tuple(np.dtype(code) for code in ("<f4", "<f8", "<f2", "<i8", "<i4", "|u1", "|b1"))
_CODES = {dtype: code for code, dtype in enumerate(DTYPES)}


class Batch(NamedTuple):
    """A batch of inputs for an instance, or its outputs."""

    instance: int
    batch: int
    array: np.ndarray


Frame = dict[str, Any] | Batch  # a control document, or a batch


def pack(frame: Frame) -> bytes:
    """One frame's bytes."""
    if isinstance(frame, Batch):
        array = np.ascontiguousarray(frame.array)
        if array.dtype not in _CODES:
            raise TypeError(f"arrays of dtype {array.dtype} do not cross to instances; use one of {DTYPES}")
        head = _BATCH.pack(frame.instance, frame.batch, _CODES[array.dtype], array.ndim)
        head += struct.pack(f"<{array.ndim}I", *array.shape)
        return b"".join((_PREFIX.pack(len(head) + array.nbytes, BATCH), head, array.data))  # the array copied once
    text = json.dumps(frame).encode()
    return _PREFIX.pack(len(text), CONTROL) + text


def unpack(kind: int, body: bytes | bytearray) -> Frame:
    """A frame from its kind and body (a bytearray body gives a writable array)."""
    if kind == CONTROL:
        return json.loads(body)
    instance, batch, code, ndim = _BATCH.unpack_from(body)
    shape = struct.unpack_from(f"<{ndim}I", body, _BATCH.size)
    array = np.frombuffer(body, DTYPES[code], offset=_BATCH.size + 4 * ndim).reshape(shape)
    return Batch(instance, batch, array)


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next frame from an asyncio stream; raises `asyncio.IncompleteReadError` at end of stream."""
    length, kind = _PREFIX.unpack(await reader.readexactly(_PREFIX.size))
    return unpack(kind, await reader.readexactly(length))


def split_frames(buffer: bytes | bytearray) -> tuple[list[Frame], int]:
    """The complete frames at the start of ``buffer``, and how many bytes they took."""
    frames, offset = [], 0
    while len(buffer) - offset >= _PREFIX.size:
        length, kind = _PREFIX.unpack_from(buffer, offset)
        end = offset + _PREFIX.size + length
        if end > len(buffer):
            break
        frames.append(unpack(kind, buffer[offset + _PREFIX.size:end]))  # a slice of a bytearray: a writable array
        offset = end
    return frames, offset


class FrameReader:
    """Frames from a blocking file descriptor, read in large chunks: one ``read`` brings every frame that has come."""

    def __init__(self, fd: int, chunk: int = 1 << 20) -> None:
        self.fd, self.chunk = fd, chunk
        self._buffer = bytearray()
        self._frames: deque[Frame] = deque()

    def fill(self) -> bool:
        """Read what has arrived (blocking until something has) and parse its complete frames; False at end of
        stream."""
        data = os.read(self.fd, self.chunk)
        self._buffer += data
        frames, used = split_frames(self._buffer)
        self._frames.extend(frames)
        del self._buffer[:used]
        return bool(data)

    def take(self) -> list[Frame]:
        """Every frame parsed so far."""
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def next(self) -> Frame | None:
        """The next frame, reading until one is complete; None at end of stream."""
        while not self._frames:
            if not self.fill():
                return None
        return self._frames.popleft()
