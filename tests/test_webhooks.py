"""Webhooks end to end: a live emulator delivering signed events to a real receiver on loopback."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from standardwebhooks import Webhook, WebhookVerificationError

from mock_server.config import Config
from mock_server.domain.clock import Clock
from mock_server.domain.webhooks.events import EventType
from mock_server.services import build_services
from mock_server.spec.validation import SchemaValidator
from tests.support.live import CheckedSession
from tests.support.receiver import Received, Receiver, eventually, receiver, signature_ok

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMAS = {"order.filled": "OrderFilledEvent", "position.closed": "PositionClosedEvent",
           "alert.triggered": "AlertTriggeredEvent"}


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
def config(request: pytest.FixtureRequest, hooks: Receiver) -> Config:
    """The emulator's config with one endpoint on the receiver's /hook and quick retries; tests adjust it with
    ``@pytest.mark.parametrize("config", [{...}], indirect=True)``."""
    settings: dict[str, Any] = {
        "webhook_url": f"{hooks.url}/hook", "webhook_secret": SECRET, "webhook_retry_schedule": (0.05, 0.05, 0.05),
        "webhook_retry_jitter": 0.1, "webhook_timeout": 2.0, "webhook_drain_seconds": 2.0,
    }
    settings.update(getattr(request, "param", {}))
    return Config(seed=7, validate_responses=True, rate_limit_capacity=1000, rate_limit_per_second=1000.0,
                  **settings)


def checked(app: Flask, received: Received, secret: str = SECRET) -> dict[str, Any]:
    """The payload, after checking its signature, its headers and its shape against the spec's webhook schema."""
    assert signature_ok(secret, received.headers, received.body), received.headers
    payload = received.json
    assert received.id == payload["id"]
    assert received.headers["content-type"] == "application/json"
    document = app.extensions["tradefence.spec"]
    errors = SchemaValidator(document, document.schema_ref(SCHEMAS[payload["type"]])).errors(payload)
    assert not errors, [error.message for error in errors]
    return payload


def trigger(http: CheckedSession, **body: Any) -> dict[str, Any]:
    response = http.post("/_mock/events", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def record(http: CheckedSession, event_id: str) -> dict[str, Any]:
    response = http.get(f"/_mock/webhooks/deliveries/{event_id}")
    assert response.status_code == 200, response.text
    return response.json()


def settled(http: CheckedSession, event_id: str, status: str) -> dict[str, Any]:
    return eventually(lambda: (lambda found: found if found["status"] == status else None)(record(http, event_id)),
                      what=f"event {event_id} to be {status}")


def clock(http: CheckedSession, **command: Any) -> dict[str, Any]:
    response = http.post("/_mock/clock", json=command)
    assert response.status_code == 200, response.text
    return response.json()


def order(trader: CheckedSession, symbol: str, side: str, quantity: int) -> dict[str, Any]:
    response = trader.post("/v1/orders", json={"symbol": symbol, "type": "MARKET", "side": side, "quantity": quantity})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_fill_sends_a_signed_order_filled_that_verifies(app: Flask, trader: CheckedSession, hooks: Receiver) -> None:
    placed = order(trader, "AAPL", "BUY", 5)
    [received] = hooks.wait_for(1, "/hook")
    # The reference implementation accepts it (signature, and a timestamp within 5 minutes of now).
    payload = Webhook(SECRET).verify(received.body, received.headers)
    assert payload == checked(app, received)
    assert payload["type"] == "order.filled"
    assert payload["account_id"] == "acc_trader"
    assert payload["data"]["order"] == placed


def test_a_wrong_secret_or_a_changed_body_fails_verification(app: Flask, trader: CheckedSession,
                                                             hooks: Receiver) -> None:
    order(trader, "MSFT", "BUY", 1)
    [received] = hooks.wait_for(1, "/hook")
    other = "whsec_" + base64.b64encode(b"not the endpoint's secret, 32 b").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(received.body, received.headers)
    assert not signature_ok(other, received.headers, received.body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(received.body.replace(b'"MSFT"', b'"AAPL"'), received.headers)


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(http: CheckedSession, hooks: Receiver) -> None:
    hooks.plan = lambda request: 500 if request.attempt <= 2 else 204
    event = trigger(http, type="alert.triggered")
    attempts = hooks.wait_for(3, "/hook")
    assert {a.id for a in attempts} == {event["id"]}
    assert len({a.body for a in attempts}) == 1  # the same bytes every time
    assert [a.attempt for a in attempts] == [1, 2, 3]
    delivery = settled(http, event["id"], "succeeded")["deliveries"][0]
    assert [(a["number"], a["status_code"], a["succeeded"]) for a in delivery["attempts"]] == [
        (1, 500, False), (2, 500, False), (3, 204, True)]
    assert delivery["attempts"][0]["error"] == "HTTP 500"
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])


@pytest.mark.parametrize("config", [{"webhook_retry_schedule": (60.0,), "webhook_retry_jitter": 0.0}],
                         indirect=True, ids=["one-retry-after-60s"])
def test_retries_follow_the_emulator_clock(app: Flask, http: CheckedSession, hooks: Receiver) -> None:
    clock(http, action="freeze")
    hooks.plan = lambda request: 503 if request.attempt == 1 else 200
    event = trigger(http, type="order.filled")
    [first] = hooks.wait_for(1, "/hook")
    pending = eventually(lambda: (lambda d: d if d["attempts"] else None)(record(http, event["id"])["deliveries"][0]))
    assert pending["status"] == "pending"
    attempted = datetime.fromisoformat(pending["attempts"][0]["attempted_at"])
    assert datetime.fromisoformat(pending["next_attempt_at"]) - attempted == timedelta(seconds=60)

    clock(http, action="advance", seconds=60)  # the retry is due now, though no real time passed
    second = hooks.wait_for(2, "/hook")[1]
    assert second.id == first.id == event["id"]
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 60
    checked(app, second)
    settled(http, event["id"], "succeeded")


@pytest.mark.parametrize("config", [{"webhook_retry_schedule": (30.0,), "webhook_retry_jitter": 0.0}],
                         indirect=True, ids=["one-retry-after-30s"])
def test_an_endpoint_gets_events_in_order_even_while_the_first_is_retried(http: CheckedSession,
                                                                           hooks: Receiver) -> None:
    clock(http, action="freeze")
    other = http.post("/_mock/webhooks", json={"url": f"{hooks.url}/other"})
    assert other.status_code == 201, other.text
    hooks.plan = lambda request: 500 if request.path == "/hook" and not hooks.at("/hook") else 204
    first = trigger(http, type="order.filled")
    second = trigger(http, type="position.closed")

    # The other endpoint has its own queue: it gets both while /hook waits to retry the first.
    assert [r.id for r in hooks.wait_for(2, "/other")] == [first["id"], second["id"]]
    assert [r.id for r in hooks.wait_for(1, "/hook")] == [first["id"]]

    clock(http, action="advance", seconds=30)
    assert [r.id for r in hooks.wait_for(3, "/hook")] == [first["id"], first["id"], second["id"]]


def test_selling_out_sends_position_closed_after_the_fills(app: Flask, trader: CheckedSession,
                                                           hooks: Receiver) -> None:
    order(trader, "AAPL", "BUY", 3)
    sell = order(trader, "AAPL", "SELL", 3)
    received = hooks.wait_for(3, "/hook")
    payloads = [checked(app, r) for r in received]
    assert [p["type"] for p in payloads] == ["order.filled", "order.filled", "position.closed"]
    closed = payloads[2]["data"]["position"]
    assert (closed["symbol"], closed["quantity_closed"]) == ("AAPL", 3)
    assert closed["exit_price"] == sell["average_fill_price"]
    assert payloads[2]["account_id"] == "acc_trader"


@pytest.mark.parametrize("config", [{"alert_loss_percent": Decimal("1"), "alert_move_percent": Decimal("90")}],
                         indirect=True, ids=["loss-1pct"])
def test_a_position_losing_past_the_threshold_raises_one_alert(app: Flask, http: CheckedSession, trader: CheckedSession,
                                                               hooks: Receiver) -> None:
    clock(http, action="freeze")
    clock(http, action="set", to="2026-03-02T15:00:00Z")
    order(trader, "MSTR", "BUY", 10)
    alerts: list[dict[str, Any]] = []
    for _ in range(500):  # a deterministic path (seed 7, fixed start): the loss passes 1% within these steps
        clock(http, action="advance", seconds=300)  # every jump is checked before the answer comes back
        alerts = http.get("/_mock/webhooks/deliveries", params={"type": "alert.triggered"}).json()["data"]
        if alerts:
            break
    assert len(alerts) == 1, "the loss never passed the threshold"
    received = next(r for r in hooks.wait_for(2, "/hook") if r.json["type"] == "alert.triggered")
    alert = checked(app, received)["data"]["alert"]
    assert (alert["kind"], alert["symbol"], alert["threshold_percent"]) == ("POSITION_LOSS", "MSTR", 1.0)
    assert alert["observed_percent"] <= -1.0
    assert alert["message"].startswith("MSTR position is down ")

    # Still losing one step later: the condition has not cleared, so no second alert.
    clock(http, action="advance", seconds=1)
    position = trader.get("/v1/positions/MSTR").json()
    assert position["unrealized_pl_percent"] <= -1.0
    after = http.get("/_mock/webhooks/deliveries", params={"type": "alert.triggered"}).json()["data"]
    assert [a["id"] for a in after] == [alerts[0]["id"]]


def test_an_alert_forced_from_the_control_plane(app: Flask, http: CheckedSession, hooks: Receiver) -> None:
    event = trigger(http, type="alert.triggered", account_id="acc_trader", data={"alert": {"symbol": "TSLA"}})
    [received] = hooks.wait_for(1, "/hook")
    payload = checked(app, received)
    assert payload == event["payload"]
    assert payload["account_id"] == "acc_trader"
    assert (payload["data"]["alert"]["kind"], payload["data"]["alert"]["symbol"]) == ("MANUAL", "TSLA")


def test_forced_events_of_every_type_match_the_spec(app: Flask, http: CheckedSession, hooks: Receiver) -> None:
    trigger(http, type="order.filled", data={"order": {"symbol": "TSLA", "strategy": "MOMENTUM"}})
    trigger(http, type="position.closed")
    trigger(http, type="alert.triggered")
    payloads = [checked(app, r) for r in hooks.wait_for(3, "/hook")]
    assert [p["type"] for p in payloads] == ["order.filled", "position.closed", "alert.triggered"]
    made_up = payloads[0]["data"]["order"]
    assert (made_up["symbol"], made_up["strategy"], made_up["status"]) == ("TSLA", "MOMENTUM", "FILLED")

    invalid = http.post("/_mock/events", json={"type": "order.filled", "data": {"order": {"quantity": 0}}})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["field"] == "data.order.quantity"
    unknown = http.post("/_mock/events", json={"type": "order.filled", "data": {"order": {"symbol": "ZZZZ"}}})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, 1004)


@pytest.mark.parametrize("config", [{"webhook_retry_schedule": (0.05,)}], indirect=True, ids=["one-quick-retry"])
def test_a_failed_event_can_be_redelivered(http: CheckedSession, hooks: Receiver) -> None:
    hooks.plan = lambda request: 500 if request.attempt <= 2 else 204
    event = trigger(http, type="position.closed")
    failed = settled(http, event["id"], "failed")
    assert failed["deliveries"][0]["error"] == "gave up after 2 attempts"
    listed = http.get("/_mock/webhooks/deliveries", params={"status": "failed"}).json()["data"]
    assert [e["id"] for e in listed] == [event["id"]]

    response = http.post(f"/_mock/webhooks/deliveries/{event['id']}/redeliver")
    assert response.status_code == 202, response.text
    third = hooks.wait_for(3, "/hook")[2]
    assert third.id == event["id"]
    delivery = settled(http, event["id"], "succeeded")["deliveries"][0]
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 500), (3, 204)]


def test_endpoints_are_registered_filtered_listed_and_removed(app: Flask, http: CheckedSession,
                                                              hooks: Receiver) -> None:
    created = http.post("/_mock/webhooks", json={"url": f"{hooks.url}/alerts", "events": ["alert.triggered"]})
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["source"] == "control"
    listed = http.get("/_mock/webhooks").json()["data"]
    assert [(e["source"], e["events"]) for e in listed] == [("config", None), ("control", ["alert.triggered"])]

    filled = trigger(http, type="order.filled")
    alert = trigger(http, type="alert.triggered")
    assert [d["endpoint_id"] for d in filled["deliveries"]] == [listed[0]["id"]]  # the filter applies at once
    [received] = hooks.wait_for(1, "/alerts")
    assert received.id == alert["id"]
    checked(app, received, endpoint["secret"])

    # Redelivering to a named endpoint sends even an event it did not ask for.
    again = http.post(f"/_mock/webhooks/deliveries/{filled['id']}/redeliver", json={"endpoint_id": endpoint["id"]})
    assert again.status_code == 202
    assert hooks.wait_for(2, "/alerts")[1].id == filled["id"]
    settled(http, filled["id"], "succeeded")  # received is not yet recorded: removing before then abandons it

    removed = http.delete(f"/_mock/webhooks/{endpoint['id']}")
    assert removed.status_code == 200
    assert removed.json() == {"id": endpoint["id"], "deleted": True, "abandoned_event_ids": []}
    assert http.delete(f"/_mock/webhooks/{endpoint['id']}").status_code == 404
    assert [e["source"] for e in http.get("/_mock/webhooks").json()["data"]] == ["config"]
    bad = http.post("/_mock/webhooks", json={"url": "ftp://example.com/hook"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "url")


def test_a_reset_forgets_events_and_control_plane_endpoints(http: CheckedSession, hooks: Receiver) -> None:
    http.post("/_mock/webhooks", json={"url": f"{hooks.url}/extra"})
    trigger(http, type="alert.triggered")
    hooks.wait_for(1, "/extra")
    assert http.post("/_mock/reset").status_code == 200
    assert [e["source"] for e in http.get("/_mock/webhooks").json()["data"]] == ["config"]
    assert http.get("/_mock/webhooks/deliveries").json()["data"] == []


def test_shutdown_finishes_what_it_can_and_reports_the_rest(hooks: Receiver,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    config = Config(seed=3, webhook_url=f"{hooks.url}/hook", webhook_secret=SECRET,
                    webhooks=(), webhook_retry_schedule=(60.0,))
    delivered: set[str] = set()
    hooks.plan = lambda request: 204 if request.id in delivered else 500

    # A healthy receiver: publishing then stopping at once still delivers (the bounded drain).
    services = build_services(config)
    webhooks = services.webhooks
    ok = webhooks.publish(webhooks.build(EventType.ALERT_TRIGGERED, "acc_a", webhooks.sample_data(
        EventType.ALERT_TRIGGERED)))
    delivered.add(ok.event.id)
    assert services.close(grace=5.0) == []
    assert [r.id for r in hooks.at("/hook")] == [ok.event.id]

    # A failing receiver and a frozen clock: the retry can never come due, so stop reports it without waiting.
    services = build_services(config, Clock(frozen=True))
    webhooks = services.webhooks
    stuck = webhooks.publish(webhooks.build(EventType.ORDER_FILLED, "acc_a", webhooks.sample_data(
        EventType.ORDER_FILLED)))
    hooks.wait_for(2, "/hook")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        pending = services.close(grace=30.0)
    assert time.monotonic() - started < 10  # returned early: nothing left could progress
    assert [(p.event_id, p.attempts) for p in pending] == [(stuck.event.id, 1)]
    assert stuck.event.id in caplog.text
