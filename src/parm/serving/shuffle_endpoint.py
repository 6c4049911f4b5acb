"""Real background load inside an instance process: a loopback endpoint that moves bulk data.

The paper loads its cluster with "shuffles" that move 128-256 MB between random pairs of instances
and back. With ``InstanceSpec.shuffle_endpoint`` an instance runs this endpoint in a thread; a
driver (`parm.bench.shuffles.RealShuffles`) asks instance A to ``PUSH`` N bytes to instance B's
endpoint, which ``ECHO``es them back. The bytes really cross loopback through both processes, so
they compete with the model for the CPU, the memory bus and the GIL, as background traffic does.
"""

from __future__ import annotations

import socket
import threading

CHUNK = 1 << 20
_BUFFER = bytes(CHUNK)


def start_endpoint() -> int:
    """Listen on 127.0.0.1 in a daemon thread; returns the port."""
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_accept, args=(server,), name="parm-shuffle", daemon=True).start()
    return server.getsockname()[1]


def _accept(server: socket.socket) -> None:
    while True:
        connection, _ = server.accept()
        threading.Thread(target=_serve, args=(connection,), daemon=True).start()


def _serve(connection: socket.socket) -> None:
    with connection, connection.makefile("rb") as stream:
        command = stream.readline().split()
        if command and command[0] == b"ECHO":
            _echo(connection, stream, int(command[1]))
        elif command and command[0] == b"PUSH":
            _push(int(command[1]), int(command[2]))
            connection.sendall(b"DONE\n")


def _echo(connection: socket.socket, stream, size: int) -> None:
    """Send back the ``size`` bytes that arrive, as they arrive."""
    while size > 0:
        chunk = stream.read1(min(CHUNK, size))
        if not chunk:
            return
        connection.sendall(chunk)
        size -= len(chunk)


def _push(port: int, size: int) -> None:
    """Move ``size`` bytes to the endpoint at ``port`` and read them back."""
    with socket.create_connection(("127.0.0.1", port)) as peer:
        peer.sendall(b"ECHO %d\n" % size)
        reader = threading.Thread(target=_drain, args=(peer, size), daemon=True)
        reader.start()
        sent = 0
        while sent < size:
            part = min(CHUNK, size - sent)
            peer.sendall(_BUFFER[:part])
            sent += part
        reader.join()


def _drain(peer: socket.socket, size: int) -> None:
    buffer = bytearray(CHUNK)
    while size > 0:
        received = peer.recv_into(buffer, min(CHUNK, size))
        if not received:
            return
        size -= received
