"""Counters and histograms for the reactor thread's hot path.

prometheus-client's ``Counter.inc`` and ``Histogram.observe`` take a lock on every call,
because they may be called from any thread. The number endpoint answers a returning visitor
in about a hundred microseconds of its own, and three such locked updates per request were a
tenth of that. These keep plain numbers, changed only on the reactor thread, and hand them to
prometheus-client as a custom collector when ``/metrics`` is scraped: the exposition is the
same as the library's own metrics of the same names.

Only for code that runs on the reactor thread; anything updated from the database or
compute threads keeps prometheus-client's own (locked) metrics.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class ReactorCounter:
    """A labelled counter (exposed as ``<name>_total``)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], *, registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        # A copy first: a scrape on another thread must not see the dict change size under it.
        for labels, value in list(self._values.items()):
            family.add_metric(labels, value)
        yield family


class ReactorHistogram:
    """A labelled histogram with fixed bucket bounds (``le`` inclusive, as Prometheus has it)."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], *, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(sorted(float(b) for b in buckets))
        # labels -> [count per bucket (the last one past every bound), sum of observations]
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        registry.register(self)

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * (len(self._bounds) + 1), [0.0])
        # The first bound >= value: its bucket holds the observation.
        series[0][bisect_left(self._bounds, value)] += 1
        series[1][0] += value

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, (counts, total) in list(self._series.items()):
            counts = list(counts)
            cumulative = 0
            buckets = []
            for bound, count in zip(self._bounds, counts, strict=False):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            buckets.append(("+Inf", cumulative + counts[-1]))
            family.add_metric(labels, buckets, total[0])
        yield family
