"""Idempotency-Key records: replay, mismatch, in flight, release, expiry on the emulator clock, per account."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.idempotency import IdempotencyStore, StoredResponse

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BODY = b'{"symbol":"AAPL","side":"BUY","quantity":10}'
RESPONSE = StoredResponse(status=201, body=b'{"id":"ord_1"}', headers=(("Content-Type", "application/json"),))


@pytest.fixture
def clock() -> Clock:
    return Clock(start=T0, frozen=True)


@pytest.fixture
def store(clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(clock)


def fp(body: bytes = BODY, method: str = "POST", path: str = "/v1/orders") -> str:
    return IdempotencyStore.fingerprint(method, path, body)


def test_fingerprint_is_sha256_hex_of_method_path_and_body() -> None:
    assert len(fp()) == 64 and int(fp(), 16) >= 0
    assert fp() == fp() == fp(method="post")
    assert fp() != fp(body=BODY + b" ")
    assert fp() != fp(path="/v1/batch")
    assert fp() != fp(method="PUT")
    # The path/body boundary is unambiguous.
    assert IdempotencyStore.fingerprint("POST", "/a", b"bc") != IdempotencyStore.fingerprint("POST", "/ab", b"c")


def test_first_use_proceeds_and_a_retry_replays(store: IdempotencyStore) -> None:
    assert store.begin("acct_1", "key-1", fp()) is None
    store.complete("acct_1", "key-1", RESPONSE)
    assert store.begin("acct_1", "key-1", fp()) == RESPONSE
    assert store.begin("acct_1", "key-1", fp()) == RESPONSE


def test_same_key_other_body_is_4022(store: IdempotencyStore) -> None:
    store.begin("acct_1", "key-1", fp())
    store.complete("acct_1", "key-1", RESPONSE)
    with pytest.raises(ApiError) as caught:
        store.begin("acct_1", "key-1", fp(b'{"symbol":"MSFT"}'))
    assert caught.value.code is ErrorCode.IDEMPOTENCY_MISMATCH
    assert caught.value.code.status == 422
    assert "key-1" in caught.value.message
    assert store.begin("acct_1", "key-1", fp()) == RESPONSE  # the mismatch did not disturb the record


def test_in_flight_from_another_thread_is_4009(store: IdempotencyStore) -> None:
    started = threading.Event()
    release = threading.Event()
    outcome: list[StoredResponse | None] = []

    def first_request() -> None:
        outcome.append(store.begin("acct_1", "key-1", fp()))
        started.set()
        release.wait(5)
        store.complete("acct_1", "key-1", RESPONSE)

    thread = threading.Thread(target=first_request)
    thread.start()
    assert started.wait(5)
    with pytest.raises(ApiError) as caught:
        store.begin("acct_1", "key-1", fp())
    assert caught.value.code is ErrorCode.IDEMPOTENCY_IN_FLIGHT
    assert caught.value.code.status == 409
    assert "key-1" in caught.value.message
    release.set()
    thread.join(5)
    assert outcome == [None]
    assert store.begin("acct_1", "key-1", fp()) == RESPONSE


def test_other_body_while_in_flight_is_a_mismatch(store: IdempotencyStore) -> None:
    store.begin("acct_1", "key-1", fp())
    with pytest.raises(ApiError) as caught:
        store.begin("acct_1", "key-1", fp(b"{}"))
    assert caught.value.code is ErrorCode.IDEMPOTENCY_MISMATCH


def test_only_one_of_many_concurrent_requests_owns_the_key(store: IdempotencyStore) -> None:
    barrier = threading.Barrier(12)
    owners: list[int] = []
    in_flight: list[int] = []
    lock = threading.Lock()

    def request(i: int) -> None:
        barrier.wait()
        try:
            result = store.begin("acct_1", "race", fp())
        except ApiError as exc:
            assert exc.code is ErrorCode.IDEMPOTENCY_IN_FLIGHT
            with lock:
                in_flight.append(i)
        else:
            assert result is None
            with lock:
                owners.append(i)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(owners) == 1 and len(in_flight) == 11


def test_abandon_releases_the_key(store: IdempotencyStore) -> None:
    store.begin("acct_1", "key-1", fp())
    store.abandon("acct_1", "key-1")
    # A retry runs again, even with another body: nothing was stored.
    assert store.begin("acct_1", "key-1", fp(b"{}")) is None
    store.complete("acct_1", "key-1", RESPONSE)
    store.abandon("acct_1", "key-1")  # a completed record is not released
    assert store.begin("acct_1", "key-1", fp(b"{}")) == RESPONSE


def test_complete_or_abandon_without_a_claim_is_a_no_op(store: IdempotencyStore) -> None:
    store.complete("acct_1", "ghost", RESPONSE)
    store.abandon("acct_1", "ghost")
    assert store.begin("acct_1", "ghost", fp()) is None


def test_records_expire_after_the_ttl(clock: Clock, store: IdempotencyStore) -> None:
    store.begin("acct_1", "key-1", fp())
    clock.advance(timedelta(minutes=5))
    store.complete("acct_1", "key-1", RESPONSE)
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    assert store.begin("acct_1", "key-1", fp()) == RESPONSE  # kept 24 h from completion
    clock.advance(timedelta(seconds=1))
    assert store.begin("acct_1", "key-1", fp(b"{}")) is None  # forgotten: a new request with any body


def test_a_stuck_in_flight_claim_expires_too(clock: Clock, store: IdempotencyStore) -> None:
    store.begin("acct_1", "key-1", fp())
    clock.advance(timedelta(hours=24))
    assert store.begin("acct_1", "key-1", fp()) is None


def test_custom_ttl(clock: Clock) -> None:
    store = IdempotencyStore(clock, ttl=timedelta(minutes=1))
    store.begin("a", "k", fp())
    store.complete("a", "k", RESPONSE)
    clock.advance(timedelta(minutes=1))
    assert store.begin("a", "k", fp()) is None
    with pytest.raises(ValueError):
        IdempotencyStore(clock, ttl=timedelta(0))


def test_scopes_are_isolated(store: IdempotencyStore) -> None:
    store.begin("acct_1", "shared-key", fp())
    store.complete("acct_1", "shared-key", RESPONSE)
    assert store.begin("acct_2", "shared-key", fp(b"{}")) is None
    other = StoredResponse(status=200, body=b"{}", headers=())
    store.complete("acct_2", "shared-key", other)
    assert store.begin("acct_1", "shared-key", fp()) == RESPONSE
    assert store.begin("acct_2", "shared-key", fp(b"{}")) == other


def test_reset_one_account_or_all(store: IdempotencyStore) -> None:
    for scope in ("acct_1", "acct_2"):
        store.begin(scope, "k", fp())
        store.complete(scope, "k", RESPONSE)
    store.reset("acct_1")
    assert store.begin("acct_1", "k", fp(b"{}")) is None
    assert store.begin("acct_2", "k", fp()) == RESPONSE
    store.reset()
    assert len(store) == 0
    assert store.begin("acct_2", "k", fp(b"{}")) is None


def test_a_reset_during_a_request_wins(store: IdempotencyStore) -> None:
    store.begin("acct_1", "k", fp())
    store.reset()
    store.complete("acct_1", "k", RESPONSE)
    assert store.begin("acct_1", "k", fp(b"{}")) is None


def test_expired_records_are_swept_so_memory_follows_live_keys(clock: Clock) -> None:
    store = IdempotencyStore(clock, ttl=timedelta(minutes=1), sweep_at=50)
    for i in range(1000):
        store.begin("acct", f"k{i}", fp())
        store.complete("acct", f"k{i}", RESPONSE)
        clock.advance(timedelta(seconds=10))
    assert len(store) <= 50
