"""Rate limits over real HTTP: a small bucket (5, refilling 50/s) so a burst trips it in milliseconds and a client
that backs off exponentially recovers in well under a second of real sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from mock_server.app import create_app
from mock_server.config import ClientConfig, Config
from tests.conftest import mint
from tests.support.live import CheckedSession, serve, spec_session

CAPACITY = 5
ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture
def config() -> Config:
    return Config(seed=7, validate_responses=True, rate_limit_capacity=CAPACITY, rate_limit_per_second=50.0)


def rate(response: Any) -> tuple[int, int, int]:
    assert all(name in response.headers for name in RATE_HEADERS), (response.status_code, dict(response.headers))
    return tuple(int(response.headers[name]) for name in RATE_HEADERS)  # type: ignore[return-value]


def burst(session: CheckedSession) -> list[Any]:
    """Requests as fast as one client can send them until three are refused (bounded, for a very slow host)."""
    responses: list[Any] = []
    while sum(r.status_code == 429 for r in responses) < 3 and len(responses) < 500:
        responses.append(session.get("/v1/account"))
    return responses


def test_a_burst_gets_429_2001_with_retry_after_and_rate_headers_on_every_response(trader: CheckedSession) -> None:
    responses = burst(trader)
    statuses = [response.status_code for response in responses]
    assert statuses[:CAPACITY] == [200] * CAPACITY  # a full bucket takes a burst of its size
    refused = [response for response in responses if response.status_code == 429]
    assert refused, statuses
    for response in responses:
        limit, remaining, reset = rate(response)
        assert limit == CAPACITY and 0 <= remaining < CAPACITY and reset >= 0
    for response in refused:
        error = response.json()["error"]
        assert (error["code"], error["type"]) == (2001, "rate_limit_exceeded")
        retry_after = int(response.headers["Retry-After"])
        assert retry_after >= 1 and error["retry_after"] == retry_after
        assert rate(response)[1] == 0
        assert rate(response)[2] >= 1
    assert rate(responses[0])[1] == CAPACITY - 1  # the first request of the burst spent one token


def test_rate_headers_on_every_kind_of_v1_answer(trader: CheckedSession, http: CheckedSession) -> None:
    """Success, 400, 403, 404, 409 and 422 alike carry the three headers (each call waits for a token first).

    Only a 401 cannot: without a valid token there is no client, so no bucket to report."""
    def call(method: str, path: str, body: Any = None) -> Any:
        time.sleep(1 / 50 * 2)
        response = trader.request(method, path, json=body)
        rate(response)
        return response

    created = call("POST", "/v1/orders", ORDER)
    assert created.status_code == 201
    assert call("GET", f"/v1/orders/{created.json()['id']}").status_code == 200
    assert call("DELETE", f"/v1/orders/{created.json()['id']}").status_code == 409
    assert call("GET", "/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA").status_code == 404
    assert call("POST", "/v1/orders", {**ORDER, "symbol": "ZZZZ"}).status_code == 422
    assert call("GET", "/v1/positions").status_code == 200
    assert call("GET", "/v1/positions/AAPL").status_code == 200
    assert call("PATCH", "/v1/positions/AAPL", {"target_quantity": 0}).status_code == 200
    assert call("GET", "/v1/market/clock").status_code == 200
    assert call("GET", "/v1/market/quotes/AAPL").status_code == 200
    assert call("POST", "/v1/ai/recommendations", {"portfolio": ["AAPL"], "risk_tolerance": "MODERATE",
                                                  "time_horizon": "7_DAYS"}).status_code == 200
    assert call("POST", "/v1/batch", {"operations": [{"action": "CREATE_ORDER", "data": ORDER}]}).status_code == 200
    assert call("GET", "/v1/orders").status_code == 200
    assert call("POST", "/v1/orders", {**ORDER, "quantity": 0}).status_code == 400
    time.sleep(0.2)  # the bucket is full again
    invalid = trader.get("/v1/orders", params={"limit": 0})
    assert invalid.status_code == 400 and rate(invalid)[1] == CAPACITY  # reported, but nothing spent
    trader.headers["Authorization"] = f"Bearer {mint(http, 'trader', 'trading:read')}"
    assert call("DELETE", f"/v1/orders/{created.json()['id']}").status_code == 403
    # The control plane is not the API: no bucket, no headers, never limited.
    for _ in range(3 * CAPACITY):
        response = http.get("/_mock/clock")
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers


def test_a_client_that_backs_off_exponentially_recovers(trader: CheckedSession) -> None:
    burst(trader)  # start from an empty bucket
    delays: list[float] = []
    created: list[str] = []
    for _ in range(3 * CAPACITY):
        delay = 0.005
        for _attempt in range(10):
            response = trader.post("/v1/orders", json=ORDER)
            if response.status_code != 429:
                break
            assert response.json()["error"]["code"] == 2001
            delays.append(delay)
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    assert delays, "the client never had to back off"
    assert len(set(created)) == 3 * CAPACITY
    listed = trader.get("/v1/orders", params={"limit": 100})
    while listed.status_code == 429:
        time.sleep(0.05)
        listed = trader.get("/v1/orders", params={"limit": 100})
    assert sorted(order["id"] for order in listed.json()["data"]) == sorted(created)


@dataclass
class Slow:
    url: str
    app: Flask
    http: CheckedSession
    trader: CheckedSession

    def session(self, token: str) -> CheckedSession:
        session = spec_session(self.url, self.app)
        session.headers["Authorization"] = f"Bearer {token}"
        return session


@pytest.fixture
def slow() -> Iterator[Slow]:
    """An emulator whose bucket (5) practically never refills, so token counts are exact."""
    app = create_app(Config(seed=7, validate_responses=True, rate_limit_capacity=CAPACITY,
                            rate_limit_per_second=0.001, clients=(ClientConfig("other-client", "other-secret"),)))
    with serve(app) as url, spec_session(url, app) as http, spec_session(url, app) as trader:
        trader.headers["Authorization"] = f"Bearer {mint(http)}"
        yield Slow(url, app, http, trader)


def test_buckets_are_per_oauth_client(slow: Slow) -> None:
    http, trader = slow.http, slow.trader
    other = http.post("/_mock/tokens", json={"subject": "third-user", "client_id": "other-client"})
    with slow.session(mint(http, "second-user")) as same_client, \
            slow.session(other.json()["access_token"]) as other_client:
        assert [trader.get("/v1/account").status_code for _ in range(CAPACITY)] == [200] * CAPACITY
        assert same_client.get("/v1/account").status_code == 429  # another user of the same client shares it
        fresh = other_client.get("/v1/account")
        assert fresh.status_code == 200 and rate(fresh)[1] == CAPACITY - 1


def test_each_batch_operation_costs_a_token_and_reset_refills(slow: Slow) -> None:
    http, trader = slow.http, slow.trader
    assert rate(trader.get("/v1/account"))[:2] == (CAPACITY, 4)
    batch = {"operations": [{"action": "CREATE_ORDER", "data": ORDER}] * 3}
    response = trader.post("/v1/batch", json=batch)
    assert response.status_code == 200 and rate(response)[1] == 1
    too_big = trader.post("/v1/batch", json=batch)  # needs 3, has 1: refused whole, nothing spent or run
    assert too_big.status_code == 429 and rate(too_big)[1] == 1
    over_capacity = trader.post("/v1/batch", json={"operations": [{"action": "CREATE_ORDER", "data": ORDER}] * 6})
    assert over_capacity.status_code == 429 and int(over_capacity.headers["Retry-After"]) >= 1
    last = trader.get("/v1/orders")
    assert last.status_code == 200 and len(last.json()["data"]) == 3 and rate(last)[1] == 0
    assert trader.get("/v1/account").status_code == 429
    http.post("/_mock/reset")
    trader.headers["Authorization"] = f"Bearer {mint(http)}"  # the reset also dropped every grant
    assert rate(trader.get("/v1/account"))[1] == CAPACITY - 1


def test_a_refused_request_has_no_effect(slow: Slow) -> None:
    http, trader = slow.http, slow.trader
    for _ in range(CAPACITY):
        assert trader.get("/v1/account").status_code == 200
    assert trader.post("/v1/orders", json=ORDER).status_code == 429
    assert trader.patch("/v1/positions/AAPL", json={"target_quantity": 5}).status_code == 429
    # The same user through another OAuth client (its own bucket) sees that nothing happened.
    other = http.post("/_mock/tokens", json={"subject": "trader", "client_id": "other-client"})
    with slow.session(other.json()["access_token"]) as same_user:
        assert same_user.get("/v1/orders").json()["data"] == []
        assert same_user.get("/v1/positions").json()["data"] == []
