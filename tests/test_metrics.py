"""The reactor-thread metrics expose exactly what prometheus-client's own would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from calltrack.metrics import ReactorCounter, ReactorHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.5, 10.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    # The library's own metrics add *_created samples (their creation time); ours have none.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


observations = st.lists(
    st.tuples(
        st.sampled_from(["/v1/number", "/v1/ping", "/healthz"]),
        st.sampled_from(["GET", "POST"]),
        # Bounds themselves included: `le` is inclusive.
        st.one_of(st.sampled_from(BUCKETS), st.floats(min_value=0, max_value=20, allow_nan=False)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(observations)
def test_same_exposition_as_prometheus_client(seen: list[tuple[str, str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    counter = Counter("t_requests", "requests", ["route", "method"], registry=theirs)
    histogram = Histogram("t_seconds", "latency", ["route"], buckets=BUCKETS, registry=theirs)
    our_counter = ReactorCounter("t_requests", "requests", ["route", "method"], registry=ours)
    our_histogram = ReactorHistogram("t_seconds", "latency", ["route"], buckets=BUCKETS, registry=ours)
    for route, method, seconds in seen:
        counter.labels(route, method).inc()
        histogram.labels(route).observe(seconds)
        our_counter.inc(route, method)
        our_histogram.observe(seconds, route)
    assert _exposition(ours) == _exposition(theirs)


def test_registry_reads_samples_by_name() -> None:
    registry = CollectorRegistry()
    outcomes = ReactorCounter("t_outcomes", "outcomes", ["outcome"], registry=registry)
    outcomes.inc("cached")
    outcomes.inc("cached")
    outcomes.inc("leased", amount=3)
    assert registry.get_sample_value("t_outcomes_total", {"outcome": "cached"}) == 2.0
    assert registry.get_sample_value("t_outcomes_total", {"outcome": "leased"}) == 3.0
    assert outcomes.value("cached") == 2.0 and outcomes.value("nothing") == 0.0
