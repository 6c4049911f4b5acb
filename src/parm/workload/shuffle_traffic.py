"""Real background load between instance processes: both halves of the shuffle protocol.

The paper loads its cluster with "shuffles" that move 128-256 MB between random pairs of instances
and back. With ``InstanceSpec.shuffle_endpoint`` an instance runs `start_endpoint` in a thread; the
driver `RealShuffles` asks instance A to ``PUSH`` N bytes to instance B's endpoint, which ``ECHO``es
them back. The bytes really cross loopback through both processes, so they compete with the model
for the CPU, the memory bus and the GIL, as background traffic does. On the testbed (`parm.testbed`) each
host runs an endpoint of its own (``python -m parm.workload.shuffle_traffic --host ADDRESS``), and the bytes
cross the hosts' shaped links instead.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from parm.workload.shuffles import ShuffleConfig

CHUNK = 1 << 20
_BUFFER = bytes(CHUNK)


def start_endpoint(host: str = "127.0.0.1", port: int = 0) -> int:
    """Listen on ``host``:``port`` (0: any free port) in a daemon thread; returns the port."""
    server = socket.create_server((host, port))
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
            _push(command[1].decode(), int(command[2]), int(command[3]))
            connection.sendall(b"DONE\n")


def _echo(connection: socket.socket, stream, size: int) -> None:
    """Send back the ``size`` bytes that arrive, as they arrive."""
    while size > 0:
        chunk = stream.read1(min(CHUNK, size))
        if not chunk:
            return
        connection.sendall(chunk)
        size -= len(chunk)


def _push(host: str, port: int, size: int) -> None:
    """Move ``size`` bytes to the endpoint at ``host``:``port`` and read them back."""
    with socket.create_connection((host, port)) as peer:
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
    has a new one), on ``host_of(instance)``; a transfer that meets a dead instance is skipped. ``transfers``
    keeps (start, end, a, b, megabytes moved) of each finished one, on the perf_counter clock.
    """

    def __init__(self, config: ShuffleConfig, instances: list[int], port_of: Callable[[int], int | None],
                 seed: int = 0, host_of: Callable[[int], str] = lambda _: "127.0.0.1") -> None:
        self.config, self.instances, self.port_of, self.host_of = config, instances, port_of, host_of
        self.rng = np.random.default_rng(seed)
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self.moved_mb = 0.0
        self.transfers: list[tuple[float, float, int, int, float]] = []
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
        start = time.perf_counter()
        with socket.create_connection((self.host_of(int(a)), source)) as control:
            control.sendall(b"PUSH %s %d %d\n" % (self.host_of(int(b)).encode(), target, int(megabytes * 2**20)))
            if control.makefile("rb").readline().strip() != b"DONE":
                raise OSError(f"instance {a} did not finish its transfer to instance {b}")
        with self._lock:
            self.moved_mb += 2 * megabytes
            self.transfers.append((start, time.perf_counter(), int(a), int(b), 2 * megabytes))
        return 2 * megabytes


def main(argv: list[str] | None = None) -> None:
    """Run one endpoint in the foreground (a testbed host's), printing ``ready PORT`` once it listens."""
    parser = argparse.ArgumentParser(description="A shuffle endpoint: ECHOes what arrives, PUSHes on request.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    args = parser.parse_args(argv)
    print(f"ready {start_endpoint(args.host, args.port)}", flush=True)
    threading.Event().wait()  # serve until killed


if __name__ == "__main__":
    main()
