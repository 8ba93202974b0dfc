"""Fault matching, counting, seeded probability and the refusals, without HTTP."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ErrorCode
from mock_server.domain.faults import FaultError, FaultRequest, Faults
from mock_server.re2_patterns import compile_pattern

API = {"createOrder": frozenset({400, 422, 429, 500, 502, 503}), "getAccount": frozenset({401, 429, 500, 502, 503}),
       "token": frozenset({413, 415, 500, 502, 503})}


def faults(seed: int = 7) -> Faults:
    counter = itertools.count(1)
    return Faults(seed, Clock(start=datetime(2026, 11, 25, 15, tzinfo=UTC), frozen=True),
                  lambda prefix: f"{prefix}_{next(counter):026d}", compile_pattern)


def take(store: Faults, operation: str = "createOrder", path: str = "/v1/orders"):
    return store.take(operation, path, API[operation])


def test_nothing_active_means_no_injection() -> None:
    assert take(faults()).empty


def test_operation_and_path_scope_what_a_fault_hits() -> None:
    store = faults()
    store.add(FaultRequest(operation="createOrder", latency_ms=100), API)
    store.add(FaultRequest(path=r"^/v1/account$", latency_ms=7), API)
    assert take(store).latency_ms == 100
    assert take(store, "getAccount", "/v1/account").latency_ms == 7
    assert take(store, "token", "/token").empty


def test_a_global_fault_hits_every_operation_that_documents_its_status() -> None:
    store = faults()
    store.add(FaultRequest(error_code=ErrorCode.INSUFFICIENT_FUNDS), API)  # 422: createOrder only
    outcome = take(store).outcome
    assert outcome is not None and outcome.code is ErrorCode.INSUFFICIENT_FUNDS and outcome.status == 422
    assert take(store, "getAccount", "/v1/account").empty
    assert take(store, "token", "/token").empty


def test_count_fires_that_many_times_then_the_fault_expires() -> None:
    store = faults()
    fault = store.add(FaultRequest(status=503, count=2), API)
    assert [take(store).outcome is not None for _ in range(4)] == [True, True, False, False]
    assert store.all() == []
    with pytest.raises(Exception, match="No fault"):
        store.remove(fault.id)


def test_latencies_add_up_and_the_first_outcome_decides() -> None:
    store = faults()
    store.add(FaultRequest(latency_ms=10), API)
    first = store.add(FaultRequest(status=502, latency_ms=5, count=1), API)
    second = store.add(FaultRequest(error_code=ErrorCode.RATE_LIMIT_EXCEEDED, count=1), API)
    injection = take(store)
    assert injection.latency_ms == 15
    assert injection.outcome is not None and injection.outcome.status == 502
    assert injection.outcome.code is ErrorCode.INTERNAL_ERROR
    # The second outcome was not evaluated, so its count is intact: it decides the next request.
    assert second.id not in injection.fault_ids and first.id not in {f.id for f in store.all()}
    following = take(store).outcome
    assert following is not None and following.code is ErrorCode.RATE_LIMIT_EXCEEDED and following.retry_after == 1


def test_probability_is_seeded_per_fault_and_repeats() -> None:
    def pattern(seed: int) -> list[bool]:
        store = faults(seed)
        store.add(FaultRequest(status=500, probability=0.5), API)
        return [take(store).outcome is not None for _ in range(64)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)
    assert 10 < sum(pattern(7)) < 54


def test_a_fault_draws_the_same_whatever_other_faults_see() -> None:
    lonely = faults()
    lonely.add(FaultRequest(operation="createOrder", status=500, probability=0.5), API)
    crowded = faults()
    crowded.add(FaultRequest(operation="createOrder", status=500, probability=0.5), API)
    crowded.add(FaultRequest(operation="getAccount", latency_ms=1, probability=0.3), API)
    seen_lonely, seen_crowded = [], []
    for _ in range(32):
        seen_lonely.append(take(lonely).outcome is not None)
        take(crowded, "getAccount", "/v1/account")
        seen_crowded.append(take(crowded).outcome is not None)
    assert seen_lonely == seen_crowded


def test_stream_disconnect_is_taken_per_connection_and_counts_down() -> None:
    store = faults()
    assert store.stream_disconnect_after() is None
    store.add(FaultRequest(stream_disconnect_after=3, count=2), API)
    assert take(store).empty  # never applies to HTTP requests
    assert [store.stream_disconnect_after() for _ in range(3)] == [3, 3, None]


@pytest.mark.parametrize(("request_", "field"), [
    (FaultRequest(), "latency_ms"),
    (FaultRequest(status=503, drop_connection=True), "drop_connection"),
    (FaultRequest(error_code=ErrorCode.MARKET_CLOSED, status=500), "status"),
    (FaultRequest(status=504), "status"),
    (FaultRequest(operation="mockReset", latency_ms=5), "operation"),
    (FaultRequest(operation="getAccount", error_code=ErrorCode.INSUFFICIENT_FUNDS), "error_code"),
    (FaultRequest(operation="token", error_code=ErrorCode.INVALID_CREDENTIALS), "error_code"),
    (FaultRequest(path="(", latency_ms=5), "path"),
    (FaultRequest(stream_disconnect_after=2, operation="getAccount"), "operation"),
    (FaultRequest(stream_disconnect_after=2, latency_ms=5), "latency_ms"),
    (FaultRequest(status=500, retry_after=3), "retry_after"),
    (FaultRequest(latency_ms=5, message="hello"), "message"),
    (FaultRequest(latency_ms=5, probability=0), "probability"),
    (FaultRequest(latency_ms=5, count=0), "count"),
])
def test_faults_that_cannot_apply_are_refused_naming_the_field(request_: FaultRequest, field: str) -> None:
    with pytest.raises(FaultError) as refused:
        faults().add(request_, API)
    assert refused.value.field == field


def test_a_counted_fault_fires_exactly_count_times_across_threads() -> None:
    store = faults()
    store.add(FaultRequest(status=503, count=50), API)
    fired = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(40):
            outcome = take(store).outcome
            if outcome is not None:
                with lock:
                    fired.append(outcome)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fired) == 50 and store.all() == []


def test_clear_and_remove() -> None:
    store = faults()
    kept = store.add(FaultRequest(latency_ms=1), API)
    gone = store.add(FaultRequest(latency_ms=2), API)
    assert store.remove(gone.id).id == gone.id
    assert [f.id for f in store.all()] == [kept.id]
    assert store.clear() == 1 and len(store) == 0
