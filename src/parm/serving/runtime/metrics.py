"""Prometheus metrics of one frontend, in a registry of its own (served at ``/metrics``).

What happens per query (a latency, an answer, a batch, a codec call) is recorded by the deferred kinds of
`parm.serving.prometheus`, folded into Prometheus families when the registry is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from parm.serving.core.coordinator import GroupCodec
from parm.serving.core.pools import Pool
from parm.serving.prometheus import DeferredCounter, DeferredHistogram

# Latency buckets from 0.5 ms to 10 s: the interesting range for both no-op and real instances.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
CODEC_BUCKETS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)


class FrontendMetrics:
    """Latency, answer kinds, coding time, queues and instance health."""

    def __init__(self, mode: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.mode = mode
        self.latency = DeferredHistogram("parm_query_latency_seconds", "Time from a query's arrival to its answer.",
                                         ["mode", "answer"], LATENCY_BUCKETS,
                                         counter=("parm_answers", "Queries answered, by how."))
        self.codec = DeferredHistogram("parm_codec_seconds", "Time to encode one group or decode a batch of groups.",
                                       ["stage"], CODEC_BUCKETS)
        self.batches = DeferredCounter("parm_batches", "Batches sent to instances, per pool.", "pool")
        for collector in (self.latency, self.codec, self.batches):
            r.register(collector)  # type: ignore[arg-type]  # a Collector by its collect method
        self.queue_depth = Gauge("parm_queue_depth", "Tasks waiting for an instance, per pool.", ["pool"], registry=r)
        self.pending = Gauge("parm_pending_queries", "Queries accepted and not answered yet.", registry=r)
        self.rejected = Counter("parm_rejected_queries", "Queries refused with 503 because the queue was full.",
                                registry=r)
        self.failures = Counter("parm_instance_failures", "Instances that died (and were restarted).", ["pool"],
                                registry=r)
        self.recoveries = Counter("parm_instance_recoveries", "Instances that came back after a failure (restarted, "
                                  "or a model server found ready again).", ["pool"], registry=r)
        self._labels: dict[str, tuple[str, str]] = {}

    def answered(self, kind: str, latency: float) -> None:
        labels = self._labels.get(kind)
        if labels is None:
            labels = self._labels[kind] = (self.mode, kind)
        self.latency.observe(labels, latency)

    def dispatched(self, pool: Pool) -> None:
        self.batches.inc(str(pool))

    def watch(self, depths: Callable[[], dict[Pool, int]], pending: Callable[[], int],
              wrong_outputs: Callable[[], dict[str, int]] | None = None) -> None:
        """Read the queue depths per pool, the pending count and the wrong outputs found when scraped, not on every
        event."""
        for pool in depths():
            self.queue_depth.labels(str(pool)).set_function(lambda pool=pool: depths()[pool])
        self.pending.set_function(pending)
        if wrong_outputs is not None:
            self.registry.register(_WrongOutputs(wrong_outputs))  # type: ignore[arg-type]

    def timed(self, codec: GroupCodec) -> GroupCodec:
        """``codec``, with the time of each encode and decode call observed in ``parm_codec_seconds``."""
        return TimedCodec(codec, self.codec)


class TimedCodec:
    """A `GroupCodec` that times each call of the codec it wraps (the core itself reads no clock)."""

    def __init__(self, codec: GroupCodec, seconds: DeferredHistogram) -> None:
        self.codec, self.seconds = codec, seconds

    def encode(self, groups: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        start = time.perf_counter()
        parities = self.codec.encode(groups)
        self.seconds.observe(("encode",), time.perf_counter() - start)
        return parities

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        rebuilt = self.codec.decode(outputs, available)
        self.seconds.observe(("decode",), time.perf_counter() - start)
        return rebuilt

    def verify(self, outputs: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        checked = self.codec.verify(outputs, tolerance)
        self.seconds.observe(("verify",), time.perf_counter() - start)
        return checked



class _WrongOutputs:
    """``parm_wrong_outputs_total``: groups whose outputs disagreed, by whether the one wrong output was located."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self):
        family = CounterMetricFamily("parm_wrong_outputs", "Coding groups whose outputs disagreed (verify): one wrong "
                                     "output located and rebuilt, or more than one (unresolved).", labels=["found"])
        for found, count in self.counts().items():
            family.add_metric([found], count)
        yield family
