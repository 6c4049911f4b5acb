"""The remote backend's supervision with scripted clients: results, failures reported once, probes, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from parm.serving.backends.remote import Backoff, Endpoint, RemoteBackend
from parm.serving.backends.remote.client import InstanceError
from parm.serving.core.pools import BASE_POOL, parity_pool
from parm.serving.instance import InstanceSpec

NOW = Backoff(first=0.0, most=0.0, start_timeout=0.05)  # probes back to back: the tests wait on nothing but events


class ScriptedClient:
    """Answers ``inputs * 2``, or raises the next scripted failure; readiness from a script, then True."""

    def __init__(self, endpoint: Endpoint, ready: Sequence[bool] = ()) -> None:
        self.endpoint, self.connects, self.retries = endpoint, 1, 0
        self.readiness = list(ready)
        self.failures: list[Exception] = []
        self.closed = 0

    async def infer(self, inputs: np.ndarray) -> np.ndarray:
        if self.failures:
            raise self.failures.pop(0)
        return inputs * 2

    async def ready(self) -> bool:
        return self.readiness.pop(0) if self.readiness else True

    async def close(self) -> None:
        self.closed += 1


class Events:
    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.changed = asyncio.Event()

    def _note(self, *entry) -> None:
        self.log.append(entry)
        self.changed.set()

    def on_result(self, instance, batch_id, outputs):
        self._note("result", instance, batch_id, outputs.tolist())

    def on_failure(self, instance, lost_batches, reason):
        self._note("failure", instance, list(lost_batches), reason)

    def on_ready(self, instance):
        self._note("ready", instance)

    async def until(self, count: int) -> None:
        while len(self.log) < count:
            self.changed.clear()
            await self.changed.wait()


ENDPOINTS = [Endpoint(BASE_POOL, "http://127.0.0.1:1", "m"), Endpoint(parity_pool(0), "http://127.0.0.1:2", "m-p")]
SPECS = [InstanceSpec(0, BASE_POOL), InstanceSpec(1, parity_pool(0))]


def backend_with(scripts: dict[int, Sequence[bool]] | None = None) -> tuple[RemoteBackend, dict[int, ScriptedClient]]:
    clients: dict[int, ScriptedClient] = {}

    def client(endpoint: Endpoint) -> ScriptedClient:
        index = ENDPOINTS.index(endpoint)
        clients[index] = ScriptedClient(endpoint, (scripts or {}).get(index, ()))
        return clients[index]

    return RemoteBackend(ENDPOINTS, backoff=NOW, client=client), clients


def test_start_waits_for_every_server_then_batches_come_back():
    async def run():
        backend, clients = backend_with({1: [False, False, True]})
        events = Events()
        await backend.start(SPECS, events)
        backend.submit(1, 7, np.ones((2, 1), np.float32))
        await events.until(1)
        await backend.stop()
        return backend, events
    backend, events = asyncio.run(run())
    assert events.log == [("result", 1, 7, [[2.0], [2.0]])]
    assert backend._instances[1].probes == 3


def test_a_start_that_never_sees_a_server_ready_names_it():
    async def run():
        backend, _ = backend_with({1: [False] * 10**6})
        await backend.start(SPECS, Events())
    with pytest.raises(RuntimeError, match=r"1 model server\(s\) not ready.*http://127.0.0.1:2 \(model m-p\).*parm instance"):
        asyncio.run(run())


def test_a_failed_call_fails_the_instance_once_and_probes_bring_it_back():
    async def run():
        backend, clients = backend_with()
        events = Events()
        await backend.start(SPECS, events)
        clients[0].failures.append(InstanceError("reset"))
        clients[0].readiness = [False, False]  # down for two probes
        backend.submit(0, 3, np.ones((1, 1), np.float32))
        await events.until(2)
        backend.submit(0, 4, np.ones((1, 1), np.float32))  # after it is back: served again
        await events.until(3)
        registry = CollectorRegistry()
        for collector in backend.collectors():
            registry.register(collector)
        await backend.stop()
        return events, clients, registry
    events, clients, registry = asyncio.run(run())
    assert events.log[0][:3] == ("failure", 0, [3]) and "reset" in events.log[0][3]
    assert events.log[1:] == [("ready", 0), ("result", 0, 4, [[2.0]])]
    assert clients[0].closed >= 1  # a fresh connection for the probes
    labels = {"instance": "0", "pool": "base", "url": "http://127.0.0.1:1"}
    assert registry.get_sample_value("parm_remote_calls_total", labels | {"outcome": "failed"}) == 1
    assert registry.get_sample_value("parm_remote_calls_total", labels | {"outcome": "ok"}) == 1
    assert registry.get_sample_value("parm_remote_probes_total", labels) == 4  # start, then two failed and one ok
    assert registry.get_sample_value("parm_remote_up", labels) == 1
    assert registry.get_sample_value("parm_remote_call_seconds_count", {"pool": "base", "outcome": "ok"}) == 1


def test_a_batch_sent_to_a_failed_instance_is_reported_lost_not_sent():
    async def run():
        backend, clients = backend_with()
        events = Events()
        await backend.start(SPECS, events)
        backend.kill(1, restart=False)  # stays down: fail-stop
        backend.submit(1, 9, np.ones((1, 1), np.float32))
        await events.until(2)
        await backend.stop()
        return events
    events = asyncio.run(run())
    assert [entry[:3] for entry in events.log] == [("failure", 1, []), ("failure", 1, [9])]


def test_a_killed_instance_comes_back_after_its_downtime():
    async def run():
        backend, _ = backend_with()
        events = Events()
        await backend.start(SPECS, events)
        backend.kill(0, restart_after=0.0)
        await events.until(2)
        await backend.stop()
        return events
    events = asyncio.run(run())
    assert [entry[:2] for entry in events.log] == [("failure", 0), ("ready", 0)]


@pytest.mark.parametrize(("specs", "message"), [
    (SPECS[:1], "2 instances? but|has 1 instances but the cluster file lists 2"),
    ([InstanceSpec(0, BASE_POOL), InstanceSpec(1, BASE_POOL)], "is in pool parity-0, the deployment expects base"),
])
def test_a_cluster_that_does_not_match_the_deployment_is_refused(specs, message):
    backend, _ = backend_with()
    with pytest.raises(ValueError, match=message):
        asyncio.run(backend.start(specs, Events()))
