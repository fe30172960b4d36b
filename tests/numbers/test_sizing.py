"""calltrack/numbers/sizing.py: concurrency over time, Poisson sizing, pool health, replay simulator."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from calltrack.numbers.sizing import (
    UtilisationPoint,
    concurrency_series,
    pool_health,
    poisson_quantile,
    simulate_pool,
)

HOUR = 3600.0


# --- concurrency_series -------------------------------------------------------------------------


def test_concurrency_series_hand_computed() -> None:
    spans = [(0.0, 1800.0), (900.0, 2700.0), (1000.0, 1100.0), (5000.0, 9000.0)]
    series = concurrency_series(spans, 0.0, 3 * HOUR, HOUR, 4)
    # Hour 0: three at once at t=1000..1100. Hour 1: one from 5000. Hour 2: that one still held.
    assert series == [
        UtilisationPoint(0.0, 3, 0.75),
        UtilisationPoint(HOUR, 1, 0.25),
        UtilisationPoint(2 * HOUR, 1, 0.25),
    ]


def test_handover_at_the_same_instant_is_not_two_held() -> None:
    series = concurrency_series([(0.0, 100.0), (100.0, 200.0), (200.0, 300.0)], 0.0, HOUR, HOUR, 1)
    assert [p.peak_leases for p in series] == [1]
    assert series[0].utilisation == 1.0


def test_span_started_before_since_counts_from_since() -> None:
    series = concurrency_series([(-500.0, 100.0), (50.0, 60.0)], 0.0, HOUR, HOUR, 2)
    assert [p.peak_leases for p in series] == [2]


@pytest.mark.parametrize(
    "span",
    [
        (-100.0, 0.0),  # ended exactly at since
        (-100.0, -50.0),  # ended before since
        (HOUR, HOUR + 10),  # starts exactly at until
        (500.0, 500.0),  # zero length
        (600.0, 400.0),  # ends before it starts
    ],
)
def test_spans_outside_the_window_or_empty_are_ignored(span: tuple[float, float]) -> None:
    assert [p.peak_leases for p in concurrency_series([span], 0.0, HOUR, HOUR, 1)] == [0]


def test_span_running_past_until_is_clipped() -> None:
    series = concurrency_series([(1000.0, 10 * HOUR)], 0.0, 2 * HOUR, HOUR, 1)
    assert [p.peak_leases for p in series] == [1, 1]


def test_partial_last_bucket() -> None:
    series = concurrency_series([(4000.0, 4100.0)], 0.0, 5000.0, HOUR, 1)
    assert [p.start for p in series] == [0.0, HOUR]
    assert [p.peak_leases for p in series] == [0, 1]


def test_bucket_starts_follow_since() -> None:
    series = concurrency_series([], 1000.0, 1000.0 + 3 * 600, 600.0, 3)
    assert [p.start for p in series] == [1000.0, 1600.0, 2200.0]
    assert all(p.peak_leases == 0 and p.utilisation == 0.0 for p in series)


def test_empty_pool_has_zero_utilisation() -> None:
    series = concurrency_series([(0.0, 10.0)], 0.0, HOUR, HOUR, 0)
    assert series == [UtilisationPoint(0.0, 1, 0.0)]


@pytest.mark.parametrize(("since", "until", "step"), [(0.0, HOUR, 0.0), (0.0, HOUR, -1.0), (HOUR, HOUR, 60.0), (HOUR, 0.0, 60.0)])
def test_concurrency_series_rejects_bad_windows(since: float, until: float, step: float) -> None:
    with pytest.raises(ValueError):
        concurrency_series([], since, until, step, 1)


def test_lease_ending_at_a_bucket_boundary_is_not_in_the_next_bucket() -> None:
    # [0, 3600) is not held at any instant of [3600, 7200); a lease ending at `since` is already ignored.
    series = concurrency_series([(0.0, HOUR)], 0.0, 2 * HOUR, HOUR, 1)
    assert [p.peak_leases for p in series] == [1, 0]


def _brute_force_peak(spans: list[tuple[float, float]], b_start: float, b_end: float, since: float) -> int:
    instants = [b_start] + [max(s, since) for s, _ in spans if b_start < max(s, since) < b_end]
    return max(sum(1 for s, e in spans if e > s and max(s, since) <= t < e) for t in instants)


@settings(max_examples=120, deadline=None)
@given(
    raw=st.lists(st.tuples(st.integers(-5, 40), st.integers(0, 20)), max_size=12),
    step=st.sampled_from([1.0, 3.0, 5.0, 10.0]),
)
def test_concurrency_series_matches_brute_force(raw: list[tuple[int, int]], step: float) -> None:
    # Times are on half-integers so no lease starts or ends on a bucket boundary.
    spans = [(s + 0.5, s + 0.5 + d) for s, d in raw]
    since, until = 0.0, 30.0
    series = concurrency_series(spans, since, until, step, 4)
    assert len(series) == math.ceil((until - since) / step)
    for p in series:
        assert p.peak_leases == _brute_force_peak(spans, p.start, p.start + step, since)
        assert p.utilisation == p.peak_leases / 4


# --- poisson_quantile ---------------------------------------------------------------------------


def _poisson_upper_tail(mean: float, n: int) -> float:
    """P(X > n) for X ~ Poisson(mean), summed in log space (no 1 - cdf cancellation)."""
    top = int(mean + 40 * math.sqrt(mean) + 60)
    return math.fsum(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(n + 1, top))


def _exact_quantile(mean: float, tail: float) -> int:
    """Smallest n with P(X > n) <= tail, from upper-tail sums accumulated from the far end."""
    top = int(mean + 40 * math.sqrt(mean) + 60)
    pmf = [math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(top)]
    upper = 0.0  # P(X > n) for the current n, summed smallest terms first
    for n in range(top - 1, -1, -1):
        # Here `upper` is P(X > n).
        if upper > tail:
            return n + 1
        upper += pmf[n]
    return 0


@pytest.mark.parametrize(
    ("mean", "tail", "expected"),
    [
        # P(X>3 | 1) = 0.0190, P(X>4 | 1) = 0.00366
        (1.0, 0.01, 4),
        # P(X>17 | 10) = 0.0143, P(X>18 | 10) = 0.00719
        (10.0, 0.01, 18),
        # P(X>1 | 0.5) = 0.0902, P(X>2 | 0.5) = 0.0144
        (0.5, 0.05, 2),
        (3.0, 0.001, 10),
        (100.0, 0.01, 124),
        # e^-0.01 = 0.990: P(X>0 | 0.01) = 0.00995 <= 0.01
        (0.01, 0.01, 0),
        (0.02, 0.01, 1),
    ],
)
def test_poisson_quantile_known_values(mean: float, tail: float, expected: int) -> None:
    assert poisson_quantile(mean, tail) == expected
    assert poisson_quantile(mean, tail) == _exact_quantile(mean, tail)


@pytest.mark.parametrize("mean", [0.0, -1.0])
def test_poisson_quantile_of_nothing_is_zero(mean: float) -> None:
    assert poisson_quantile(mean, 0.01) == 0


@settings(max_examples=80, deadline=None)
@given(
    mean=st.floats(min_value=0.05, max_value=300.0),
    tail=st.sampled_from([0.5, 0.2, 0.1, 0.05, 0.01, 0.001, 0.0001]),
)
def test_poisson_quantile_is_the_smallest_n_with_tail_at_most_target(mean: float, tail: float) -> None:
    n = poisson_quantile(mean, tail)
    eps = 1e-9
    assert _poisson_upper_tail(mean, n) <= tail * (1 + eps) + 1e-15
    if n > 0:
        assert _poisson_upper_tail(mean, n - 1) > tail * (1 - eps) - 1e-15


@settings(max_examples=40, deadline=None)
@given(mean=st.floats(min_value=0.05, max_value=200.0), tail=st.sampled_from([0.1, 0.01, 0.001]))
def test_poisson_quantile_monotone(mean: float, tail: float) -> None:
    assert poisson_quantile(mean * 1.5, tail) >= poisson_quantile(mean, tail)
    assert poisson_quantile(mean, tail / 10) >= poisson_quantile(mean, tail)


@pytest.mark.parametrize(("mean", "tail"), [(699.0, 0.01), (700.0, 0.01), (1000.0, 0.01), (1000.0, 0.001), (5000.0, 0.01)])
def test_poisson_quantile_large_means_are_close_to_exact(mean: float, tail: float) -> None:
    # Past exp(-mean) underflow the code uses a normal approximation: within one number.
    assert abs(poisson_quantile(mean, tail) - _exact_quantile(mean, tail)) <= 1


# --- pool_health --------------------------------------------------------------------------------


def _arrivals(n: int, duration: float, start: float = 0.0, window: float = HOUR) -> list[tuple[float, float]]:
    gap = window / n
    return [(start + i * gap, start + i * gap + duration) for i in range(n)]


def test_pool_health_hand_computed() -> None:
    # 10 arrivals an hour, 300 s each, 360 s apart: never two at once.
    # Offered load = 10/3600 * (300 + 60) = 1.0, and P(X>4 | 1) = 0.0037 <= 1% < P(X>3 | 1).
    spans = _arrivals(10, 300.0)
    h = pool_health(spans, [], size=3, cooldown_seconds=60, since=0.0, until=HOUR, step=HOUR)
    assert h.size == 3
    assert h.peak_concurrent == 1
    assert h.exhausted == 0
    assert h.leases == 10
    assert h.busiest_hour_arrivals == 10
    assert h.mean_lease_seconds == 300.0
    assert h.recommended_size == 4
    assert h.series == (UtilisationPoint(0.0, 1, 1 / 3),)


def test_pool_health_empty() -> None:
    h = pool_health([], [], size=5, cooldown_seconds=300, since=0.0, until=2 * HOUR)
    assert h.peak_concurrent == 0
    assert h.leases == 0
    assert h.exhausted == 0
    assert h.busiest_hour_arrivals == 0
    assert h.mean_lease_seconds == 0.0
    assert h.recommended_size == 0
    assert len(h.series) == 2


def test_pool_health_counts_only_inside_the_window() -> None:
    spans = [(-100.0, 50.0), (10.0, 20.0), (HOUR + 5, HOUR + 10)]
    h = pool_health(spans, [-1.0, 5.0, HOUR], size=2, cooldown_seconds=0, since=0.0, until=HOUR)
    assert h.leases == 1
    assert h.exhausted == 1
    # Arrivals in the busiest hour include requests that found the pool exhausted.
    assert h.busiest_hour_arrivals == 2


def test_busiest_hour_is_a_sliding_window() -> None:
    # 5 arrivals in the last half hour of hour 0 and 5 in the first half of hour 1: 10 within an hour.
    spans = [(1800.0 + i * 300, 1800.0 + i * 300 + 60) for i in range(10)]
    h = pool_health(spans, [], size=10, cooldown_seconds=0, since=0.0, until=2 * HOUR)
    assert h.busiest_hour_arrivals == 10


def test_busiest_hour_window_is_less_than_an_hour_wide() -> None:
    # Arrivals exactly an hour apart are not in the same hour; a second less and they are.
    apart = pool_health([(0.0, 10.0), (HOUR, HOUR + 10)], [], size=2, cooldown_seconds=0, since=0.0, until=2 * HOUR)
    assert apart.busiest_hour_arrivals == 1
    close = pool_health([(1.0, 10.0), (HOUR, HOUR + 10)], [], size=2, cooldown_seconds=0, since=0.0, until=2 * HOUR)
    assert close.busiest_hour_arrivals == 2


def test_recommended_size_is_at_least_the_peak_without_exhaustion() -> None:
    # 6 leases all at once, once a day: the Poisson load is tiny, the observed peak is 6.
    spans = [(100.0 + i, 160.0 + i) for i in range(6)]
    h = pool_health(spans, [], size=8, cooldown_seconds=60, since=0.0, until=24 * HOUR)
    assert h.peak_concurrent == 6
    assert h.recommended_size >= 6


def test_recommended_size_is_never_below_the_peak_even_with_exhaustion() -> None:
    spans = [(0.0, 60.0), (0.0, 60.0), (0.0, 60.0)]
    h = pool_health(spans, [30.0], size=3, cooldown_seconds=60, since=0.0, until=HOUR)
    assert h.peak_concurrent == 3
    assert h.exhausted == 1
    assert h.recommended_size >= h.peak_concurrent


def test_recommended_size_grows_with_arrivals() -> None:
    sizes = [
        pool_health(_arrivals(n, 600.0), [], size=50, cooldown_seconds=300, since=0.0, until=HOUR).recommended_size
        for n in (5, 20, 80, 200)
    ]
    assert sizes == sorted(sizes)
    assert sizes[-1] > sizes[0]
    assert len(set(sizes)) == 4


def test_recommended_size_grows_with_hold_time() -> None:
    sizes = [
        pool_health(_arrivals(30, d), [], size=50, cooldown_seconds=60, since=0.0, until=3 * HOUR).recommended_size
        for d in (60.0, 600.0, 1800.0, 3600.0)
    ]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 4


def test_recommended_size_grows_with_cooldown() -> None:
    spans = _arrivals(30, 300.0)
    small = pool_health(spans, [], size=50, cooldown_seconds=60, since=0.0, until=HOUR).recommended_size
    large = pool_health(spans, [], size=50, cooldown_seconds=1800, since=0.0, until=HOUR).recommended_size
    assert large > small


def test_recommended_size_matches_the_poisson_model() -> None:
    # 40 arrivals an hour, 900 s lease + 300 s cool-down: A = 40/3600 * 1200 = 13.33...
    spans = _arrivals(40, 900.0)
    h = pool_health(spans, [], size=50, cooldown_seconds=300, since=0.0, until=HOUR, target_exhaustion=0.01)
    assert h.recommended_size == max(_exact_quantile(40 / 3600 * 1200, 0.01), h.peak_concurrent)


# --- simulate_pool: hand-worked -----------------------------------------------------------------


def test_size_one_two_overlapping_visitors_second_is_exhausted() -> None:
    r = simulate_pool([("a", 0.0), ("b", 10.0)], size=1, hold_seconds=100, cooldown_seconds=0)
    assert (r.requests, r.exhausted_requests, r.visitors, r.peak_concurrent) == (2, 1, 2, 1)
    assert r.exhausted_share == 0.5
    assert (r.size, r.hold_seconds, r.cooldown_seconds) == (1, 100, 0)


def test_size_two_two_overlapping_visitors_both_served() -> None:
    r = simulate_pool([("a", 0.0), ("b", 10.0)], size=2, hold_seconds=100, cooldown_seconds=0)
    assert (r.exhausted_requests, r.peak_concurrent) == (0, 2)


def test_same_visitor_renewing_keeps_its_number() -> None:
    # a renews at 50, 120, 200 (each before its deadline), so b at 250 still finds the number held.
    reqs = [("a", 0.0), ("a", 50.0), ("a", 120.0), ("a", 200.0), ("b", 250.0)]
    r = simulate_pool(reqs, size=1, hold_seconds=100, cooldown_seconds=0)
    assert r.requests == 5
    assert r.exhausted_requests == 1  # only b
    assert r.visitors == 2
    assert r.peak_concurrent == 1


def test_lease_ends_hold_seconds_after_the_last_request() -> None:
    # a's last request at 200 -> lease ends at 300; b gets the number at 300, not before.
    reqs = [("a", 0.0), ("a", 200.0), ("b", 299.0), ("b", 300.0)]
    r = simulate_pool(reqs, size=1, hold_seconds=100, cooldown_seconds=0)
    assert r.exhausted_requests == 1


def test_cooldown_blocks_reuse() -> None:
    # a's lease ends at 100; the number is free again at 100 + 300 = 400.
    reqs = [("a", 0.0), ("b", 150.0), ("b", 399.0), ("b", 400.0)]
    r = simulate_pool(reqs, size=1, hold_seconds=100, cooldown_seconds=300)
    assert r.exhausted_requests == 2
    assert r.exhausted_share == 0.5
    no_cooldown = simulate_pool(reqs, size=1, hold_seconds=100, cooldown_seconds=0)
    assert no_cooldown.exhausted_requests == 0


def test_exhausted_visitor_tries_again_on_its_next_request() -> None:
    reqs = [("a", 0.0), ("b", 10.0), ("b", 20.0), ("b", 150.0), ("b", 160.0)]
    r = simulate_pool(reqs, size=1, hold_seconds=100, cooldown_seconds=0)
    # b is refused at 10 and 20; gets the number at 150 and renews it at 160.
    assert r.exhausted_requests == 2


def test_requests_are_replayed_in_time_order() -> None:
    ordered = [("a", 0.0), ("b", 10.0), ("c", 200.0)]
    shuffled = [ordered[2], ordered[0], ordered[1]]
    assert simulate_pool(shuffled, size=1, hold_seconds=100, cooldown_seconds=0) == simulate_pool(
        ordered, size=1, hold_seconds=100, cooldown_seconds=0
    )


def test_size_zero_exhausts_everything() -> None:
    r = simulate_pool([("a", 0.0), ("a", 1.0), ("b", 2.0)], size=0, hold_seconds=100, cooldown_seconds=0)
    assert r.exhausted_requests == 3
    assert r.exhausted_share == 1.0
    assert r.peak_concurrent == 0


def test_no_requests() -> None:
    r = simulate_pool([], size=3, hold_seconds=100, cooldown_seconds=60)
    assert (r.requests, r.exhausted_requests, r.visitors, r.peak_concurrent) == (0, 0, 0, 0)
    assert r.exhausted_share == 0.0


def test_accepts_a_generator() -> None:
    r = simulate_pool(((f"v{i}", float(i)) for i in range(3)), size=2, hold_seconds=100, cooldown_seconds=0)
    assert (r.requests, r.exhausted_requests, r.peak_concurrent) == (3, 1, 2)


@pytest.mark.parametrize(
    ("size", "hold", "cooldown"), [(-1, 100, 0), (1, 0, 0), (1, -5, 0), (1, 100, -1)]
)
def test_simulate_pool_rejects_bad_parameters(size: int, hold: float, cooldown: float) -> None:
    with pytest.raises(ValueError):
        simulate_pool([], size=size, hold_seconds=hold, cooldown_seconds=cooldown)


# --- simulate_pool: properties ------------------------------------------------------------------

_requests = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(0, 600).map(float)), max_size=25
)


@settings(max_examples=80, deadline=None)
@given(
    reqs=_requests,
    hold=st.sampled_from([30.0, 60.0, 120.0, 300.0]),
    cooldown=st.sampled_from([0.0, 10.0, 60.0, 300.0]),
)
def test_exhausted_share_is_non_increasing_in_size(
    reqs: list[tuple[str, float]], hold: float, cooldown: float
) -> None:
    shares = [
        simulate_pool(reqs, size=n, hold_seconds=hold, cooldown_seconds=cooldown).exhausted_share for n in range(0, 8)
    ]
    assert all(later <= earlier for earlier, later in zip(shares, shares[1:])), shares


@settings(max_examples=80, deadline=None)
@given(reqs=_requests, hold=st.sampled_from([30.0, 60.0, 120.0, 300.0]), extra=st.integers(0, 2))
def test_enough_numbers_for_every_visitor_means_no_exhaustion(
    reqs: list[tuple[str, float]], hold: float, extra: int
) -> None:
    # With no cool-down a visitor's old number is free again by the time it asks again, so one
    # number per distinct visitor always suffices. (With a cool-down it need not: a visitor who
    # returns after its lease ended waits for its old number's cool-down like anyone else.)
    visitors = len({v for v, _ in reqs})
    r = simulate_pool(reqs, size=visitors + extra, hold_seconds=hold, cooldown_seconds=0)
    assert r.exhausted_requests == 0
    assert r.exhausted_share == 0.0


@settings(max_examples=60, deadline=None)
@given(reqs=_requests, hold=st.sampled_from([60.0, 300.0]), cooldown=st.sampled_from([0.0, 60.0, 300.0]), extra=st.integers(0, 2))
def test_visitors_that_never_let_their_lease_lapse_need_one_number_each(
    reqs: list[tuple[str, float]], hold: float, cooldown: float, extra: int
) -> None:
    # Each visitor's requests fall within hold_seconds of each other: leases never lapse, so
    # cool-downs never matter.
    by_visitor: dict[str, list[float]] = {}
    for v, t in reqs:
        by_visitor.setdefault(v, []).append(t)
    for times in by_visitor.values():
        times.sort()
        assume(all(b - a < hold for a, b in zip(times, times[1:])))
    r = simulate_pool(reqs, size=len(by_visitor) + extra, hold_seconds=hold, cooldown_seconds=cooldown)
    assert r.exhausted_requests == 0


@settings(max_examples=80, deadline=None)
@given(
    reqs=_requests,
    size=st.integers(0, 6),
    hold=st.sampled_from([30.0, 60.0, 300.0]),
    cooldown=st.sampled_from([0.0, 60.0, 300.0]),
)
def test_simulation_invariants(reqs: list[tuple[str, float]], size: int, hold: float, cooldown: float) -> None:
    r = simulate_pool(reqs, size=size, hold_seconds=hold, cooldown_seconds=cooldown)
    assert 0.0 <= r.exhausted_share <= 1.0
    assert r.requests == len(reqs)
    assert 0 <= r.exhausted_requests <= r.requests
    assert r.visitors == len({v for v, _ in reqs})
    assert r.peak_concurrent <= min(size, r.visitors)
    if size == 0:
        assert r.exhausted_requests == r.requests
    # The very first request always gets a number when the pool has one.
    if reqs and size > 0:
        assert r.exhausted_requests < r.requests
