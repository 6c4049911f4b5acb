"""The default backend: one OS process per instance on this machine, supervised and restarted.

Each instance is a `parm.serving.worker` child speaking length-prefixed frames over its stdin and
stdout. A reader task per child turns output frames into `on_result` calls; when a child dies (a
crash, an OOM kill, SIGKILL) its reader sees end-of-stream, reports the batches it held as lost,
and starts a replacement, which reports `on_ready` once its model is loaded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np

from parm.serving.backends.base import Backend, BackendEvents
from parm.serving.instance import InstanceSpec
from parm.serving.wire import pack, read_frame

log = logging.getLogger("parm.serving.local")


class _Child:
    """One running worker process and the batches it holds."""

    def __init__(self, spec: InstanceSpec, process: asyncio.subprocess.Process, shuffle_port: int | None) -> None:
        self.spec, self.process, self.shuffle_port = spec, process, shuffle_port
        self.held: list[int] = []
        self.reader: asyncio.Task | None = None


class LocalBackend(Backend):
    """Instances as child processes of the frontend."""

    name = "local"

    def __init__(self, *, restart: bool = True) -> None:
        self.restart = restart
        self._children: dict[int, _Child] = {}
        self._events: BackendEvents | None = None
        self._stopping = False
        self._stay_down: set[int] = set()

    async def start(self, instances: Sequence[InstanceSpec], events: BackendEvents) -> None:
        self._events = events
        children = await asyncio.gather(*(self._spawn(spec) for spec in instances))
        for child in children:
            self._children[child.spec.id] = child
            child.reader = asyncio.create_task(self._read(child))

    def submit(self, instance: int, batch_id: int, inputs: np.ndarray) -> None:
        child = self._children[instance]
        child.held.append(batch_id)
        try:
            child.process.stdin.write(pack({"batch": batch_id}, inputs))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader sees the death and reports this batch as lost with the others

    def pid(self, instance: int) -> int:
        """The process id of an instance (to inject faults in tests and benchmarks)."""
        return self._children[instance].process.pid

    def shuffle_port(self, instance: int) -> int | None:
        """The loopback port of an instance's shuffle endpoint (``InstanceSpec.shuffle_endpoint``), if any."""
        return self._children[instance].shuffle_port

    def kill(self, instance: int, *, restart: bool = True) -> None:
        """SIGKILL an instance (fault injection); with ``restart=False`` it stays down (fail-stop)."""
        if not restart:
            self._stay_down.add(instance)
        child = self._children[instance]
        if child.process.returncode is None:
            child.process.kill()

    async def stop(self) -> None:
        self._stopping = True
        for child in self._children.values():
            if child.process.returncode is None:
                child.process.stdin.close()
        for child in self._children.values():
            try:
                await asyncio.wait_for(child.process.wait(), timeout=5)
            except TimeoutError:
                child.process.kill()
                await child.process.wait()
            if child.reader is not None:
                child.reader.cancel()

    async def _spawn(self, spec: InstanceSpec) -> _Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parm.serving.worker", json.dumps(spec.to_dict()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": str(spec.threads)},
            limit=2**26,
        )
        header, _ = await read_frame(process.stdout)
        if header.get("ready") != spec.id:
            raise RuntimeError(f"instance {spec.id} sent {header} instead of its ready frame")
        log.info("instance ready", extra={"instance": spec.id, "pool": spec.pool, "pid": process.pid})
        return _Child(spec, process, header.get("shuffle_port"))

    async def _read(self, child: _Child) -> None:
        """Deliver a child's outputs until it dies, then report its lost batches and replace it."""
        try:
            while True:
                header, outputs = await read_frame(child.process.stdout)
                child.held.remove(header["batch"])
                self._events.on_result(child.spec.id, header["batch"], outputs)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        await child.process.wait()
        if self._stopping:
            return
        lost, child.held = child.held, []
        log.warning("instance died", extra={"instance": child.spec.id, "returncode": child.process.returncode,
                                            "lost_batches": len(lost)})
        self._events.on_failure(child.spec.id, lost, f"process exited with code {child.process.returncode}")
        if self.restart and child.spec.id not in self._stay_down:
            replacement = await self._spawn(child.spec)
            if self._stopping:
                replacement.process.kill()
                return
            self._children[child.spec.id] = replacement
            replacement.reader = asyncio.create_task(self._read(replacement))
            self._events.on_ready(child.spec.id)
