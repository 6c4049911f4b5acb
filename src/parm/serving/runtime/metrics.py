"""Prometheus metrics of one frontend, in a registry of its own (served at ``/metrics``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from parm.serving.core.coordinator import GroupCodec
from parm.serving.core.pools import Pool

# Latency buckets from 0.5 ms to 10 s: the interesting range for both no-op and real instances.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
CODEC_BUCKETS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)


class FrontendMetrics:
    """Latency, answer kinds, coding time, queues and instance health."""

    def __init__(self, mode: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.mode = mode
        self.latency = Histogram("parm_query_latency_seconds", "Time from a query's arrival to its answer.",
                                 ["mode", "answer"], buckets=LATENCY_BUCKETS, registry=r)
        self.answers = Counter("parm_answers", "Queries answered, by how.", ["mode", "answer"], registry=r)
        self.codec = Histogram("parm_codec_seconds", "Time to encode one group or decode a batch of groups.",
                               ["stage"], buckets=CODEC_BUCKETS, registry=r)
        self.queue_depth = Gauge("parm_queue_depth", "Tasks waiting for an instance, per pool.", ["pool"], registry=r)
        self.pending = Gauge("parm_pending_queries", "Queries accepted and not answered yet.", registry=r)
        self.rejected = Counter("parm_rejected_queries", "Queries refused with 503 because the queue was full.",
                                registry=r)
        self.failures = Counter("parm_instance_failures", "Instances that died (and were restarted).", ["pool"],
                                registry=r)
        self.batches = Counter("parm_batches", "Batches sent to instances, per pool.", ["pool"], registry=r)

        self._children: dict[tuple, Any] = {}

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: these calls sit on the per-query path."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def answered(self, kind: str, latency: float) -> None:
        self._child(self.latency, self.mode, kind).observe(latency)
        self._child(self.answers, self.mode, kind).inc()

    def dispatched(self, pool: Pool) -> None:
        self._child(self.batches, str(pool)).inc()

    def watch(self, depths: Callable[[], dict[Pool, int]], pending: Callable[[], int]) -> None:
        """Read the queue depths per pool and the pending count when scraped, not on every event."""
        for pool in depths():
            self.queue_depth.labels(str(pool)).set_function(lambda pool=pool: depths()[pool])
        self.pending.set_function(pending)

    def timed(self, codec: GroupCodec) -> GroupCodec:
        """``codec``, with the time of each encode and decode call observed in ``parm_codec_seconds``."""
        return TimedCodec(codec, self._child(self.codec, "encode"), self._child(self.codec, "decode"))


class TimedCodec:
    """A `GroupCodec` that times each call of the codec it wraps (the core itself reads no clock)."""

    def __init__(self, codec: GroupCodec, encode_seconds: Histogram, decode_seconds: Histogram) -> None:
        self.codec, self.encode_seconds, self.decode_seconds = codec, encode_seconds, decode_seconds

    def encode(self, groups: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        start = time.perf_counter()
        parities = self.codec.encode(groups)
        self.encode_seconds.observe(time.perf_counter() - start)
        return parities

    def decode(self, outputs: np.ndarray, available: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        rebuilt = self.codec.decode(outputs, available)
        self.decode_seconds.observe(time.perf_counter() - start)
        return rebuilt
