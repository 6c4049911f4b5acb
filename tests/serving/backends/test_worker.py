"""A worker process hosting several instances: a held answer never delays another instance's; only its frontend
stops it, and quietly."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import numpy as np

from parm.serving.backends.local.wire import Batch, FrameReader, pack, split_frames
from parm.serving.backends.local.worker import Host
from parm.serving.core.pools import BASE_POOL
from parm.serving.instance import InstanceSpec

SLOW, FAST = InstanceSpec(0, BASE_POOL, output_shape=(3,), delay_s=3600.0), InstanceSpec(1, BASE_POOL, output_shape=(3,))


def frames(stream: io.BytesIO) -> list:
    """The frames written to ``stream`` so far (batches as (instance, batch, shape)), which it then forgets."""
    written, used = split_frames(stream.getvalue())
    assert used == len(stream.getvalue())
    stream.seek(0)
    stream.truncate()
    return [(f.instance, f.batch, f.array.shape) if isinstance(f, Batch) else f for f in written]


def test_answers_leave_when_due_whatever_order_their_batches_came_in() -> None:
    out = io.BytesIO()
    host = Host([SLOW, FAST], out)
    host.handle(Batch(0, 7, np.zeros((1, 4), np.float32)))
    host.handle(Batch(1, 8, np.zeros((2, 4), np.float32)))
    host.release_due()
    assert frames(out) == [(1, 8, (2, 3))]
    assert 3500 < host.wait() <= 3600  # instance 0's answer is still held, for its delay


def test_a_killed_instance_loses_what_it_held_and_comes_back_only_if_restarted() -> None:
    out = io.BytesIO()
    host = Host([SLOW, FAST], out)
    host.handle(Batch(0, 7, np.zeros((1, 4), np.float32)))
    host.handle({"kill": 0, "restart": True})
    host.release_due()
    assert host.wait() is None and frames(out) == [{"ready": 0}]
    host.handle({"kill": 1, "restart": False})
    assert frames(out) == [] and set(host.instances) == {0}


def test_a_restarted_instance_is_announced_after_its_restart_time() -> None:
    out = io.BytesIO()
    host = Host([SLOW, FAST], out)
    host.handle({"kill": 1, "restart": True, "restart_after": 3600.0})
    host.release_due()
    assert frames(out) == [] and 3500 < host.wait() <= 3600


def start_worker(*specs: InstanceSpec) -> subprocess.Popen:
    """A worker process hosting ``specs``, once it has said every one is ready."""
    worker = subprocess.Popen([sys.executable, "-m", "parm.serving.backends.local.worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    worker.stdin.write(pack({"instances": [spec.to_dict() for spec in specs]}))
    worker.stdin.flush()
    reader = FrameReader(worker.stdout.fileno())
    assert sorted(reader.next()["ready"] for _ in specs) == [spec.id for spec in specs]
    return worker


def test_a_worker_ignores_ctrl_c_and_ends_quietly_when_its_stdin_closes() -> None:
    worker = start_worker(FAST)
    try:
        worker.send_signal(signal.SIGINT)  # as a Ctrl-C to a group it were in: the frontend alone stops it
        worker.stdin.write(pack(Batch(1, 1, np.zeros((1, 4), np.float32))))
        worker.stdin.flush()
        assert FrameReader(worker.stdout.fileno()).next().batch == 1  # it answered after the SIGINT
        worker.stdin.close()
        assert worker.wait(timeout=30) == 0 and worker.stderr.read() == b""
    finally:
        worker.kill()


def test_a_worker_whose_frontend_stopped_reading_ends_quietly() -> None:
    worker = start_worker(InstanceSpec(0, BASE_POOL, output_shape=(3,), delay_s=0.05))
    try:
        worker.stdin.write(pack(Batch(0, 1, np.zeros((1, 4), np.float32))))
        worker.stdin.flush()
        worker.stdout.close()  # its answer, due 50 ms on, meets a closed pipe
        assert worker.wait(timeout=30) == 0 and worker.stderr.read() == b""
    finally:
        worker.kill()


def test_a_model_its_engine_refuses_ends_the_worker_with_one_line(monkeypatch) -> None:
    import os

    import pytest

    from parm.export.formats import ExportError
    from parm.serving.backends.local import worker

    def refuse(*key):
        raise ExportError("model.onnx differs from PyTorch by 0.5 of the largest logit")

    monkeypatch.setattr(worker, "load_engine", refuse)
    read, write = os.pipe()
    os.write(write, pack({"instances": [InstanceSpec(0, BASE_POOL, checkpoint="ck", engine="onnx").to_dict()]}))
    try:
        with pytest.raises(SystemExit, match="worker: model.onnx differs from PyTorch by 0.5"):
            worker.serve(read, io.BytesIO())
    finally:
        os.close(read)
        os.close(write)
