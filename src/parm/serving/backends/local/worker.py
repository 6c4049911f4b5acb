"""The process behind local instances: ``python -m parm.serving.backends.local.worker``, started by the local backend.

Its first stdin frame lists the instances it hosts (one, or many emulated ones on a small machine).
It loads their models (one copy per checkpoint and engine), says each is ready, then computes every batch
frame as it arrives and writes its output frame once `ModelInstance.compute` says it is due; while
an answer is held it keeps reading, so a held instance never delays the others. A ``kill`` frame
crashes one hosted instance (dropping what it held) and, if asked, restarts it, announcing it ready
``restart_after`` seconds later.

Its supervisor alone stops it, by closing its stdin (or by dying, which closes it): the process
exits, quietly, when stdin or stdout closes. It ignores SIGINT and SIGTERM, so that a Ctrl-C or a
service manager signalling every process stops the frontend, which drains, rather than the
instances under the queries in flight; SIGKILL still crashes it (fault injection).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import heapq
import itertools
import os
import select
import signal
import sys
import time
from typing import Any, BinaryIO


from parm.serving.backends.local.wire import Batch, Frame, FrameReader, pack
from parm.serving.engines import load_engine
from parm.serving.instance import InstanceSpec, ModelInstance
from parm.workload.shuffle_traffic import start_endpoint

PIPE_BYTES = 1 << 20


class Host:
    """The instances of one worker process and the frames they hold, earliest due first."""

    def __init__(self, specs: list[InstanceSpec], stdout: BinaryIO) -> None:
        self.specs, self.stdout = {spec.id: spec for spec in specs}, stdout
        models = {key: load_engine(*key) for key in {spec.engine_key for spec in specs if spec.checkpoint}}
        self.instances = {spec.id: ModelInstance(spec, models.get(spec.engine_key)) for spec in specs}
        # Frames waiting for their time, earliest first: (due, order, instance, frame).
        self.held: list[tuple[float, int, int, Frame]] = []
        self.order = itertools.count()

    def announce(self, instance: int, after: float = 0.0) -> None:
        """Queue ``instance``'s ready frame (with its shuffle endpoint's port, if it runs one) ``after`` seconds on."""
        spec = self.specs[instance]
        ready: dict[str, Any] = {"ready": instance}
        if spec.shuffle_endpoint:
            ready["shuffle_port"] = start_endpoint()
        heapq.heappush(self.held, (time.perf_counter() + after, next(self.order), instance, ready))

    def handle(self, frame: Frame) -> None:
        """A batch to compute, or a ``kill`` of one instance (restarted with a fresh model if asked, and announced
        ready ``restart_after`` seconds later, as a real restart would take)."""
        if not isinstance(frame, Batch):
            instance = frame["kill"]
            self.held = [entry for entry in self.held if entry[2] != instance]
            heapq.heapify(self.held)
            del self.instances[instance]
            if frame.get("restart", True):
                self.instances[instance] = ModelInstance(self.specs[instance])
                self.announce(instance, frame.get("restart_after", 0.0))
            return
        outputs, due = self.instances[frame.instance].compute(frame.array)
        heapq.heappush(self.held, (due, next(self.order), frame.instance, Batch(frame.instance, frame.batch, outputs)))

    def release_due(self) -> None:
        """Write every frame whose time has come: answers, and ready frames of restarted instances."""
        now, sent = time.perf_counter(), False
        while self.held and self.held[0][0] <= now:
            self.stdout.write(pack(heapq.heappop(self.held)[3]))
            sent = True
        if sent:
            self.stdout.flush()

    def wait(self) -> float | None:
        """Seconds until the next held answer is due (None: nothing held)."""
        return max(0.0, self.held[0][0] - time.perf_counter()) if self.held else None


def serve(stdin: int, stdout: BinaryIO) -> None:
    """Host the instances the first frame on ``stdin`` (a file descriptor) lists, until it closes."""
    reader = FrameReader(stdin)
    first = reader.next()
    if first is None:  # the frontend went away before it said what to host
        return
    if isinstance(first, Batch) or "instances" not in first:
        sys.exit("parm.serving.backends.local.worker: the first frame must list the instances to host")
    try:
        host = Host([InstanceSpec.from_dict(spec) for spec in first["instances"]], stdout)
    except ValueError as err:  # a model its engine refuses (an export that fails its check): one line, not a traceback
        sys.exit(f"parm.serving.backends.local.worker: {err}")
    gc.freeze()  # torch and the models live as long as the process: a full collection over them would stall a call
    for instance in host.specs:
        host.announce(instance)
    while True:
        for frame in reader.take():  # every frame that came with the last read
            host.handle(frame)
        host.release_due()
        if select.select([stdin], [], [], host.wait())[0] and not reader.fill():  # select: microsecond timeouts
            return


def widen_pipes(size: int = PIPE_BYTES) -> None:
    """Let one write carry a whole batch: a Linux pipe holds 64 KB, one paper-size query (3x224x224 floats) 600 KB, so
    without this every such batch crosses in ten writes, reads and wake-ups. Elsewhere, or beyond the system's
    limit (/proc/sys/fs/pipe-max-size), the pipes stay as they are."""
    for fd in (0, 1):
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def main() -> None:
    if len(sys.argv) != 1 or sys.stdin.isatty():
        sys.exit("usage: python -m parm.serving.backends.local.worker (started by `parm serve` and `parm bench`, not by hand)")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    widen_pipes()
    try:
        serve(sys.stdin.fileno(), sys.stdout.buffer)  # read unbuffered by FrameReader: select sees every unread byte
    except BrokenPipeError:  # the frontend is gone: nobody is left to answer
        pass
    # As multiprocessing's children end: nothing is left to clean up, and the interpreter's teardown of torch and the
    # models (0.25 s) would hold up the frontend's stop. It also drops what stdout still buffers for a closed pipe.
    os._exit(0)


if __name__ == "__main__":
    main()
