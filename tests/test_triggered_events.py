"""A forced event (`POST /_mock/events`) never contradicts itself, whatever part of its subject the caller gives.

Hypothesis draws the `data` a user can pass (fields of the event's subject, realistic values and wrong ones, in any
combination). Each request is answered 202 with an event whose subject is consistent, keeps every value the caller
gave, and matches the spec; or 400 (422 for an unknown symbol) naming a field under `data`: never a 500, never an
event that says 5 shares were ordered and 10 filled.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.app import create_app
from mock_server.config import Config
from tests.support.live import CheckedSession, serve, spec_session

SYMBOLS = st.sampled_from(["AAPL", "TSLA", "MSFT", "NOSUCH"])
WRONG = st.one_of(st.none(), st.booleans(), st.text(max_size=3), st.integers(-3, 3),
                  st.lists(st.integers(), max_size=1))
PRICES = st.decimals(Decimal("0.01"), Decimal("3000"), places=2).map(float)
INSTANTS = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)).map(
    lambda moment: moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
FILLS = st.lists(st.fixed_dictionaries({"quantity": st.integers(1, 20), "price": PRICES, "timestamp": INSTANTS}),
                 min_size=1, max_size=3)


def maybe_wrong(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, values, values, WRONG)  # mostly plausible, sometimes of the wrong type


ORDER = st.fixed_dictionaries({}, optional={
    "symbol": maybe_wrong(SYMBOLS), "quantity": maybe_wrong(st.integers(1, 50)),
    "filled_quantity": maybe_wrong(st.integers(0, 50)), "remaining_quantity": maybe_wrong(st.integers(0, 5)),
    "side": maybe_wrong(st.sampled_from(["BUY", "SELL"])),
    "type": maybe_wrong(st.sampled_from(["MARKET", "LIMIT", "STOP", "STOP_LIMIT"])),
    "price": maybe_wrong(PRICES), "stop_price": maybe_wrong(PRICES), "average_fill_price": maybe_wrong(PRICES),
    "status": maybe_wrong(st.sampled_from(["OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED"])),
    "fills": maybe_wrong(FILLS), "created_at": maybe_wrong(INSTANTS), "filled_at": maybe_wrong(INSTANTS),
    "time_in_force": maybe_wrong(st.sampled_from(["DAY", "GTC", "IOC", "FOK"])),
    "client_order_id": maybe_wrong(st.just("mine-1")), "id": st.just("ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"),
    "reject_reason": st.none(),
})
POSITION = st.fixed_dictionaries({}, optional={
    "symbol": maybe_wrong(SYMBOLS), "quantity_closed": maybe_wrong(st.integers(1, 50)),
    "average_entry_price": maybe_wrong(PRICES), "exit_price": maybe_wrong(PRICES),
    "realized_pl": maybe_wrong(st.decimals(-500, 500, places=2).map(float)),
    "opened_at": maybe_wrong(INSTANTS), "closed_at": maybe_wrong(INSTANTS),
})
ALERT = st.fixed_dictionaries({}, optional={
    "kind": maybe_wrong(st.sampled_from(["MANUAL", "POSITION_LOSS", "PRICE_MOVE"])), "symbol": maybe_wrong(SYMBOLS),
    "threshold_percent": maybe_wrong(st.decimals(1, 20, places=1).map(float)),
    "observed_percent": maybe_wrong(st.decimals(-30, 30, places=1).map(float)),
    "message": maybe_wrong(st.just("watch this")),
})
REQUESTS = st.one_of(
    st.fixed_dictionaries({"type": st.just("order.filled"), "data": st.fixed_dictionaries({"order": ORDER})}),
    st.fixed_dictionaries({"type": st.just("position.closed"), "data": st.fixed_dictionaries({"position": POSITION})}),
    st.fixed_dictionaries({"type": st.just("alert.triggered"), "data": st.fixed_dictionaries({"alert": ALERT})}),
)


@pytest.fixture(scope="module")
def control() -> Iterator[CheckedSession]:
    app = create_app(Config(seed=5, validate_responses=True))
    try:
        with serve(app) as url, spec_session(url, app) as session:
            yield session
    finally:
        app.extensions["tradefence"].close(grace=0)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def kept(given: Any, built: Any) -> bool:
    """What the caller gave is in the event (instants and numbers compared by value)."""
    if isinstance(given, dict):
        return all(kept(value, built.get(name)) for name, value in given.items())
    if isinstance(given, list):
        return len(given) == len(built) and all(kept(a, b) for a, b in zip(given, built, strict=True))
    if isinstance(given, str) and given.endswith("Z"):
        return instant(given) == instant(built)
    return given == built


def consistent_order(order: dict[str, Any]) -> None:
    fills = order["fills"]
    assert order["status"] == "FILLED" and order["remaining_quantity"] == 0, order
    assert order["quantity"] == order["filled_quantity"] == sum(f["quantity"] for f in fills) >= 1, order
    total = sum(Decimal(str(f["price"])) * f["quantity"] for f in fills)
    assert Decimal(str(order["average_fill_price"])) == (total / order["quantity"]).quantize(Decimal("0.0001")), order
    assert instant(order["filled_at"]) == instant(order["updated_at"]) == max(instant(f["timestamp"]) for f in fills)
    assert instant(order["created_at"]) <= min(instant(f["timestamp"]) for f in fills), order
    assert order["cancelled_at"] is None and order["expired_at"] is None and order["reject_reason"] is None
    assert (order["price"] is not None) == (order["type"] in ("LIMIT", "STOP_LIMIT")), order
    assert (order["stop_price"] is not None) == (order["type"] in ("STOP", "STOP_LIMIT")), order
    if order["price"] is not None:
        limit, buy = order["price"], order["side"] == "BUY"
        assert all(f["price"] <= limit if buy else f["price"] >= limit for f in fills), order


def consistent_position(position: dict[str, Any]) -> None:
    pl = (Decimal(str(position["exit_price"])) - Decimal(str(position["average_entry_price"]))) \
        * position["quantity_closed"]
    assert Decimal(str(position["realized_pl"])) == pl.quantize(Decimal("0.01")), position
    assert instant(position["opened_at"]) <= instant(position["closed_at"]), position


def consistent_alert(alert: dict[str, Any]) -> None:
    threshold, observed = alert["threshold_percent"], alert["observed_percent"]
    if alert["kind"] == "MANUAL":
        assert threshold is None and observed is None, alert
    else:
        assert alert["symbol"] is not None and threshold is not None and observed is not None, alert
        assert (-observed if alert["kind"] == "POSITION_LOSS" else abs(observed)) >= threshold, alert


CHECKS = {"order": consistent_order, "position": consistent_position, "alert": consistent_alert}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=REQUESTS)
def test_a_forced_event_is_consistent_or_refused_naming_the_field(control: CheckedSession, request: dict) -> None:
    response = control.post("/_mock/events", json=request)
    (subject,) = request["data"]
    if response.status_code in (400, 422):  # 422: an unknown symbol (1004)
        error = response.json()["error"]
        assert error["field"].startswith(f"data.{subject}"), error
        return
    assert response.status_code == 202, response.text
    built = response.json()["payload"]["data"][subject]
    CHECKS[subject](built)
    assert kept(request["data"][subject], built), (request["data"][subject], built)


def test_the_issues_example_fills_what_was_ordered(control: CheckedSession) -> None:
    response = control.post("/_mock/events", json={"type": "order.filled",
                                                   "data": {"order": {"symbol": "TSLA", "quantity": 5}}})
    order = response.json()["payload"]["data"]["order"]
    assert (order["quantity"], order["filled_quantity"], order["remaining_quantity"]) == (5, 5, 0)
    assert [fill["quantity"] for fill in order["fills"]] == [5]


def test_a_contradiction_is_refused_naming_the_field(control: CheckedSession) -> None:
    cases = [({"quantity": 5, "filled_quantity": 10}, "data.order.filled_quantity"),
             ({"status": "CANCELLED"}, "data.order.status"),
             ({"quantity": 5, "fills": [{"quantity": 3, "price": 10.0, "timestamp": "2026-11-25T15:00:00Z"}]},
              "data.order.fills"),
             ({"type": "MARKET", "price": 10.0}, "data.order.price"),
             ({"created_at": "2026-11-25T16:00:00Z", "filled_at": "2026-11-25T15:00:00Z"}, "data.order.created_at")]
    for order, field in cases:
        response = control.post("/_mock/events", json={"type": "order.filled", "data": {"order": order}})
        assert response.status_code == 400 and response.json()["error"]["field"] == field, (order, response.text)
    loss = {"kind": "POSITION_LOSS", "threshold_percent": 5, "observed_percent": -1}
    response = control.post("/_mock/events", json={"type": "alert.triggered", "data": {"alert": loss}})
    assert response.json()["error"]["field"] == "data.alert.observed_percent"
    timed = {"opened_at": "2026-11-25T16:00:00Z", "closed_at": "2026-11-25T15:00:00Z"}
    response = control.post("/_mock/events", json={"type": "position.closed", "data": {"position": timed}})
    assert response.json()["error"]["field"] == "data.position.opened_at"
    # Instants compare as instants: +00:00 and Z, with or without milliseconds, are one form of the same time.
    same = {"opened_at": "2026-11-25T14:00:00+00:00", "closed_at": "2026-11-25T15:00:00.000Z"}
    response = control.post("/_mock/events", json={"type": "position.closed", "data": {"position": same}})
    assert response.status_code == 202, response.text
