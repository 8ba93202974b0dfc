"""Idempotency-Key over real HTTP: replays, mismatches, keys in flight, concurrent retries, scope and expiry."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession, spec_session

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 3}


def post(session: CheckedSession, key: str, body: Any = ORDER, path: str = "/v1/orders") -> Any:
    return session.post(path, json=body, headers={"Idempotency-Key": key})


def orders(session: CheckedSession) -> list[dict[str, Any]]:
    return session.get("/v1/orders", params={"limit": 500}).json()["data"]


def test_same_key_and_body_replays_the_first_response_and_creates_nothing(trader: CheckedSession) -> None:
    first = post(trader, "key-1")
    assert first.status_code == 201 and first.headers["Idempotent-Replayed"] == "false"
    cash = trader.get("/v1/account").json()["cash"]
    for _ in range(3):
        again = post(trader, "key-1")
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.content == first.content and again.headers["Location"] == first.headers["Location"]
        assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]  # a new request, an old answer
    assert [o["id"] for o in orders(trader)] == [first.json()["id"]]
    assert trader.get("/v1/account").json()["cash"] == cash  # charged once
    other = post(trader, "key-2")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    unkeyed = trader.post("/v1/orders", json=ORDER)
    assert "Idempotent-Replayed" not in unkeyed.headers
    assert len(orders(trader)) == 3


def test_same_key_with_another_body_or_endpoint_is_422_4022(trader: CheckedSession) -> None:
    first = post(trader, "key-1")
    for body, path in (({**ORDER, "quantity": 4}, "/v1/orders"),
                       ({"operations": [{"action": "CREATE_ORDER", "data": ORDER}]}, "/v1/batch")):
        response = post(trader, "key-1", body, path)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (4022, "Idempotency-Key")
    assert [o["id"] for o in orders(trader)] == [first.json()["id"]]
    # Bodies are compared byte for byte: the same JSON spelt differently is another body.
    spaced = trader.post("/v1/orders", data=json.dumps(ORDER, indent=2),
                         headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"})
    assert spaced.status_code == 422 and spaced.json()["error"]["code"] == 4022


def test_refusals_replay_too_and_invalid_requests_do_not_claim_the_key(trader: CheckedSession) -> None:
    nsf = {**ORDER, "client_order_id": "nsf-1"}
    refused = post(trader, "key-nsf", nsf)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == 1002
    replay = post(trader, "key-nsf", nsf)
    assert replay.status_code == 422 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == refused.json()  # the stored answer, request id included

    invalid = post(trader, "key-fix", {**ORDER, "quantity": 0})
    assert invalid.status_code == 400 and "Idempotent-Replayed" not in invalid.headers
    fixed = post(trader, "key-fix")
    assert fixed.status_code == 201 and fixed.headers["Idempotent-Replayed"] == "false"

    too_long = post(trader, "k" * 256)
    assert too_long.status_code == 400 and too_long.json()["error"]["field"] == "Idempotency-Key"
    assert len(orders(trader)) == 1


def test_keys_belong_to_one_account(http: CheckedSession, trader: CheckedSession, base_url: str, app: Flask) -> None:
    mine = post(trader, "shared-key")
    with spec_session(base_url, app) as other:
        other.headers["Authorization"] = f"Bearer {mint(http, 'someone-else')}"
        theirs = post(other, "shared-key")
        assert theirs.status_code == 201 and theirs.headers["Idempotent-Replayed"] == "false"
        assert theirs.json()["id"] != mine.json()["id"]
        assert post(other, "shared-key", {**ORDER, "quantity": 9}).json()["error"]["code"] == 4022
    # The same subject with a new token (another grant) still sees its own key.
    trader.headers["Authorization"] = f"Bearer {mint(http)}"
    assert post(trader, "shared-key").headers["Idempotent-Replayed"] == "true"


def test_keys_expire_after_24_hours_on_the_emulator_clock(http: CheckedSession, trader: CheckedSession) -> None:
    first = post(trader, "day-key")
    http.post("/_mock/clock", json={"action": "advance", "seconds": 23 * 3600})
    trader.headers["Authorization"] = f"Bearer {mint(http)}"
    assert post(trader, "day-key").headers["Idempotent-Replayed"] == "true"
    http.post("/_mock/clock", json={"action": "advance", "seconds": 3600 + 1})
    trader.headers["Authorization"] = f"Bearer {mint(http)}"
    again = post(trader, "day-key")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "false"
    assert again.json()["id"] != first.json()["id"]


def test_a_key_still_in_flight_is_409_4009(trader: CheckedSession, app: Flask) -> None:
    """Hold the key as a first request that has not finished would (the store's own protocol), then retry."""
    store = app.extensions["tradefence"].idempotency
    body = json.dumps(ORDER).encode()
    assert store.begin("trader", "busy-key", store.fingerprint("POST", "/v1/orders", body)) is None
    response = trader.post("/v1/orders", data=body,
                           headers={"Idempotency-Key": "busy-key", "Content-Type": "application/json"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["type"], error["field"]) == (4009, "idempotency_in_flight", "Idempotency-Key")
    mismatch = post(trader, "busy-key", {**ORDER, "quantity": 1})
    assert mismatch.json()["error"]["code"] == 4022  # another body is the client's mistake, in flight or not
    store.abandon("trader", "busy-key")
    assert trader.post("/v1/orders", data=body, headers={"Idempotency-Key": "busy-key",
                                                         "Content-Type": "application/json"}).status_code == 201
    assert len(orders(trader)) == 1


def race(base_url: str, app: Flask, token: str, key: str, threads: int) -> list[Any]:
    """`threads` clients send the same keyed request at the same moment; their answers."""
    barrier = threading.Barrier(threads)
    answers: list[Any] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def retry() -> None:
        try:
            with spec_session(base_url, app) as session:
                session.headers["Authorization"] = token
                barrier.wait()
                response = post(session, key)
            with lock:
                answers.append(response)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    pool = [threading.Thread(target=retry) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=30)
    assert not failures, failures[:3]
    return answers


def test_concurrent_requests_with_one_key_create_one_order(trader: CheckedSession, base_url: str, app: Flask) -> None:
    threads = 12
    for round_ in range(3):
        answers = race(base_url, app, trader.headers["Authorization"], f"race-{round_}", threads)
        outcomes = Counter((r.status_code, r.headers.get("Idempotent-Replayed"),
                            r.json()["error"]["code"] if r.status_code >= 400 else None) for r in answers)
        assert sum(outcomes.values()) == threads
        assert outcomes[(201, "false", None)] == 1, outcomes
        assert set(outcomes) <= {(201, "false", None), (201, "true", None), (409, None, 4009)}, outcomes
        assert len({r.json()["id"] for r in answers if r.status_code == 201}) == 1
    assert len(orders(trader)) == 3


def test_batch_honours_the_key(trader: CheckedSession) -> None:
    batch = {"operations": [{"action": "CREATE_ORDER", "data": ORDER},
                            {"action": "CREATE_ORDER", "data": {**ORDER, "symbol": "MSFT"}}]}
    first = post(trader, "batch-key", batch, "/v1/batch")
    again = post(trader, "batch-key", batch, "/v1/batch")
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == ("false", "true")
    assert again.content == first.content
    assert len(orders(trader)) == 2
