"""Pool health and sizing: concurrency over time, a recommended size, and a replay simulator. Pure.

A number is out of use for as long as its lease lasts plus the cool-down, so a pool behaves like
an M/G/inf system whose occupancy is Poisson with mean A = (arrival rate) x (mean lease length +
cool-down). The recommended size is the smallest N whose chance of more than N numbers being
needed at the busiest hour's rate is under the target (1% by default), and never less than the
concurrency the pool actually reached.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class UtilisationPoint:
    start: float
    peak_leases: int
    utilisation: float  # peak leases / pool size in this bucket (0 when the pool is empty)


@dataclass(frozen=True)
class PoolHealth:
    size: int
    peak_concurrent: int
    exhausted: int
    leases: int
    busiest_hour_arrivals: int
    mean_lease_seconds: float
    recommended_size: int
    series: tuple[UtilisationPoint, ...]


def concurrency_series(
    spans: Sequence[tuple[float, float]], since: float, until: float, step: float, size: int
) -> list[UtilisationPoint]:
    """The most leases held at once in each ``step``-long bucket of [since, until)."""
    if step <= 0 or until <= since:
        raise ValueError("need step > 0 and until > since")
    events: list[tuple[float, int]] = []
    for start, end in spans:
        if end <= since or start >= until or end <= start:
            continue
        events.append((max(start, since), 1))
        events.append((end, -1))
    # Ends before starts at the same instant: a number handed over is not held twice.
    events.sort(key=lambda e: (e[0], e[1]))
    n_buckets = max(1, math.ceil((until - since) / step))
    peaks = [0] * n_buckets
    current = 0
    j = 0
    for b in range(n_buckets):
        b_start = since + b * step
        b_end = b_start + step
        # What happens exactly at the bucket's start belongs to it (a lease ending then is gone).
        while j < len(events) and events[j][0] <= b_start:
            current += events[j][1]
            j += 1
        peak = current
        while j < len(events) and events[j][0] < b_end:
            current += events[j][1]
            peak = max(peak, current)
            j += 1
        peaks[b] = peak
    return [
        UtilisationPoint(since + b * step, p, (p / size) if size else 0.0) for b, p in enumerate(peaks)
    ]


def poisson_quantile(mean: float, tail: float) -> int:
    """Smallest n with P(X > n) <= tail for X ~ Poisson(mean)."""
    if mean <= 0:
        return 0
    term = math.exp(-mean) if mean < 700 else 0.0
    if term == 0.0:  # large means: normal approximation with continuity correction
        z = _normal_quantile(1 - tail)
        return max(0, math.ceil(mean + z * math.sqrt(mean) - 0.5))
    cdf = term
    n = 0
    while 1 - cdf > tail:
        n += 1
        term *= mean / n
        cdf += term
    return n


def _normal_quantile(p: float) -> float:
    # Bisection on the normal CDF: plenty of precision for a pool size.
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def pool_health(
    spans: Sequence[tuple[float, float]],
    exhaustions: Sequence[float],
    *,
    size: int,
    cooldown_seconds: float,
    since: float,
    until: float,
    step: float = 3600.0,
    target_exhaustion: float = 0.01,
) -> PoolHealth:
    """Summarise a pool over [since, until): utilisation per bucket, peak, and a recommended size."""
    series = concurrency_series(spans, since, until, step, size)
    peak = max((p.peak_leases for p in series), default=0)
    starts = sorted([s for s, _ in spans if since <= s < until] + [t for t in exhaustions if since <= t < until])
    busiest = _busiest_window(starts, 3600.0)
    durations = [e - s for s, e in spans if e > s]
    mean_lease = sum(durations) / len(durations) if durations else 0.0
    offered = busiest / 3600.0 * (mean_lease + cooldown_seconds)
    recommended = max(poisson_quantile(offered, target_exhaustion), peak + (1 if exhaustions else 0), 1 if starts else 0)
    return PoolHealth(
        size=size,
        peak_concurrent=peak,
        exhausted=len([t for t in exhaustions if since <= t < until]),
        leases=len([1 for s, _ in spans if since <= s < until]),
        busiest_hour_arrivals=busiest,
        mean_lease_seconds=mean_lease,
        recommended_size=recommended,
        series=tuple(series),
    )


def _busiest_window(times: Sequence[float], width: float) -> int:
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


@dataclass(frozen=True)
class SimulationResult:
    size: int
    hold_seconds: float
    cooldown_seconds: float
    requests: int
    exhausted_requests: int
    visitors: int
    peak_concurrent: int

    @property
    def exhausted_share(self) -> float:
        return self.exhausted_requests / self.requests if self.requests else 0.0


def simulate_pool(
    requests: Iterable[tuple[str, float]], *, size: int, hold_seconds: float, cooldown_seconds: float
) -> SimulationResult:
    """Replay (visitor, time) number requests against a pool of ``size`` numbers.

    Same rules as the service: a visitor with a live lease keeps it and renews it; a lease ends
    ``hold_seconds`` after its last request; its number is free again ``cooldown_seconds``
    later; a request that finds no free number is exhausted (it would get the overflow number)
    and the visitor tries again on its next request.
    """
    if size < 0 or hold_seconds <= 0 or cooldown_seconds < 0:
        raise ValueError("size >= 0, hold_seconds > 0 and cooldown_seconds >= 0 are required")
    ordered = sorted(requests, key=lambda r: (r[1], r[0]))
    free: list[float] = [0.0] * size  # heap of the times numbers become free
    held: dict[str, float] = {}  # visitor -> lease deadline
    deadlines: list[tuple[float, str]] = []  # heap of (deadline, visitor), lazily invalidated
    exhausted = 0
    peak = 0
    visitors: set[str] = set()
    for vid, ts in ordered:
        visitors.add(vid)
        while deadlines and deadlines[0][0] <= ts:
            deadline, who = heapq.heappop(deadlines)
            if held.get(who) == deadline:
                del held[who]
                heapq.heappush(free, deadline + cooldown_seconds)
        if vid in held:
            held[vid] = ts + hold_seconds
            heapq.heappush(deadlines, (held[vid], vid))
            continue
        if free and free[0] <= ts:
            heapq.heappop(free)
            held[vid] = ts + hold_seconds
            heapq.heappush(deadlines, (held[vid], vid))
            peak = max(peak, len(held))
        else:
            exhausted += 1
    return SimulationResult(size, hold_seconds, cooldown_seconds, len(ordered), exhausted, len(visitors), peak)
