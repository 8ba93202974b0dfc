"""Per-client token buckets behind `X-RateLimit-*`, `429`/`2001` and `Retry-After`.

The buckets run on a monotonic host clock, deliberately not on the emulator's `Clock`: a rate limit is about
the pace at which a real client sends real requests. If it followed the emulator clock, freezing that clock
would stop the refill and lock a client out forever, and jumping it a day ahead would hand out free bursts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9  # float slack so 119.99999999 tokens after a refill still counts as a full bucket
_DEFAULT_MAX_KEYS = 10_000


# Slower than this and the seconds until a bucket refills stop being a number a header can carry: 5e-324 made
# Retry-After infinite (a 500 on every API request). One token per 1,000 s is slower than any real limit.
MIN_REFILL_PER_SECOND = 0.001


@dataclass(frozen=True)
class RateLimitSettings:
    """Bucket size and refill rate, shared by every client; the spec's example limit is 120."""

    capacity: int = 120
    refill_per_second: float = 20.0

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not math.isfinite(self.refill_per_second) or self.refill_per_second < MIN_REFILL_PER_SECOND:
            raise ValueError(f"refill_per_second must be at least {MIN_REFILL_PER_SECOND}")


@dataclass(frozen=True)
class RateDecision:
    """Everything the web layer needs for the headers: `limit`, `remaining` and `reset_seconds` always;
    `retry_after` (>= 1) only when refused, 0 when allowed."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class RateLimiter:
    """Token buckets keyed by client id; thread-safe.

    A bucket starts full, refills continuously at ``refill_per_second`` up to ``capacity``, and a request
    takes ``cost`` tokens (a batch: one per operation) or none at all: a refused request consumes nothing.

    A ``cost`` above ``capacity`` can never be satisfied. It is refused, consuming nothing, with
    ``retry_after`` equal to the seconds until the bucket is full (at least 1): the longest wait that could
    matter. Callers that can split the work (or reject it as a 4000) should do so instead of retrying.

    Memory stays bounded: a full bucket is indistinguishable from a missing one, so once the table grows past
    ``max_keys`` every bucket that has refilled is dropped; the threshold then doubles with the live count so
    purges stay amortized O(1) per call.
    """

    def __init__(self, settings: RateLimitSettings | None = None, monotonic: Callable[[], float] = time.monotonic,
                 *, max_keys: int = _DEFAULT_MAX_KEYS) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._settings = settings if settings is not None else RateLimitSettings()
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._purge_at = max_keys
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    @property
    def settings(self) -> RateLimitSettings:
        return self._settings

    def configure(self, settings: RateLimitSettings) -> None:
        """New limits for everyone (the control plane's knob); every bucket starts full under them."""
        with self._lock:
            self._settings = settings
            self._buckets.clear()
            self._purge_at = self._max_keys

    def take(self, key: str, cost: int = 1) -> RateDecision:
        """Spend ``cost`` tokens from ``key``'s bucket if it holds them; ``cost=0`` just reports the state."""
        if cost < 0:
            raise ValueError("cost must be >= 0")
        capacity = self._settings.capacity
        with self._lock:
            now = self._monotonic()
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._purge_at:
                    self._purge(now)
                bucket = _Bucket(float(capacity), now)
                self._buckets[key] = bucket
            else:
                self._refill(bucket, now)
            allowed = cost <= capacity and bucket.tokens + _EPSILON >= cost
            if allowed:
                bucket.tokens = max(bucket.tokens - cost, 0.0)
            tokens = bucket.tokens
        if allowed:
            retry_after = 0
        elif cost > capacity:
            retry_after = max(self._seconds_for(capacity - tokens), 1)
        else:
            retry_after = max(self._seconds_for(cost - tokens), 1)
        return RateDecision(allowed=allowed, limit=capacity, remaining=math.floor(tokens + _EPSILON),
                            reset_seconds=self._seconds_for(capacity - tokens), retry_after=retry_after)

    def reset(self, key: str | None = None) -> None:
        """Refill one client's bucket, or every bucket (the emulator's reset endpoint)."""
        with self._lock:
            if key is None:
                self._buckets.clear()
                self._purge_at = self._max_keys
            else:
                self._buckets.pop(key, None)

    def __len__(self) -> int:
        """Buckets currently tracked; exposed so tests can check the memory bound."""
        with self._lock:
            return len(self._buckets)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(now - bucket.updated, 0.0)  # a misbehaving source going backwards must not drain tokens
        bucket.tokens = min(bucket.tokens + elapsed * self._settings.refill_per_second,
                            float(self._settings.capacity))
        bucket.updated = now

    def _purge(self, now: float) -> None:
        """Drop buckets that have refilled completely; caller holds the lock."""
        rate = self._settings.refill_per_second
        capacity = self._settings.capacity
        full = [key for key, bucket in self._buckets.items()
                if bucket.tokens + max(now - bucket.updated, 0.0) * rate + _EPSILON >= capacity]
        for key in full:
            del self._buckets[key]
        self._purge_at = max(self._max_keys, 2 * len(self._buckets))

    def _seconds_for(self, tokens: float) -> int:
        """Whole seconds until ``tokens`` more have been refilled, rounded up."""
        if tokens <= _EPSILON:
            return 0
        return math.ceil(tokens / self._settings.refill_per_second - _EPSILON)
