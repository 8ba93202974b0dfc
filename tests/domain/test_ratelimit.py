"""Token buckets run on an injected monotonic source, so every test here controls time exactly."""

from __future__ import annotations

import random
import threading

import pytest

from mock_server.domain.ratelimit import RateDecision, RateLimiter, RateLimitSettings


class FakeMonotonic:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter(capacity: int = 10, rate: float = 2.0, **kwargs: int) -> tuple[RateLimiter, FakeMonotonic]:
    clock = FakeMonotonic()
    return RateLimiter(RateLimitSettings(capacity=capacity, refill_per_second=rate), clock, **kwargs), clock


def test_defaults_match_the_spec_example() -> None:
    settings = RateLimitSettings()
    assert (settings.capacity, settings.refill_per_second) == (120, 20.0)
    decision = RateLimiter(settings).take("client")
    assert decision == RateDecision(allowed=True, limit=120, remaining=119, reset_seconds=1, retry_after=0)


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0), (1, float("inf"))])
def test_settings_are_validated(capacity: int, rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimitSettings(capacity=capacity, refill_per_second=rate)


def test_burst_up_to_capacity_then_refused_with_retry_after() -> None:
    rl, _ = limiter(capacity=10, rate=2.0)
    decisions = [rl.take("c") for _ in range(10)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(9, -1, -1))
    assert decisions[-1].reset_seconds == 5  # 10 tokens at 2/s
    refused = rl.take("c")
    assert refused == RateDecision(allowed=False, limit=10, remaining=0, reset_seconds=5, retry_after=1)


def test_refused_requests_consume_nothing() -> None:
    rl, clock = limiter(capacity=4, rate=1.0)
    rl.take("c", cost=4)
    for _ in range(5):
        assert not rl.take("c").allowed
    clock.sleep(1.0)
    assert rl.take("c").allowed


def test_refills_over_time_and_caps_at_capacity() -> None:
    rl, clock = limiter(capacity=10, rate=2.0)
    rl.take("c", cost=10)
    clock.sleep(1.25)  # 2.5 tokens
    assert rl.take("c", cost=0).remaining == 2
    decision = rl.take("c", cost=3)
    assert not decision.allowed and decision.retry_after == 1  # 0.5 tokens short at 2/s: 0.25 s, rounded up
    assert decision.reset_seconds == 4  # 7.5 tokens missing: 3.75 s
    clock.sleep(3600)
    full = rl.take("c", cost=0)
    assert (full.remaining, full.reset_seconds) == (10, 0)


def test_retry_after_is_exact_time_until_cost_is_available() -> None:
    rl, clock = limiter(capacity=100, rate=0.5)
    rl.take("c", cost=100)
    refused = rl.take("c", cost=3)
    assert refused.retry_after == 6  # 3 tokens at 0.5/s
    clock.sleep(refused.retry_after)
    assert rl.take("c", cost=3).allowed


def test_cost_above_capacity_is_refused_with_time_to_full() -> None:
    rl, clock = limiter(capacity=10, rate=2.0)
    first = rl.take("c", cost=11)
    assert not first.allowed and first.retry_after == 1 and first.remaining == 10
    rl.take("c", cost=4)
    drained = rl.take("c", cost=11)
    assert drained.retry_after == 2 and drained.reset_seconds == 2
    clock.sleep(1000)
    assert not rl.take("c", cost=11).allowed  # never satisfiable, whatever the wait
    assert rl.take("c", cost=10).allowed  # a batch of exactly capacity fits a full bucket


def test_negative_cost_is_a_programming_error() -> None:
    rl, _ = limiter()
    with pytest.raises(ValueError):
        rl.take("c", cost=-1)


def test_keys_are_isolated() -> None:
    rl, _ = limiter(capacity=3, rate=1.0)
    for _ in range(3):
        assert rl.take("alice").allowed
    assert not rl.take("alice").allowed
    assert rl.take("bob").remaining == 2
    rl.reset("alice")
    assert rl.take("alice").remaining == 2
    assert rl.take("bob").remaining == 1


def test_reset_refills_everyone() -> None:
    rl, _ = limiter(capacity=2, rate=0.1)
    rl.take("a", cost=2)
    rl.take("b", cost=2)
    rl.reset()
    assert len(rl) == 0
    assert rl.take("a", cost=2).allowed and rl.take("b", cost=2).allowed


def test_exponential_backoff_client_recovers() -> None:
    """A client hammering the API backs off by retry_after * 2**attempt with seeded jitter and gets through."""
    rl, clock = limiter(capacity=5, rate=1.0)
    rng = random.Random(42)
    sent = 0
    for _ in range(20):  # 20 logical requests, far more than one burst allows
        attempt = 0
        while True:
            decision = rl.take("client")
            if decision.allowed:
                sent += 1
                break
            assert decision.retry_after >= 1
            assert attempt < 6, "client never recovered"
            clock.sleep(decision.retry_after * 2**attempt * (1 + rng.random() / 2))
            attempt += 1
    assert sent == 20


def test_a_client_honouring_retry_after_is_never_refused_twice_in_a_row() -> None:
    rl, clock = limiter(capacity=10, rate=3.0)
    rng = random.Random(1)
    for _ in range(200):
        cost = rng.randint(1, 10)
        decision = rl.take("client", cost=cost)
        if not decision.allowed:
            clock.sleep(decision.retry_after)
            assert rl.take("client", cost=cost).allowed
        clock.sleep(rng.random() * 0.2)


def test_a_real_monotonic_clock_works_by_default() -> None:
    rl = RateLimiter(RateLimitSettings(capacity=2, refill_per_second=0.001))
    assert rl.take("c").allowed and rl.take("c").allowed
    refused = rl.take("c")
    assert not refused.allowed and refused.retry_after >= 999


def test_thread_safety_exactly_capacity_allowed_when_time_is_frozen() -> None:
    rl, _ = limiter(capacity=500, rate=1.0)
    allowed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        mine = sum(rl.take("shared").allowed for _ in range(100))
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 500


def test_memory_stays_bounded_by_dropping_full_idle_buckets() -> None:
    rl, clock = limiter(capacity=10, rate=10.0, max_keys=100)
    for i in range(1000):
        rl.take(f"client-{i}")
        clock.sleep(0.2)  # each bucket refills (1 token at 10/s) long before the table doubles
    assert len(rl) <= 100
    # Buckets that are not full survive a purge: their state matters.
    rl2, _ = limiter(capacity=10, rate=0.001, max_keys=10)
    for i in range(10):
        rl2.take(f"busy-{i}", cost=10)
    rl2.take("newcomer")
    for i in range(10):
        assert not rl2.take(f"busy-{i}").allowed
    assert len(rl2) == 11
