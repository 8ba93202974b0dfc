"""What a request leaves until its answer is out: its journal entry and a fill's webhook event. Recorded when the
server closes the answer's body, which it does after writing the answer and before it handles another request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.domain.webhooks.events import EventType
from mock_server.serving import wsgi
from mock_server.serving.wsgi import Answer
from mock_server.spec.document import SpecDocument
from tests.support.live import CheckedSession

ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def answer(app: Flask, method: str, path: str, body: Any = None, token: str | None = None) -> Answer:
    """The app's answer as the server gets it: written out first, its body not yet closed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return wsgi.call(app, EnvironBuilder(method=method, path=path, json=body, headers=headers).get_environ())


def token_for(app: Flask) -> str:
    minted = answer(app, "POST", "/_mock/tokens", {"subject": "trader"})
    minted.close()
    return json.loads(minted.body)["access_token"]


def filled_events(app: Flask) -> list[str]:
    dispatcher = app.extensions["tradefence"].webhooks.dispatcher
    return [record.event.content.id for record in dispatcher.events(event_type=EventType.ORDER_FILLED)]


def journaled(app: Flask) -> list[tuple[str, str]]:
    return [(entry.method, entry.path) for entry in app.extensions["tradefence"].journal.entries()]


def test_a_fill_records_its_event_and_journal_entry_once_its_answer_is_out(app: Flask) -> None:
    token = token_for(app)
    placed = answer(app, "POST", "/v1/orders", ORDER, token)
    order_id = json.loads(placed.body)["id"]
    assert placed.status_code == 201 and json.loads(placed.body)["status"] == "FILLED"
    assert filled_events(app) == [] and ("POST", "/v1/orders") not in journaled(app)
    placed.close()
    assert filled_events(app) == [order_id] and journaled(app)[0] == ("POST", "/v1/orders")


def test_with_a_state_file_the_event_is_recorded_before_the_answer(tmp_path: Path,
                                                                   tradefence_spec_document: SpecDocument) -> None:
    """Every change is written through before the answer when there is a state file; the fill's event too."""
    app = create_app(Config(seed=7, state=tmp_path / "state.db"), document=tradefence_spec_document)
    try:
        placed = answer(app, "POST", "/v1/orders", ORDER, token_for(app))
        assert filled_events(app) == [json.loads(placed.body)["id"]]
        placed.close()
    finally:
        app.extensions["tradefence"].close()


def test_the_next_request_finds_what_the_last_one_left(trader: CheckedSession, http: CheckedSession) -> None:
    """Over HTTP, on another connection, right after each answer: nothing is missing yet."""
    for _ in range(20):
        placed = trader.post("/v1/orders", json=ORDER)
        events = http.get("/_mock/webhooks/deliveries", params={"limit": 1}).json()["data"]
        assert events[0]["payload"]["data"]["order"]["id"] == placed.json()["id"]
        entries = http.get("/_mock/journal", params={"path": "^/v1/orders$", "limit": 1}).json()["data"]
        assert entries[0]["request_id"] == placed.headers["X-Request-Id"]
