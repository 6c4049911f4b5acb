"""Frames between the frontend and its local instance processes: a JSON header, then raw bytes.

No pickle crosses the pipe: a frame is a 4-byte header length, a JSON header (batch id, shape,
dtype) and the array's bytes, so a confused or hostile peer can send bad numbers but never code.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, BinaryIO

import numpy as np

_LENGTH = struct.Struct("!I")


def pack(header: dict[str, Any], array: np.ndarray | None = None) -> bytes:
    """One frame: ``header`` plus, if given, ``array``'s shape, dtype and bytes."""
    data = b""
    if array is not None:
        array = np.ascontiguousarray(array)
        header = {**header, "shape": list(array.shape), "dtype": array.dtype.str, "nbytes": array.nbytes}
        data = array.tobytes()
    text = json.dumps(header).encode()
    return _LENGTH.pack(len(text)) + text + data


def _unpack(header_bytes: bytes, data: bytes) -> tuple[dict[str, Any], np.ndarray | None]:
    header = json.loads(header_bytes)
    if "shape" not in header:
        return header, None
    return header, np.frombuffer(bytearray(data), dtype=np.dtype(header["dtype"])).reshape(header["shape"])


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], np.ndarray | None]:
    """The next frame from an asyncio stream; raises `asyncio.IncompleteReadError` at end of stream."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    header_bytes = await reader.readexactly(length)
    nbytes = json.loads(header_bytes).get("nbytes", 0)
    return _unpack(header_bytes, await reader.readexactly(nbytes) if nbytes else b"")


def read_frame_sync(stream: BinaryIO) -> tuple[dict[str, Any], np.ndarray | None] | None:
    """The next frame from a blocking stream (buffered or raw), or None at end of stream."""
    prefix = _read_exactly(stream, _LENGTH.size)
    header_bytes = _read_exactly(stream, _LENGTH.unpack(prefix)[0]) if prefix is not None else None
    if header_bytes is None:
        return None
    nbytes = json.loads(header_bytes).get("nbytes", 0)
    data = _read_exactly(stream, nbytes) if nbytes else b""
    return None if data is None else _unpack(header_bytes, data)


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    """``n`` bytes (a raw stream may return fewer per read), or None if the stream ends first."""
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)
