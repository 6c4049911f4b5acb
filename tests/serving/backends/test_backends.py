"""Choosing a backend: how many processes host the local instances, and what Ray refuses; the local backend's
processes and their stop."""

from __future__ import annotations

import asyncio
import os

import pytest

from parm.serving.backends import build_backend
from parm.serving.backends.local import LocalBackend
from parm.serving.core.pools import BASE_POOL
from parm.serving.instance import InstanceSpec


def test_the_local_backend_takes_a_process_count_and_ray_refuses_one() -> None:
    assert build_backend("local").processes is None  # one process per instance
    assert build_backend("local", processes=1).processes == 1
    with pytest.raises(ValueError, match="--backend local only"):
        build_backend("ray", processes=2)
    with pytest.raises(ValueError, match="at least 1"):
        build_backend("local", processes=0)


class Events:
    """`BackendEvents` that record what they hear."""

    def __init__(self) -> None:
        self.heard: list[tuple] = []

    def on_result(self, *args) -> None:
        self.heard.append(("result", *args))

    def on_failure(self, *args) -> None:
        self.heard.append(("failure", *args))

    def on_ready(self, *args) -> None:
        self.heard.append(("ready", *args))


def test_local_instances_run_out_of_the_frontends_session_and_stop_when_it_says() -> None:
    async def start_and_stop() -> tuple[int, Events]:
        backend, events = LocalBackend(), Events()
        await backend.start([InstanceSpec(0, BASE_POOL, output_shape=(3,))], events)
        pid = backend.pid(0)
        assert os.getsid(pid) == pid != os.getsid(0)  # a Ctrl-C to the frontend's terminal does not reach it
        await backend.stop()
        return pid, events

    pid, events = asyncio.run(start_and_stop())
    assert events.heard == []  # a stop is no failure, and nothing comes back
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped
