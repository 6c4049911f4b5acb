"""Prometheus metric kinds cheap enough for the serving hot path: an observation is a list append or a dict
increment, folded into Prometheus families when the registry is scraped (prometheus-client's own histogram takes
a lock and searches its buckets on every observation, several microseconds per query).
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_FOLD_EVERY = 4096  # observations held per label set before they are folded into buckets


class DeferredHistogram:
    """A histogram (with a counter of its observations, if named) whose observations are folded when scraped."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float], *,
                 counter: tuple[str, str] | None = None) -> None:
        self.name, self.documentation, self.labelnames, self.counter = name, documentation, tuple(labelnames), counter
        self.bounds = np.array([*buckets, np.inf])
        self._pending: dict[tuple[str, ...], list[float]] = {}
        self._counts: dict[tuple[str, ...], np.ndarray] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()  # a scrape from another thread may fold while the loop observes

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        pending = self._pending.get(labels)
        if pending is None:
            with self._lock:
                pending = self._pending[labels] = []
                self._counts[labels], self._sums[labels] = np.zeros(len(self.bounds), np.int64), 0.0
        pending.append(value)
        if len(pending) >= _FOLD_EVERY:
            self._fold(labels)

    def _fold(self, labels: tuple[str, ...]) -> None:
        with self._lock:
            pending = self._pending[labels]
            values = np.asarray(pending[:])
            del pending[:len(values)]  # appends made meanwhile stay for the next fold
            self._counts[labels] += np.bincount(np.searchsorted(self.bounds, values), minlength=len(self.bounds))
            self._sums[labels] += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        for labels in list(self._pending):
            self._fold(labels)
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        counter = CounterMetricFamily(*self.counter, labels=self.labelnames) if self.counter else None
        for labels, counts in self._counts.items():
            cumulative = np.cumsum(counts)
            edges = [floatToGoString(bound) for bound in self.bounds]
            histogram.add_metric(labels, list(zip(edges, cumulative.tolist())), self._sums[labels])
            if counter is not None:
                counter.add_metric(labels, int(cumulative[-1]))
        yield histogram
        if counter is not None:
            yield counter


class DeferredCounter:
    """A labelled counter incremented as a dict entry, read when scraped."""

    def __init__(self, name: str, documentation: str, labelname: str) -> None:
        self.name, self.documentation, self.labelname = name, documentation, labelname
        self.counts: Tally[str] = Tally()

    def inc(self, label: str) -> None:
        self.counts[label] += 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.labelname])
        for label, count in dict(self.counts).items():
            family.add_metric([label], count)
        yield family
