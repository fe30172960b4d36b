"""calltrack/web/ratelimit.py: token buckets per key, with a bounded number of keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calltrack.web.ratelimit import RateLimiter


def test_burst_of_per_minute_then_refused() -> None:
    rl = RateLimiter(60)
    assert [rl.allow("1.2.3.4", 1000.0) for _ in range(60)] == [0.0] * 60
    assert rl.allow("1.2.3.4", 1000.0) > 0.0


def test_retry_after_is_the_time_until_one_token() -> None:
    rl = RateLimiter(60)  # one token a second
    for _ in range(60):
        rl.allow("k", 0.0)
    assert rl.allow("k", 0.0) == pytest.approx(1.0)
    assert rl.allow("k", 0.25) == pytest.approx(0.75)
    assert rl.allow("k", 0.75) == pytest.approx(0.25)
    assert rl.allow("k", 1.0) == 0.0  # a token has refilled, and is spent
    assert rl.allow("k", 1.0) == pytest.approx(1.0)


def test_retry_after_scales_with_the_rate() -> None:
    rl = RateLimiter(6)  # one token every 10 s
    for _ in range(6):
        assert rl.allow("k", 0.0) == 0.0
    assert rl.allow("k", 0.0) == pytest.approx(10.0)
    assert rl.allow("k", 4.0) == pytest.approx(6.0)


def test_refused_requests_spend_nothing() -> None:
    rl = RateLimiter(60)
    for _ in range(60):
        rl.allow("k", 0.0)
    for _ in range(100):
        assert rl.allow("k", 0.5) > 0.0
    assert rl.allow("k", 1.0) == 0.0


def test_refill_over_time() -> None:
    rl = RateLimiter(600)  # 10 a second
    for _ in range(600):
        rl.allow("k", 0.0)
    assert rl.allow("k", 0.0) > 0
    # After 2 s, 20 tokens.
    assert [rl.allow("k", 2.0) for _ in range(20)] == [0.0] * 20
    assert rl.allow("k", 2.0) > 0


def test_refill_is_capped_at_the_burst() -> None:
    rl = RateLimiter(10)
    rl.allow("k", 0.0)
    # A day later the bucket holds 10, not thousands.
    allowed = sum(1 for _ in range(50) if rl.allow("k", 86400.0) == 0.0)
    assert allowed == 10


def test_keys_are_independent() -> None:
    rl = RateLimiter(2)
    assert rl.allow("a", 0.0) == 0.0
    assert rl.allow("a", 0.0) == 0.0
    assert rl.allow("a", 0.0) > 0
    assert rl.allow("b", 0.0) == 0.0
    assert rl.allow("b", 0.0) == 0.0


def test_zero_per_minute_refuses_with_a_minute() -> None:
    rl = RateLimiter(0)
    assert rl.allow("k", 0.0) == 60.0
    assert rl.allow("k", 1000.0) == 60.0


def test_lru_bound_on_keys() -> None:
    rl = RateLimiter(1, max_keys=2)
    assert rl.allow("a", 0.0) == 0.0
    assert rl.allow("b", 0.0) == 0.0
    assert rl.allow("a", 0.0) > 0  # touches a: b is now the oldest
    assert rl.allow("c", 0.0) == 0.0  # evicts b
    assert len(rl._buckets) == 2
    assert set(rl._buckets) == {"a", "c"}
    # a kept its empty bucket; b was forgotten and starts with a full one.
    assert rl.allow("a", 0.0) > 0
    assert rl.allow("b", 0.0) == 0.0


@settings(max_examples=30, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=60), max_keys=st.integers(1, 8))
def test_never_more_than_max_keys(keys: list[str], max_keys: int) -> None:
    rl = RateLimiter(5, max_keys=max_keys)
    for i, k in enumerate(keys):
        rl.allow(k, float(i))
        assert len(rl._buckets) <= max_keys
    # The most recently used key is always kept.
    assert keys[-1] in rl._buckets


@settings(max_examples=40, deadline=None)
@given(
    per_minute=st.integers(1, 120),
    gaps=st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), min_size=1, max_size=80),
)
def test_never_more_than_burst_plus_refill(per_minute: int, gaps: list[float]) -> None:
    rl = RateLimiter(per_minute)
    now, allowed = 0.0, 0
    for g in gaps:
        now += g
        wait = rl.allow("k", now)
        assert wait >= 0.0
        if wait == 0.0:
            allowed += 1
        else:
            assert wait <= 60.0 / per_minute + 1e-9
    assert allowed <= per_minute + now * per_minute / 60.0 + 1e-9
