"""The default backend: instances in OS processes on this machine, supervised and restarted.

Each process is a `parm.serving.backends.local.worker` child hosting one instance (or several, see `LocalBackend`),
speaking frames (`parm.serving.backends.local.wire`) over its stdin and stdout. Its stdout is read by an asyncio
subprocess protocol: the bytes that arrive are split into frames and turned into `on_result` calls in the same
callback, with no reader task to wake per frame. When a child dies (a crash, an OOM kill, SIGKILL) its
instances' batches are reported lost and a replacement starts, which reports `on_ready` once its models are loaded.

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
from parm.serving.backends.local.wire import Batch, Frame, pack, split_frames
from parm.serving.instance import InstanceSpec

log = logging.getLogger("parm.serving.local")
STOP_TIMEOUT_S = 5.0


class _Host(asyncio.SubprocessProtocol):
    """One worker process: the instances it hosts, the batches each holds, and the frames it sends back.

    Until its instances are all ready (``started``), frames go to start-up; then to ``deliver``. ``ended`` is set
    once the process has exited and its stdout is drained.
    """

    def __init__(self, specs: Sequence[InstanceSpec]) -> None:
        self.specs = tuple(specs)
        self.held: dict[int, set[int]] = {spec.id: set() for spec in specs}
        self.shuffle_ports: dict[int, int] = {}
        self.transport: asyncio.SubprocessTransport | None = None
        self.deliver = self._start_up
        self._waiting = {spec.id for spec in specs}
        self._buffer = bytearray()
        self._outbox: list[bytes] = []  # frames to write at the end of this event-loop turn, in one system call
        self._open = 2  # the process and its stdout: both must end before the host has ended
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()

    @property
    def pid(self) -> int:
        return self.transport.get_pid()

    @property
    def returncode(self) -> int | None:
        return self.transport.get_returncode()

    def send(self, frame: bytes) -> None:
        """Queue a frame; the frames of one event-loop turn leave together (a shared process gets one write, not
        one per instance call)."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(frame)

    def _flush(self) -> None:
        frames, self._outbox = self._outbox, []
        stdin = self.transport.get_pipe_transport(0)
        if stdin is not None and not stdin.is_closing():  # else dead: its batches are reported lost with the rest
            stdin.write(b"".join(frames) if len(frames) > 1 else frames[0])

    def close_stdin(self) -> None:
        stdin = self.transport.get_pipe_transport(0)
        if stdin is not None:
            stdin.close()

    # ---- asyncio.SubprocessProtocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._buffer += data
        frames, used = split_frames(self._buffer)
        del self._buffer[:used]
        for frame in frames:
            self.deliver(frame)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._end_one()

    def process_exited(self) -> None:
        self._end_one()

    def _end_one(self) -> None:
        self._open -= 1
        if self._open == 0:
            if not self.started.done():
                self.started.set_exception(RuntimeError(
                    f"instances {sorted(self._waiting)} exited with code {self.returncode} before they were ready"))
            self.ended.set_result(None)

    def _start_up(self, frame: Frame) -> None:
        if isinstance(frame, Batch) or frame.get("ready") not in self._waiting:
            if not self.started.done():
                self.started.set_exception(RuntimeError(f"instances {sorted(self._waiting)} got {frame} instead of "
                                                        "a ready frame"))
            return
        self._waiting.discard(frame["ready"])
        if "shuffle_port" in frame:
            self.shuffle_ports[frame["ready"]] = frame["shuffle_port"]
        if not self._waiting and not self.started.done():
            self.started.set_result(None)


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
        self._supervisors: set[asyncio.Task] = set()

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        self._events = events
        count = len(instances) if self.processes is None else min(self.processes, len(instances))
        hosts = await asyncio.gather(*(self._spawn(instances[i::count]) for i in range(count)))  # pools spread
        for host in hosts:
            self._adopt(host)

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        host = self._hosts[instance]
        host.held[instance].add(batch_id)
        host.send(pack(Batch(instance, batch_id, inputs)))

    def pid(self, instance: int) -> int:
        """The process id of an instance's process (to inject faults in tests and benchmarks)."""
        return self._hosts[instance].pid

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
            if host.returncode is None:
                host.transport.kill()
            return
        lost, host.held[instance] = sorted(host.held[instance]), set()
        host.send(pack({"kill": instance, "restart": restart, "restart_after": restart_after}))
        asyncio.get_running_loop().call_soon(self._events.on_failure, instance, lost,
                                             "killed (an emulated crash inside a shared process)")

    async def stop(self) -> None:
        self._stopping = True
        hosts = {id(host): host for host in self._hosts.values()}.values()
        for host in hosts:
            host.close_stdin()
        for host in hosts:
            try:
                await asyncio.wait_for(asyncio.shield(host.ended), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                host.transport.kill()
                await host.ended
            host.transport.close()
        for supervisor in list(self._supervisors):
            supervisor.cancel()

    def _adopt(self, host: _Host) -> None:
        for spec in host.specs:
            self._hosts[spec.id] = host
        host.deliver = lambda frame: self._deliver(host, frame)
        supervisor = asyncio.create_task(self._supervise(host))
        self._supervisors.add(supervisor)
        supervisor.add_done_callback(self._supervisors.discard)

    def _deliver(self, host: _Host, frame: Frame) -> None:
        if not isinstance(frame, Batch):  # an instance back from an emulated crash
            self._events.on_ready(frame["ready"])
        elif frame.batch in (held := host.held[frame.instance]):  # else lost in an emulated crash
            held.remove(frame.batch)
            self._events.on_result(frame.instance, frame.batch, frame.array)

    async def _spawn(self, specs: Sequence[InstanceSpec]) -> _Host:
        loop = asyncio.get_running_loop()
        transport, host = await loop.subprocess_exec(
            lambda: _Host(specs), sys.executable, "-m", "parm.serving.backends.local.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            env={**os.environ, "OMP_NUM_THREADS": str(max(spec.threads for spec in specs))},
            start_new_session=True,  # out of the terminal's reach from its first instruction (see above)
        )
        host.send(pack({"instances": [spec.to_dict() for spec in specs]}))  # too long for argv
        try:
            await host.started
        except BaseException:  # a worker that failed to start, or a start-up cancelled by `stop`: none is left behind
            if host.returncode is None:
                transport.kill()
            transport.close()
            raise
        log.info("instances ready", extra={"instances": [spec.id for spec in specs], "pid": host.pid})
        return host

    async def _supervise(self, host: _Host) -> None:
        """Once a process has died: report its instances' lost batches and replace it."""
        await asyncio.shield(host.ended)
        if self._stopping:
            return
        for spec in host.specs:
            lost, host.held[spec.id] = sorted(host.held[spec.id]), set()
            log.warning("instance died", extra={"instance": spec.id, "returncode": host.returncode,
                                                "lost_batches": len(lost)})
            self._events.on_failure(spec.id, lost, f"process exited with code {host.returncode}")
        host.transport.close()
        back = [spec.id for spec in host.specs if spec.id not in self._stay_down]
        if self.restart and back:
            replacement = await self._spawn(host.specs)
            if self._stopping:
                replacement.transport.kill()
                return
            self._adopt(replacement)
            for instance in back:
                self._events.on_ready(instance)
