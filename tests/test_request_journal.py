"""The request journal over real HTTP: what a client sent, secrets masked, filterable, bounded."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from mock_server.app import create_app
from mock_server.config import Config
from tests.support.live import CheckedSession, serve, spec_session

REDIRECT = "http://127.0.0.1:5000/callback"
ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def journal(http: CheckedSession, **query: Any) -> list[dict[str, Any]]:
    response = http.get("/_mock/journal", params=query)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_the_code_flow_is_journaled_with_its_secrets_masked(http: CheckedSession) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    location = http.get("/authorize", params={"client_id": "sandbox-client", "redirect_uri": REDIRECT,
                                              "response_type": "code", "code_challenge": challenge,
                                              "code_challenge_method": "S256"}).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "client_id": "sandbox-client", "client_secret": "sandbox-secret",
                                       "code_verifier": verifier}).json()
    http.get("/v1/account", headers={"Authorization": f"Bearer {tokens['access_token']}",
                                     "Cookie": "session=abc"})
    http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
              auth=("sandbox-client", "sandbox-secret"))

    entries = journal(http)
    refresh, account, exchange, authorize = entries[:4]
    assert exchange["operation"] == "token" and exchange["method"] == "POST" and exchange["status"] == 200
    assert exchange["body"] == {"grant_type": "authorization_code", "code": "***", "redirect_uri": REDIRECT,
                                "client_id": "sandbox-client", "client_secret": "***", "code_verifier": "***"}
    assert account["headers"]["Authorization"] == "Bearer ***" and account["headers"]["Cookie"] == "***"
    assert account["operation"] == "getAccount" and account["body"] is None
    assert refresh["headers"]["Authorization"] == "Basic ***" and refresh["body"]["refresh_token"] == "***"
    assert authorize["query"]["code_challenge"] == [challenge] and authorize["status"] == 302
    text = str(entries)
    for secret in (code, verifier, tokens["access_token"], tokens["refresh_token"], "sandbox-secret"):
        assert secret not in text


def test_entries_carry_the_request_id_time_and_json_body(http: CheckedSession, trader: CheckedSession) -> None:
    http.post("/_mock/clock", json={"action": "freeze"})
    now = http.get("/_mock/clock").json()["now"]
    placed = trader.post("/v1/orders", json=ORDER, headers={"X-Request-Id": "my-request-1"})
    entry = journal(http, operation="createOrder")[0]
    assert entry["request_id"] == "my-request-1" == placed.headers["X-Request-Id"]
    assert entry["timestamp"] == now and entry["body"] == ORDER and entry["status"] == 201
    assert entry["path"] == "/v1/orders" and entry["duration_ms"] >= 0 and entry["body_truncated"] is False


def test_filters_by_method_path_operation_and_status_newest_first(http: CheckedSession, trader: CheckedSession) -> None:
    trader.post("/v1/orders", json=ORDER)
    trader.post("/v1/orders", json={**ORDER, "symbol": "ZZZZ"})
    trader.get("/v1/orders")
    trader.get("/v1/market/quotes/MSFT", params={"unused": "1"})

    posts = journal(http, method="POST", path="^/v1/orders$")
    assert [entry["status"] for entry in posts] == [422, 201]
    assert [e["operation"] for e in journal(http, path="^/v1/")] == ["getQuote", "listOrders", "createOrder",
                                                                    "createOrder"]
    assert [e["body"]["symbol"] for e in journal(http, status=422)] == ["ZZZZ"]
    assert journal(http, operation="getQuote")[0]["query"] == {"unused": ["1"]}
    assert len(journal(http, limit=2)) == 2
    assert http.get("/_mock/journal", params={"path": "("}).json()["error"]["field"] == "path"


def test_the_journal_does_not_record_itself_and_can_be_cleared(http: CheckedSession) -> None:
    http.get("/_mock/clock")
    journal(http)
    journal(http)
    assert [entry["path"] for entry in journal(http)] == ["/_mock/clock"]
    cleared = http.delete("/_mock/journal")
    assert cleared.json() == {"deleted": 1}
    assert journal(http) == []


def test_unknown_routes_and_dropped_connections_are_journaled(http: CheckedSession, base_url: str) -> None:
    requests.get(f"{base_url}/v1/nowhere", timeout=5)
    http.post("/_mock/faults", json={"operation": "getMarketClock", "drop_connection": True, "count": 1})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/v1/market/clock", timeout=5)
    dropped, _, unknown = journal(http)[:3]
    assert dropped["path"] == "/v1/market/clock" and dropped["status"] is None
    assert unknown["path"] == "/v1/nowhere" and unknown["status"] == 404 and unknown["operation"] is None


def test_large_bodies_are_truncated(http: CheckedSession, trader: CheckedSession) -> None:
    holdings = [{"symbol": "AAPL", "quantity": 1}] * 4000  # ~130 KB: over 64 KiB, under the 1 MiB limit
    trader.post("/v1/ai/recommendations", json={"portfolio": holdings, "client_secret": "hidden"})
    entry = journal(http, operation="getAIRecommendations")[0]
    assert entry["body_truncated"] is True and len(entry["body"]) == 64 * 1024
    assert "hidden" not in entry["body"]


@pytest.fixture
def small_journal() -> Iterator[tuple[Flask, str]]:
    app = create_app(Config(seed=7, validate_responses=True, journal_size=3))
    with serve(app) as url:
        yield app, url
    app.extensions["tradefence"].close()


def test_the_journal_keeps_the_last_journal_size_requests(small_journal: tuple[Flask, str]) -> None:
    app, url = small_journal
    with spec_session(url, app) as http:
        for seconds in range(5):
            http.post("/_mock/clock", json={"action": "advance", "seconds": seconds})
        entries = journal(http)
        assert len(entries) == 3 and [e["body"]["seconds"] for e in entries] == [4, 3, 2]
        state = http.get("/_mock/state").json()
        assert state["journal_capacity"] == 3 and state["journal_size"] == 3

