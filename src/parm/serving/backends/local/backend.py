"""The default backend: instances in OS processes on this machine, supervised and restarted.

Each process is a `parm.serving.backends.local.worker` child hosting one instance (or several, see `LocalBackend`),
speaking length-prefixed frames over its stdin and stdout. A reader task per child turns output
frames into `on_result` calls; when a child dies (a crash, an OOM kill, SIGKILL) its reader sees
end-of-stream, reports the batches its instances held as lost, and starts a replacement, which
reports `on_ready` once its models are loaded.

A worker stops when its stdin closes (`stop`, or the frontend's death). It runs in a session of
its own, so the signals of the frontend's terminal or process group (a Ctrl-C) reach the frontend
alone: it drains the queries in flight while every instance keeps answering, then stops them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np

from parm.serving.backends.base import Backend, BackendEvents
from parm.serving.backends.local.wire import Batch, pack, read_frame
from parm.serving.instance import InstanceSpec

log = logging.getLogger("parm.serving.local")


class _Host:
    """One worker process, the instances it hosts and the batches each of them holds."""

    def __init__(self, specs: Sequence[InstanceSpec], process: asyncio.subprocess.Process,
                 shuffle_ports: dict[int, int]) -> None:
        self.specs, self.process, self.shuffle_ports = tuple(specs), process, shuffle_ports
        self.held: dict[int, set[int]] = {spec.id: set() for spec in specs}
        self.reader: asyncio.Task | None = None
        self.outbox: list[bytes] = []  # frames to write at the end of this event-loop turn, in one system call


class LocalBackend(Backend):
    """Instances in child processes of the frontend: one each, or ``processes`` of them sharing the instances.

    One process per instance (the default) isolates instances as servers are: a crash or a busy model
    hurts one. On a machine too small for many busy processes, emulated instances (whose service time
    is emulated anyway) can share a few processes: each call still computes the real output, with the
    models' weights shared and warm, and the cores go to the frontend instead of to waking one process
    per call. `kill` then crashes the one instance inside its process (an emulated crash).
    """

    name = "local"

    def __init__(self, *, restart: bool = True, processes: int | None = None) -> None:
        if processes is not None and processes < 1:
            raise ValueError(f"processes must be at least 1 (or None: one per instance), got {processes}")
        self.restart, self.processes = restart, processes
        self._hosts: dict[int, _Host] = {}  # instance -> the process hosting it
        self._events: BackendEvents | None = None
        self._stopping = False
        self._stay_down: set[int] = set()

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        self._events = events
        count = len(instances) if self.processes is None else min(self.processes, len(instances))
        hosts = await asyncio.gather(*(self._spawn(instances[i::count]) for i in range(count)))  # pools spread
        for host in hosts:
            self._adopt(host)

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        host = self._hosts[instance]
        host.held[instance].add(batch_id)
        self._send(host, pack(Batch(instance, batch_id, inputs)))

    def pid(self, instance: int) -> int:
        """The process id of an instance's process (to inject faults in tests and benchmarks)."""
        return self._hosts[instance].process.pid

    def shuffle_port(self, instance: int) -> int | None:
        """The loopback port of an instance's shuffle endpoint (``InstanceSpec.shuffle_endpoint``), if any."""
        return self._hosts[instance].shuffle_ports.get(instance)

    def kill(self, instance: int, *, restart: bool = True, restart_after: float = 0.0) -> None:
        """Crash an instance (fault injection): SIGKILL its process, or, in a shared process, the instance
        alone; with ``restart=False`` it stays down (fail-stop). A restarted process is back once its model
        is loaded; an instance of a shared process is announced ready ``restart_after`` seconds later."""
        if not restart:
            self._stay_down.add(instance)
        host = self._hosts[instance]
        if len(host.specs) == 1:
            if host.process.returncode is None:
                host.process.kill()
            return
        lost, host.held[instance] = sorted(host.held[instance]), set()
        self._send(host, pack({"kill": instance, "restart": restart, "restart_after": restart_after}))
        asyncio.get_running_loop().call_soon(self._events.on_failure, instance, lost,
                                             "killed (an emulated crash inside a shared process)")

    async def stop(self) -> None:
        self._stopping = True
        hosts = {id(host): host for host in self._hosts.values()}.values()
        for host in hosts:
            if host.process.returncode is None:
                host.process.stdin.close()
        for host in hosts:
            try:
                await asyncio.wait_for(host.process.wait(), timeout=5)
            except TimeoutError:
                host.process.kill()
                await host.process.wait()
            if host.reader is not None:
                host.reader.cancel()

    def _adopt(self, host: _Host) -> None:
        for spec in host.specs:
            self._hosts[spec.id] = host
        host.reader = asyncio.create_task(self._read(host))

    @staticmethod
    def _send(host: _Host, frame: bytes) -> None:
        """Queue a frame; the frames of one event-loop turn leave together (a shared process gets one write, not
        one per instance call)."""
        if not host.outbox:
            asyncio.get_running_loop().call_soon(LocalBackend._flush, host)
        host.outbox.append(frame)

    @staticmethod
    def _flush(host: _Host) -> None:
        frames, host.outbox = host.outbox, []
        try:
            host.process.stdin.write(b"".join(frames) if len(frames) > 1 else frames[0])
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            # A dead process: its pipe is broken, or already closed (uvloop raises RuntimeError on a closed
            # handle). The reader sees the death and reports this batch as lost with the others.
            pass

    async def _spawn(self, specs: Sequence[InstanceSpec]) -> _Host:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parm.serving.backends.local.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": str(max(spec.threads for spec in specs))},
            limit=2**26, start_new_session=True,  # out of the terminal's reach from its first instruction (see above)
        )
        process.stdin.write(pack({"instances": [spec.to_dict() for spec in specs]}))  # too long for argv
        ports, waiting = {}, {spec.id for spec in specs}
        try:
            while waiting:
                frame = await read_frame(process.stdout)
                if isinstance(frame, Batch) or frame.get("ready") not in waiting:
                    raise RuntimeError(f"instances {sorted(waiting)} got {frame} instead of a ready frame")
                waiting.discard(frame["ready"])
                if "shuffle_port" in frame:
                    ports[frame["ready"]] = frame["shuffle_port"]
        except BaseException:  # a worker that failed to start, or a start-up cancelled by `stop`: none is left behind
            if process.returncode is None:
                process.kill()
            raise
        log.info("instances ready", extra={"instances": [spec.id for spec in specs], "pid": process.pid})
        return _Host(specs, process, ports)

    async def _read(self, host: _Host) -> None:
        """Deliver a process's outputs until it dies, then report its instances' lost batches and replace it."""
        try:
            while True:
                frame = await read_frame(host.process.stdout)
                if not isinstance(frame, Batch):  # an instance back from an emulated crash
                    self._events.on_ready(frame["ready"])
                elif frame.batch in (held := host.held[frame.instance]):  # else lost in an emulated crash
                    held.remove(frame.batch)
                    self._events.on_result(frame.instance, frame.batch, frame.array)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        await host.process.wait()
        if self._stopping:
            return
        for spec in host.specs:
            lost, host.held[spec.id] = sorted(host.held[spec.id]), set()
            log.warning("instance died", extra={"instance": spec.id, "returncode": host.process.returncode,
                                                "lost_batches": len(lost)})
            self._events.on_failure(spec.id, lost, f"process exited with code {host.process.returncode}")
        back = [spec.id for spec in host.specs if spec.id not in self._stay_down]
        if self.restart and back:
            replacement = await self._spawn(host.specs)
            if self._stopping:
                replacement.process.kill()
                return
            self._adopt(replacement)
            for instance in back:
                self._events.on_ready(instance)
