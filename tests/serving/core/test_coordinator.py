"""The coordinator against scripted fake instances on a virtual clock: slow, failing, out of order.

F is linear, so a linear code's reconstructions are exact and every answer can be checked by value.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest

from parm.codes import build_code
from parm.serving.core.codec import TorchCodec, codec_for
from parm.serving.core.coordinator import (
    DEFAULT,
    ORIGINAL,
    RECONSTRUCTED,
    Answer,
    Coordinator,
    CoordinatorConfig,
    Dispatch,
)
from parm.serving.core.pools import BASE_POOL, parity_pool, plan_pools

RNG = np.random.default_rng(0)
W = RNG.normal(size=(4, 3)).astype(np.float32)  # F(x) = x @ W: inputs of 4 features, 3 outputs


class FakeCluster:
    """Runs a coordinator's dispatches on instances with given service times, in virtual time."""

    def __init__(self, coordinator: Coordinator, service: dict[int, float], restart: float | None = None) -> None:
        self.coordinator, self.service, self.restart = coordinator, service, restart
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = itertools.count()
        self.running: dict[int, set[int]] = {i: set() for i in service}
        self.answers: dict[int, list[Answer]] = {}
        self.dispatches: list[Dispatch] = []

    def at(self, time: float, kind: str, payload: object) -> None:
        heapq.heappush(self.events, (time, next(self.seq), kind, payload))

    def apply(self, actions: list, now: float) -> None:
        for action in actions:
            if isinstance(action, Answer):
                self.answers.setdefault(action.query, []).append(action)
            else:
                self.dispatches.append(action)
                self.running[action.instance].add(action.batch)
                outputs = action.inputs @ W
                self.at(now + self.service[action.instance], "done", (action.instance, action.batch, outputs))

    def run(self) -> None:
        while self.events or self.coordinator.next_timer() is not None:
            timer = self.coordinator.next_timer()
            if timer is not None and (not self.events or timer <= self.events[0][0]):
                self.apply(self.coordinator.tick(timer), timer)
                continue
            now, _, kind, payload = heapq.heappop(self.events)
            if kind == "query":
                query, x = payload
                self.apply(self.coordinator.submit(query, x, now), now)
            elif kind == "done":
                instance, batch, outputs = payload
                if batch in self.running[instance]:  # a failed instance's batches never report
                    self.running[instance].discard(batch)
                    self.apply(self.coordinator.on_result(instance, batch, outputs, now), now)
            elif kind == "fail":
                lost, self.running[payload] = self.running[payload], set()
                self.apply(self.coordinator.on_failure(payload, sorted(lost), now), now)
                if self.restart is not None:
                    self.at(now + self.restart, "ready", payload)
            elif kind == "ready":
                self.apply(self.coordinator.on_ready(payload, now), now)


def make(k: int, r: int, *, mode: str = "parm", instances: int = 4, **config) -> tuple[Coordinator, dict]:
    pools = plan_pools(mode, instances, k, r)
    codec = TorchCodec(build_code("linear", k, r)) if mode == "parm" else None
    coordinator = Coordinator(
        CoordinatorConfig(k=k, r=r, **config), pools, codec=codec,
        pad_output=np.zeros(3, np.float32), default_output=np.full(3, -1.0, np.float32),
    )
    return coordinator, pools


def queries(cluster: FakeCluster, n: int, gap: float = 1.0, seed: int = 1) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = {q: rng.normal(size=4).astype(np.float32) for q in range(n)}
    for q, x in inputs.items():
        cluster.at(q * gap, "query", (q, x))
    return inputs


def check_exactly_once(cluster: FakeCluster, inputs: dict[int, np.ndarray]) -> dict[str, int]:
    assert sorted(cluster.answers) == sorted(inputs), "some query was never answered"
    kinds = {ORIGINAL: 0, RECONSTRUCTED: 0, DEFAULT: 0}
    for query, answers in cluster.answers.items():
        assert len(answers) == 1, f"query {query} answered {len(answers)} times"
        answer = answers[0]
        kinds[answer.kind] += 1
        expected = np.full(3, -1.0) if answer.kind == DEFAULT else inputs[query] @ W
        np.testing.assert_allclose(answer.output, expected, rtol=1e-4, atol=1e-4)
    assert cluster.coordinator.pending == 0
    return kinds


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_slow_base_instance_is_covered_by_reconstructions(k: int, r: int) -> None:
    coordinator, pools = make(k, r, group_wait=10.0)
    service = dict.fromkeys(itertools.chain(*pools.values()), 0.5)
    service[0] = 1000.0  # base instance 0 is a straggler
    cluster = FakeCluster(coordinator, service)
    inputs = queries(cluster, 40)
    cluster.run()
    kinds = check_exactly_once(cluster, inputs)
    assert kinds[RECONSTRUCTED] >= 1 and kinds[DEFAULT] == 0
    straggled = {q for d in cluster.dispatches if d.instance == 0 for q in range(40)
                 if any(np.array_equal(row, inputs[q]) for row in d.inputs)}
    assert all(cluster.answers[q][0].kind == RECONSTRUCTED for q in straggled)


@pytest.mark.parametrize("r", [1, 2])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_out_of_order_answers_and_a_killed_instance_lose_nothing(k: int, r: int) -> None:
    coordinator, pools = make(k, r, batch_size=2, group_wait=3.0)
    rng = np.random.default_rng(k * 10 + r)
    service = {i: float(rng.uniform(0.2, 5.0)) for i in itertools.chain(*pools.values())}
    cluster = FakeCluster(coordinator, service, restart=7.0)
    inputs = queries(cluster, 60, gap=0.3, seed=k + r)
    cluster.at(4.05, "fail", 1)  # a base instance dies mid-load and restarts 7 time units later
    cluster.at(6.05, "fail", pools[parity_pool(0)][0])
    cluster.run()
    kinds = check_exactly_once(cluster, inputs)
    assert kinds[DEFAULT] == 0


@pytest.mark.parametrize("r", [1, 2])
def test_more_failures_than_parities_end_in_the_default_at_the_deadline(r: int) -> None:
    k = 2
    coordinator, pools = make(k, r, instances=2, deadline=50.0, group_wait=0.1)
    service = dict.fromkeys(itertools.chain(*pools.values()), 1.0)
    cluster = FakeCluster(coordinator, service)  # nothing restarts
    for instance in itertools.chain(*pools.values()):
        cluster.at(0.5, "fail", instance)
    inputs = queries(cluster, 6)
    cluster.run()
    kinds = check_exactly_once(cluster, inputs)
    assert kinds[DEFAULT] == 6  # every instance is down: the deadline answers every query


def test_short_groups_are_encoded_after_the_wait_with_zero_padding() -> None:
    coordinator, pools = make(3, 1, instances=3, group_wait=2.0)
    service = dict.fromkeys(itertools.chain(*pools.values()), 1.0)
    service[0] = 100.0
    cluster = FakeCluster(coordinator, service)
    inputs = queries(cluster, 1)  # a lone query: its group never fills
    cluster.run()
    assert check_exactly_once(cluster, inputs) == {ORIGINAL: 0, RECONSTRUCTED: 1, DEFAULT: 0}
    parity = [d for d in cluster.dispatches if d.instance in pools[parity_pool(0)]]
    np.testing.assert_allclose(parity[0].inputs[0], build_code("linear", 3, 1).encode(
        __import__("torch").from_numpy(np.stack([inputs[0], np.zeros(4, np.float32), np.zeros(4, np.float32)]))[None]
    )[0, 0].numpy(), rtol=1e-6)


def test_the_group_wait_is_the_open_block_s_own_deadline_and_leaves_no_timer_once_full() -> None:
    coordinator, _ = make(2, 1, group_wait=2.0, deadline=5.0)
    x = np.zeros(4, np.float32)
    coordinator.submit(0, x, 1.0)
    assert coordinator.next_timer() == 3.0  # the block's wait, before query 0's deadline at 6
    coordinator.submit(1, x, 1.5)  # the block is full: nothing waits for it
    assert coordinator.next_timer() == 6.0
    coordinator.submit(2, x, 4.0)
    assert coordinator.next_timer() == 6.0 and coordinator.tick(5.9) == []
    assert any(isinstance(action, Dispatch) and action.instance in range(4, 6) for action in coordinator.tick(6.0))


def test_deferred_encoding_sends_originals_first_and_encodes_groups_in_one_batch() -> None:
    """With ``encode=False`` (the frontend's way) no original waits for an encoding; `encode` then encodes
    every group completed meanwhile in one codec call, with the same parities as one call per group."""
    k, r = 2, 2
    coordinator, pools = make(k, r, instances=4)
    calls = []
    codec = coordinator.codec
    coordinator.codec = type("CountingCodec", (), {
        "encode": lambda _, x: calls.append(len(x)) or codec.encode(x), "decode": lambda _, o, a: codec.decode(o, a)})()
    inputs = RNG.normal(size=(4, 4)).astype(np.float32)
    originals = [coordinator.submit(q, inputs[q], 0.0, encode=False) for q in range(4)]
    assert all(len(actions) == 1 and actions[0].instance in pools[BASE_POOL] for actions in originals)
    assert calls == []
    parities = coordinator.encode(0.0)
    assert calls == [2]  # two full groups, one batched call
    expected = build_code("linear", k, r).encode(__import__("torch").from_numpy(inputs.reshape(2, k, 4))).numpy()
    assert sorted(d.instance for d in parities) == sorted(pools[parity_pool(0)][:2] + pools[parity_pool(1)][:2])
    got = {(d.instance, tuple(d.inputs[0])) for d in parities}
    for group in range(2):
        for j in range(r):
            assert any(tuple(expected[group, j]) == row for instance, row in got if instance in pools[parity_pool(j)])


def test_useless_work_is_dropped() -> None:
    """Originals still queued after their reconstruction, and parities of completed groups, never run."""
    coordinator, pools = make(2, 1, instances=2, group_wait=10.0)
    service = {0: 1000.0, 1: 1.0, pools[parity_pool(0)][0]: 1.0}
    cluster = FakeCluster(coordinator, service)
    inputs = queries(cluster, 8, gap=0.1)
    cluster.run()
    check_exactly_once(cluster, inputs)
    ran = sum(len(d.inputs) for d in cluster.dispatches if d.instance in (0, 1))
    assert ran < len(inputs), "queued originals of reconstructed queries should have been dropped"
    assert coordinator.queue_depths() == {BASE_POOL: 0, parity_pool(0): 0}


def test_hedged_mode_sends_a_backup_and_answers_once() -> None:
    coordinator, pools = make(2, 1, mode="hedged", instances=2, hedge_after=2.0)
    service = dict.fromkeys(pools[BASE_POOL], 1.0)
    service[0] = 100.0
    cluster = FakeCluster(coordinator, service)
    inputs = queries(cluster, 10, gap=1.5)
    cluster.run()
    kinds = check_exactly_once(cluster, inputs)
    assert kinds == {ORIGINAL: 10, RECONSTRUCTED: 0, DEFAULT: 0}
    latencies = [answers[0].latency for answers in cluster.answers.values()]
    assert max(latencies) < 10.0  # the straggler's queries were answered by their backups


@pytest.mark.parametrize("mode", ["none", "equal-resources"])
def test_uncoded_modes_answer_every_query_with_its_original(mode: str) -> None:
    coordinator, pools = make(2, 1, mode=mode, instances=2)
    cluster = FakeCluster(coordinator, dict.fromkeys(pools[BASE_POOL], 1.0), restart=3.0)
    inputs = queries(cluster, 12, gap=0.4)
    cluster.at(1.1, "fail", 0)
    cluster.run()
    assert check_exactly_once(cluster, inputs)[ORIGINAL] == 12
    assert len(pools[BASE_POOL]) == (2 if mode == "none" else 3)


def test_a_query_id_cannot_be_submitted_twice() -> None:
    coordinator, _ = make(2, 1)
    coordinator.submit(0, np.zeros(4, np.float32), 0.0)
    with pytest.raises(ValueError, match="already submitted"):
        coordinator.submit(0, np.zeros(4, np.float32), 0.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_an_unusable_parity_answers_nobody_and_the_query_waits_for_its_own_output(bad):
    coordinator = Coordinator(CoordinatorConfig(k=2, r=1, deadline=10.0), plan_pools("parm", 2, 2, 1),
                              codec=codec_for(build_code("sum", 2)), pad_output=np.zeros(3, np.float32),
                              default_output=np.full(3, -1.0, np.float32))
    x = np.ones((1, 4), np.float32)
    first, (second, parity) = coordinator.submit(0, x, 0.0), coordinator.submit(1, x, 0.0)
    assert [a.kind for a in coordinator.on_result(1, second.batch, np.ones((1, 3), np.float32), 1.0)] == [ORIGINAL]
    assert coordinator.on_result(2, parity.batch, np.full((1, 3), bad, np.float32), 2.0) == []  # no NaN "reconstruction"
    answer, = coordinator.on_result(0, first[0].batch, np.full((1, 3), 7.0, np.float32), 3.0)
    assert answer.query == 0 and answer.kind == ORIGINAL and (answer.output == 7.0).all()


@pytest.mark.parametrize("batching", ["dynamic", "fixed"])
@pytest.mark.parametrize("k,r", [(2, 1), (3, 2)])
def test_batched_dispatch_loses_nothing_under_failures_either_way(k: int, r: int, batching: str) -> None:
    coordinator, pools = make(k, r, batch_size=3, group_wait=2.0, batching=batching)
    rng = np.random.default_rng(k * 7 + r)
    service = {i: float(rng.uniform(0.2, 4.0)) for i in itertools.chain(*pools.values())}
    cluster = FakeCluster(coordinator, service, restart=5.0)
    inputs = queries(cluster, 70, gap=0.1, seed=k * r)
    cluster.at(3.05, "fail", 0)
    cluster.at(5.05, "fail", pools[parity_pool(0)][0])
    cluster.run()
    assert check_exactly_once(cluster, inputs)[DEFAULT] == 0


def members_of(dispatch: Dispatch, inputs: dict[int, np.ndarray]) -> list[int]:
    return [q for row in dispatch.inputs for q, x in inputs.items() if np.array_equal(row, x)]


def test_a_dynamic_batch_never_carries_two_members_of_one_group() -> None:
    coordinator, _ = make(2, 1, instances=2, batch_size=4, group_wait=10.0)
    inputs = {q: RNG.normal(size=4).astype(np.float32) for q in range(10)}
    dispatches = [a for q, x in inputs.items() for a in coordinator.submit(q, x, 0.0) if isinstance(a, Dispatch)]
    base = [d for d in dispatches if d.instance in (0, 1)]
    assert [members_of(d, inputs) for d in base] == [[0], [1]]  # both base instances busy from here on
    later = coordinator.on_result(0, base[0].batch, inputs[0][None] @ W, 1.0)
    later += coordinator.on_result(1, base[1].batch, inputs[1][None] @ W, 1.0)
    batches = [members_of(d, inputs) for d in later if isinstance(d, Dispatch) and d.instance in (0, 1)]
    assert batches == [[2, 4, 6, 8], [3, 5, 7, 9]]  # groups (2, 3), (4, 5), ... split across the two instances


def test_fixed_batches_encode_query_i_of_each_batch_together_and_rebuild_a_lost_batch() -> None:
    """The paper's batching: k = 2 batches of B = 3; the parity batch holds x_i + x_{3+i}; base instance 0, slow
    for its whole batch, is rebuilt from the parity batch and the other base batch."""
    coordinator = Coordinator(CoordinatorConfig(k=2, r=1, batch_size=3, group_wait=10.0, batching="fixed"),
                              plan_pools("parm", 2, 2, 1), codec=codec_for(build_code("sum", 2, 1)),
                              pad_output=np.zeros(3, np.float32))
    inputs = {q: RNG.normal(size=4).astype(np.float32) for q in range(6)}
    actions = [a for q, x in inputs.items() for a in coordinator.submit(q, x, 0.0)]
    dispatches = {d.instance: d for d in actions}
    assert sorted(dispatches) == [0, 1, 2] and [len(d.inputs) for d in dispatches.values()] == [3, 3, 3]
    assert members_of(dispatches[0], inputs) == [0, 1, 2] and members_of(dispatches[1], inputs) == [3, 4, 5]
    np.testing.assert_array_equal(dispatches[2].inputs, np.stack([inputs[i] + inputs[3 + i] for i in range(3)]))
    answers = coordinator.on_result(1, dispatches[1].batch, dispatches[1].inputs @ W, 1.0)
    answers += coordinator.on_result(2, dispatches[2].batch, dispatches[2].inputs @ W, 1.0)
    assert sorted((a.query, a.kind) for a in answers) == [(0, RECONSTRUCTED), (1, RECONSTRUCTED), (2, RECONSTRUCTED),
                                                           (3, ORIGINAL), (4, ORIGINAL), (5, ORIGINAL)]
    for answer in answers:
        np.testing.assert_allclose(answer.output, inputs[answer.query] @ W, rtol=1e-5, atol=1e-5)


def test_a_fixed_batch_waits_to_fill_at_most_the_group_wait() -> None:
    coordinator, _ = make(2, 1, instances=2, batch_size=3, group_wait=0.5, batching="fixed")
    x = RNG.normal(size=4).astype(np.float32)
    assert coordinator.submit(0, x, 0.0) == [] and coordinator.next_timer() == 0.5
    dispatches = coordinator.tick(0.5)
    assert sorted((d.instance, len(d.inputs)) for d in dispatches) == [(0, 1), (2, 1)]  # the short batch, its parity


class ByzantineCluster(FakeCluster):
    """A cluster where ``wrong`` instances answer with every output shifted by 5: wrong, not slow."""

    def __init__(self, coordinator: Coordinator, service: dict[int, float], wrong: set[int]) -> None:
        super().__init__(coordinator, service)
        self.wrong = wrong

    def at(self, time: float, kind: str, payload: object) -> None:
        if kind == "done" and payload[0] in self.wrong:
            instance, batch, outputs = payload
            payload = (instance, batch, outputs + 5.0)
        super().at(time, kind, payload)


@pytest.mark.parametrize(("k", "r"), [(2, 2), (3, 2), (4, 3)])
def test_with_verify_a_wrong_base_instance_is_found_and_its_queries_rebuilt_exactly(k: int, r: int) -> None:
    coordinator, pools = make(k, r, group_wait=10.0, verify=1e-4, verify_wait=10.0)
    cluster = ByzantineCluster(coordinator, dict.fromkeys(itertools.chain(*pools.values()), 0.5), wrong={0})
    inputs = queries(cluster, 40, gap=0.1)  # busy enough that a group's members run on different instances
    cluster.run()
    kinds = check_exactly_once(cluster, inputs)  # every answer equals F(x), the wrong instance's included
    served_by_0 = {q for d in cluster.dispatches if d.instance == 0 for q in inputs
                   if any(np.array_equal(row, inputs[q]) for row in d.inputs)}
    assert served_by_0 and all(cluster.answers[q][0].kind == RECONSTRUCTED for q in served_by_0)
    assert kinds[RECONSTRUCTED] == len(served_by_0)
    assert coordinator.wrong_outputs == {"located": len(served_by_0), "unresolved": 0}


def test_with_verify_a_wrong_parity_instance_is_found_and_every_answer_is_the_original() -> None:
    coordinator, pools = make(2, 2, group_wait=10.0, verify=1e-4, verify_wait=10.0)
    cluster = ByzantineCluster(coordinator, dict.fromkeys(itertools.chain(*pools.values()), 0.5),
                               wrong=set(pools[parity_pool(1)]))
    inputs = queries(cluster, 20)
    cluster.run()
    assert check_exactly_once(cluster, inputs) == {ORIGINAL: 20, RECONSTRUCTED: 0, DEFAULT: 0}
    assert coordinator.wrong_outputs["located"] == 10  # every group's second parity was wrong


def test_with_verify_a_group_short_of_outputs_is_answered_after_verify_wait() -> None:
    coordinator, pools = make(2, 2, group_wait=10.0, verify=1e-4, verify_wait=3.0)
    service = dict.fromkeys(itertools.chain(*pools.values()), 0.5)
    for instance in pools[parity_pool(0)]:
        service[instance] = 1000.0  # parity 0 never answers in time
    cluster = FakeCluster(coordinator, service)
    inputs = queries(cluster, 10, gap=0.2)
    cluster.run()
    assert check_exactly_once(cluster, inputs)[ORIGINAL] == 10
    # answered unchecked 3 s after its group's parities left, when its second member arrived
    assert [round(cluster.answers[q][0].latency, 6) for q in range(4)] == [3.2, 3.0, 3.2, 3.0]


def test_verify_needs_two_parities_and_a_positive_tolerance() -> None:
    with pytest.raises(ValueError, match="r >= 2"):
        make(2, 1, verify=0.01)
    with pytest.raises(ValueError, match="tolerance > 0"):
        CoordinatorConfig(k=2, r=2, verify=0.0)
