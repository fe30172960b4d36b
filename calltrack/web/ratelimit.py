"""Token-bucket rate limits, per client address and per site key.

Limits live in each process's memory: they protect the process from floods and need not
survive a restart. Behind a load balancer with N processes the effective limit is up to N
times the configured one; set it accordingly (README, "Running several processes").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allow ``per_minute`` requests a minute per key, with bursts of the same size.

    Keys are kept in LRU order and the oldest are dropped past ``max_keys``, so a flood from
    random addresses cannot exhaust memory.
    """

    def __init__(self, per_minute: int, *, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def available(self, key: str, now: float) -> bool:
        """Whether a token is there for ``key`` now (nothing is spent)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return self.burst >= 1.0
        return min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate) >= 1.0

    def allow(self, key: str, now: float) -> float:
        """0.0 when allowed (and a token is spent), else the seconds until a token is free."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate if self.rate > 0 else 60.0
