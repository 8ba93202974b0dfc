"""Everything a request records (its journal entry and log line, a fill's webhook event) is recorded before its
answer leaves the app, so whatever the server does next, a client that has the answer finds what it did."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from mock_server.domain.webhooks.events import EventType
from tests.support.live import CheckedSession

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def call(app: Flask, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[str, bytes]:
    """Call the app as a WSGI server does and take its answer, without consuming or closing the body iterable:
    nothing the app does after handing back its answer has run yet."""
    headers = [("Authorization", f"Bearer {token}")] if token else []
    started: list[str] = []
    result = app(EnvironBuilder(method=method, path=path, json=body, headers=headers).get_environ(),
                 lambda status, _headers, _exc_info=None: started.append(status))
    return started[0], next(iter(result))


def filled_events(app: Flask) -> list[str]:
    dispatcher = app.extensions["tradefence"].webhooks.dispatcher
    return [record.event.content.id for record in dispatcher.events(event_type=EventType.ORDER_FILLED)]


def test_a_fill_has_its_webhook_event_journal_entry_and_log_line_before_its_answer_is_handed_back(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    token = json.loads(call(app, "POST", "/_mock/tokens", {"subject": "trader"})[1])["access_token"]
    with caplog.at_level(logging.INFO, logger="tradefence.requests"):
        status, body = call(app, "POST", "/v1/orders", ORDER, token)
        placed = json.loads(body)
        assert status.startswith("201") and placed["status"] == "FILLED"
        assert filled_events(app) == [placed["id"]]
        entry = app.extensions["tradefence"].journal.entries()[0]
        assert (entry.method, entry.path, entry.status) == ("POST", "/v1/orders", 201)
        assert [r.getMessage().split()[:3] for r in caplog.records] == [["POST", "/v1/orders", "201"]]


def test_the_next_request_finds_what_the_last_one_left(trader: CheckedSession, http: CheckedSession) -> None:
    """Over HTTP, on another connection, right after each answer: nothing is missing yet."""
    for _ in range(20):
        placed = trader.post("/v1/orders", json=ORDER)
        events = http.get("/_mock/webhooks/deliveries", params={"limit": 1}).json()["data"]
        assert events[0]["payload"]["data"]["order"]["id"] == placed.json()["id"]
        entries = http.get("/_mock/journal", params={"path": "^/v1/orders$", "limit": 1}).json()["data"]
        assert entries[0]["request_id"] == placed.headers["X-Request-Id"]


def test_a_record_that_fails_is_logged_and_the_answer_stands(app: Flask, http: CheckedSession,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_entry: Any) -> None:
        raise RuntimeError("journal broken")

    monkeypatch.setattr(app.extensions["tradefence"].journal, "record", broken)
    with caplog.at_level(logging.ERROR, logger="tradefence.requests"):
        response = http.get("/_mock/clock")
    assert response.status_code == 200
    assert f"recording request {response.headers['X-Request-Id']} failed" in caplog.text
