"""Real background load between instance processes: both halves of the shuffle protocol.

The paper loads its cluster with "shuffles" that move 128-256 MB between random pairs of instances
and back. With ``InstanceSpec.shuffle_endpoint`` an instance runs `start_endpoint` in a thread; the
driver `RealShuffles` asks instance A to ``PUSH`` N bytes to instance B's endpoint, which ``ECHO``es
them back. The bytes really cross loopback through both processes, so they compete with the model
for the CPU, the memory bus and the GIL, as background traffic does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import numpy as np

from parm.workload.shuffles import ShuffleConfig

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


class RealShuffles:
    """``config.count`` threads that each, until stopped, pick a random pair of instances and have the first
    push a random ``min_mb``..``max_mb`` to the second and back over loopback (the paper's background load).

    ``port_of(instance)`` gives an instance's shuffle endpoint, looked up per transfer (a restarted instance
    has a new one); a transfer that meets a dead instance is skipped.
    """

    def __init__(self, config: ShuffleConfig, instances: list[int], port_of: Callable[[int], int | None],
                 seed: int = 0) -> None:
        self.config, self.instances, self.port_of = config, instances, port_of
        self.rng = np.random.default_rng(seed)
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self.moved_mb = 0.0
        self.threads = [threading.Thread(target=self._run, name=f"parm-shuffle-{i}", daemon=True)
                        for i in range(config.count if len(instances) >= 2 else 0)]

    def __enter__(self) -> RealShuffles:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.transfer_once()
            except OSError:
                continue  # an instance died mid-transfer: the next shuffle picks another pair

    def transfer_once(self) -> float:
        """One shuffle: a random pair, a random size, there and back; returns the megabytes moved."""
        with self._lock:
            a, b = self.rng.choice(self.instances, size=2, replace=False)
            megabytes = float(self.rng.uniform(self.config.min_mb, self.config.max_mb))
        source, target = self.port_of(int(a)), self.port_of(int(b))
        if source is None or target is None:
            raise ValueError("real shuffles need instances started with shuffle_endpoint=True")
        with socket.create_connection(("127.0.0.1", source)) as control:
            control.sendall(b"PUSH %d %d\n" % (target, int(megabytes * 2**20)))
            if control.makefile("rb").readline().strip() != b"DONE":
                raise OSError(f"instance {a} did not finish its transfer to instance {b}")
        with self._lock:
            self.moved_mb += 2 * megabytes
        return 2 * megabytes
