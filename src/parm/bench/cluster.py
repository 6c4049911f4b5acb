"""A cluster of model servers on this machine: one `parm instance` process per instance, on loopback ports
(or, with a placement, on the hosts of the testbed).

For the remote backend what the local backend's worker processes are for the local one: the bench and
`parm replay --backend remote` start one, point the frontend at it through its endpoints, and crash a
server for real (SIGKILL of its process) and start it again on the same port, where the frontend's probes
find it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parm.serving.backends.remote.cluster import Endpoint
from parm.runs import open_run
from parm.serving.core.pools import Pool
from parm.serving.http.server import listen
from parm.serving.runtime.deployment import pool_model_name
from parm.workload.emulation import Emulation

READY_MARK = " ready at http://"


@dataclass
class _Server:
    pool: Pool
    port: int
    grpc_port: int | None = None
    prefix: tuple[str, ...] = ()  # runs the server elsewhere: on a testbed host, `ip netns exec HOST`
    address: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    starts: int = 0
    log: Path | None = None
    ready: threading.Event = field(default_factory=threading.Event)  # set by the current process's ready line


@dataclass
class InstanceServers:
    """`parm instance` servers for ``pools`` (instance ids per pool, as a deployment numbers them) of ``source``."""

    source: Path
    pools: dict[Pool, list[int]]
    noop: bool = False
    threads: int = 1
    engine: str = "torch"  # what computes each server's model (`parm.serving.engines`)
    grpc: bool = False  # servers also speak gRPC, and the endpoints are theirs (grpc:// URLs)
    placement: Callable[[int], tuple[Sequence[str], str]] | None = None  # instance -> (command prefix, address)
    emulations: dict[int, Emulation] | None = None  # emulated service times, per instance
    startup_timeout: float = 120.0
    _servers: dict[int, _Server] = field(default_factory=dict)
    _logs: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> InstanceServers:
        self._logs = tempfile.TemporaryDirectory(prefix="parm-instances-")
        for pool, ids in self.pools.items():
            for instance in ids:
                prefix, address = self.placement(instance) if self.placement is not None else ((), "127.0.0.1")
                self._servers[instance] = _Server(pool, free_port(), free_port() if self.grpc else None,
                                                  tuple(prefix), address)
        try:
            for instance in sorted(self._servers):
                self._launch(instance)
            for instance in sorted(self._servers):
                self._await_ready(instance)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for server in self._servers.values():
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait()
        if self._logs is not None:
            self._logs.cleanup()

    def endpoints(self, timeout_s: float = 1.0) -> list[Endpoint]:
        """The servers as the remote backend's endpoints, in instance order, each naming its model as its server
        does."""
        run = open_run(self.source)
        return [Endpoint(pool=s.pool, timeout_s=timeout_s, url=f"grpc://{s.address}:{s.grpc_port}" if s.grpc_port
                         else f"http://{s.address}:{s.port}", model=pool_model_name(run, s.pool))
                for _, s in sorted(self._servers.items())]

    def kill(self, instance: int) -> None:
        """SIGKILL ``instance``'s server process (a crashed machine: connections reset, nothing drained)."""
        process = self._servers[instance].process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, instance: int) -> None:
        """Start ``instance``'s server again on its port, without waiting: the frontend's probes find it ready."""
        self._launch(instance)

    def starts(self, instance: int) -> int:
        return self._servers[instance].starts

    def _launch(self, instance: int) -> None:
        server = self._servers[instance]
        server.log = Path(self._logs.name) / f"instance-{instance}-{server.starts}.log"  # type: ignore[union-attr]
        command = [*server.prefix, sys.executable, "-m", "parm", "instance", str(self.source), "--pool",
                   str(server.pool), "--host", server.address, "--port", str(server.port), "--threads",
                   str(self.threads), "--engine", self.engine, "--log-format", "text"]
        if self.noop:
            command.append("--noop")
        if server.grpc_port is not None:
            command += ["--grpc-port", str(server.grpc_port)]
        if self.emulations is not None and instance in self.emulations:
            emulation = Path(self._logs.name) / f"instance-{instance}-emulation.json"  # type: ignore[union-attr]
            emulation.write_text(json.dumps(self.emulations[instance].to_dict()))
            command += ["--emulation", str(emulation), "--instance-id", str(instance)]
        with server.log.open("w") as log:
            server.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                              text=True, start_new_session=True)
        server.starts += 1
        self._drain_after_ready(server)

    def _drain_after_ready(self, server: _Server) -> None:
        """Read the server's stdout on a thread: its ready line sets an event; nothing else is written there."""
        process = server.process
        ready = server.ready = threading.Event()

        def read() -> None:
            for line in process.stdout:  # type: ignore[union-attr]
                if READY_MARK in line:
                    ready.set()

        threading.Thread(target=read, daemon=True, name="parm-instance-stdout").start()

    def _await_ready(self, instance: int) -> None:
        server = self._servers[instance]
        if not server.ready.wait(self.startup_timeout):
            log = server.log.read_text()[-2000:] if server.log is not None else ""
            raise RuntimeError(f"instance server {instance} ({server.pool}) did not start within "
                               f"{self.startup_timeout:.0f} s; its log ends:\n{log}")


def free_port() -> int:
    """A loopback port free now (bound and released: the server binds it a moment later)."""
    with listen("127.0.0.1", 0) as sock:
        return sock.getsockname()[1]
