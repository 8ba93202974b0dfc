"""The contract suite's polite transport (contracts/transport.py): it waits out 429/503 as the target says, backs
off with full jitter when it says nothing, stays within one wait budget, and reports a 429 without Retry-After."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from contracts.checking import ContractViolation
from contracts.transport import Politeness, TargetAdapter, WaitBudgetExhausted, parse_retry_after
from tests.conftest import mint

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


class Sleeps(list[float]):
    """Stands in for time.sleep: records what the transport would wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def politeness(budget: float = 600.0, seed: int = 3) -> Politeness:
    return Politeness(budget, seed=seed, sleep=Sleeps(), now=lambda: NOW)


@pytest.mark.parametrize(("value", "seconds"), [
    ("3", 3.0), (" 120 ", 120.0), ("Mon, 07 Dec 2026 12:00:05 GMT", 5.0), ("Mon, 07 Dec 2026 11:59:00 GMT", 0.0),
    (None, None), ("", None), ("soon", None), ("-1", None),
])
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_without_retry_after_the_wait_is_full_jitter_below_a_capped_doubling_and_repeats_with_the_seed() -> None:
    first, again, other = politeness(seed=3), politeness(seed=3), politeness(seed=4)
    for attempt in range(10):
        for polite in (first, again, other):
            polite.wait("GET /v1/account", 503, None, attempt)
    for attempt, waited in enumerate(first.sleep):  # type: ignore[arg-type]
        assert 0 <= waited <= min(first.cap, first.base * 2**attempt)
    assert first.sleep == again.sleep != other.sleep
    assert first.retried == 1 and len(first.waits) == 10


def test_the_wait_budget_bounds_the_run_and_says_so() -> None:
    polite = politeness(budget=5)
    polite.wait("GET /v1/account", 429, "3", 0)
    with pytest.raises(WaitBudgetExhausted, match=r"--contract-wait-budget.*Not drift"):
        polite.wait("GET /v1/account", 429, "3", 1)
    assert polite.sleep == [3.0] and polite.waited == 3.0


@pytest.fixture
def polite_trader(base_url: str, http: requests.Session) -> Iterator[tuple[requests.Session, Politeness]]:
    polite = politeness()
    with requests.Session() as session:
        session.mount("http://", TargetAdapter(polite))
        session.headers["Authorization"] = f"Bearer {mint(http)}"
        yield session, polite


def test_a_rate_limited_request_is_resent_after_retry_after(base_url: str, http: requests.Session,
                                                           polite_trader: tuple[requests.Session, Politeness]) -> None:
    session, polite = polite_trader
    fault = http.post("/_mock/faults", json={"operation": "getAccount", "error_code": 2001, "retry_after": 2,
                                             "count": 2})
    assert fault.status_code == 201, fault.text
    assert session.get(base_url + "/v1/account").status_code == 200
    assert [(w.status, w.retry_after, w.seconds) for w in polite.waits] == [(429, "2", 2.0), (429, "2", 2.0)]
    assert polite.retried == 1


def test_a_503_is_resent_only_when_resending_cannot_act_twice(base_url: str, http: requests.Session,
                                                             polite_trader: tuple[requests.Session, Politeness]
                                                             ) -> None:
    session, polite = polite_trader
    order = {"symbol": "AAPL", "type": "LIMIT", "side": "BUY", "quantity": 1, "price": 1.0}
    http.post("/_mock/faults", json={"operation": "createOrder", "status": 503, "count": 2})
    assert session.post(base_url + "/v1/orders", json=order).status_code == 503  # outcome unknown: not resent
    assert polite.waits == []
    placed = session.post(base_url + "/v1/orders", json=order, headers={"Idempotency-Key": "polite-1"})
    assert placed.status_code == 201
    assert [w.status for w in polite.waits] == [503]


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A server that answers every request 429 without Retry-After, as a drifting target would."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"error": {"code": 2001, "type": "rate_limit", "message": "slow down"}}'
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_429_without_retry_after_is_reported_as_exactly_that(refusing_server: str) -> None:
    polite = politeness()
    with requests.Session() as session:
        session.mount("http://", TargetAdapter(polite))
        with pytest.raises(ContractViolation, match=r"\[GET /v1/account\] 429 carries Retry-After"):
            session.get(refusing_server + "/v1/account")
    assert polite.waits == []
