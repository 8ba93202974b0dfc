"""The trading API over real HTTP with real tokens: every operation, every documented refusal, the order
lifecycle, positions and the account to the cent, listing, and many clients at once.

Every response goes through CheckedSession, so each one is also checked against openapi.yaml. Tests that depend on
prices pin the clock at one instant first: the seeded market then gives the same path on every run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from mock_server.config import Config
from tests.conftest import mint
from tests.support.live import CheckedSession, spec_session

START = "2026-11-25T15:00:00Z"  # a Wednesday, 10:00 in New York: open in every market mode but `closed`
STARTING_CASH = Decimal("100000.00")


@pytest.fixture
def config() -> Config:
    return Config(seed=7, validate_responses=True, rate_limit_capacity=10_000, rate_limit_per_second=10_000.0,
                  starting_cash=STARTING_CASH)


@pytest.fixture
def trader(base_url: str, app: Flask, http: CheckedSession) -> Iterator[CheckedSession]:
    """The conftest's trader, but with the clock pinned at START first (tokens expire on the emulator's clock)."""
    pin_clock(http)
    with spec_session(base_url, app) as session:
        session.headers["Authorization"] = f"Bearer {mint(http)}"
        yield session


def login(http: CheckedSession, session: CheckedSession, subject: str = "trader") -> None:
    """A fresh token, after moving the clock further than a token lives."""
    session.headers["Authorization"] = f"Bearer {mint(http, subject)}"


def D(value: Any) -> Decimal:
    """A JSON number back to the exact decimal it was rendered from."""
    return Decimal(str(value))


def pin_clock(http: CheckedSession, to: str = START) -> None:
    assert http.post("/_mock/clock", json={"action": "freeze"}).status_code == 200
    assert http.post("/_mock/clock", json={"action": "set", "to": to}).json()["frozen"] is True


def advance(http: CheckedSession, seconds: float) -> None:
    assert http.post("/_mock/clock", json={"action": "advance", "seconds": seconds}).status_code == 200


def order(session: CheckedSession, **fields: Any) -> Any:
    body = {"type": "MARKET", "side": "BUY", "quantity": 1, **fields}
    return session.post("/v1/orders", json=body)


def placed(session: CheckedSession, **fields: Any) -> dict[str, Any]:
    response = order(session, **fields)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v1/orders/{response.json()['id']}"
    return response.json()


def error_of(response: Any, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


def quote(session: CheckedSession, symbol: str) -> dict[str, Any]:
    response = session.get(f"/v1/market/quotes/{symbol}")
    assert response.status_code == 200
    return response.json()


def account(session: CheckedSession) -> dict[str, Any]:
    response = session.get("/v1/account")
    assert response.status_code == 200
    return response.json()


def all_orders(session: CheckedSession, page_size: int = 50, path: str = "/v1/orders",
               **filters: Any) -> list[dict[str, Any]]:
    """Walk every page, checking the cursor contract on the way."""
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params = {"limit": page_size, **filters, **({"cursor": cursor} if cursor else {})}
        body = session.get(path, params=params).json()
        assert len(body["data"]) <= page_size
        seen.extend(body["data"])
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            return seen
        assert body["next_cursor"] == body["data"][-1]["id"]
        cursor = body["next_cursor"]
    raise AssertionError("pagination never ended")


def cash_flows(orders: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    """(paid for buy fills, received for sell fills), exactly."""
    paid = received = Decimal("0")
    for entry in orders:
        total = sum((fill["quantity"] * D(fill["price"]) for fill in entry["fills"]), Decimal("0"))
        if entry["side"] == "BUY":
            paid += total
        else:
            received += total
    return paid, received


# -- every operation ----------------------------------------------------------------------------------------------

def test_every_operation_answers_per_spec(http: CheckedSession, trader: CheckedSession) -> None:
    clock = trader.get("/v1/market/clock").json()
    assert clock == {"timestamp": "2026-11-25T15:00:00.000Z", "is_open": True, "mode": "open",
                     "next_open": None, "next_close": None}
    tsla = quote(trader, "TSLA")
    assert D(tsla["bid"]) < D(tsla["ask"]) and tsla["timestamp"] == "2026-11-25T15:00:00.000Z"

    bought = placed(trader, symbol="TSLA", quantity=3, strategy="MOMENTUM", client_order_id="my-order-1")
    assert bought["status"] == "FILLED" and bought["client_order_id"] == "my-order-1"
    assert trader.get(f"/v1/orders/{bought['id']}").json() == bought
    resting = placed(trader, symbol="TSLA", type="LIMIT", quantity=2, price=round(float(tsla["bid"]) * 0.5, 2),
                     time_in_force="GTC")
    stop = placed(trader, symbol="TSLA", type="STOP", quantity=1, stop_price=round(float(tsla["ask"]) * 1.5, 2))
    stop_limit = placed(trader, symbol="TSLA", type="STOP_LIMIT", side="SELL", quantity=1,
                        stop_price=round(float(tsla["bid"]) * 0.5, 2), price=round(float(tsla["bid"]) * 0.4, 2))
    assert [resting["status"], stop["status"], stop_limit["status"]] == ["OPEN"] * 3
    listed = trader.get("/v1/orders").json()
    assert [o["id"] for o in listed["data"]] == [stop_limit["id"], stop["id"], resting["id"], bought["id"]]
    assert trader.delete(f"/v1/orders/{stop['id']}").json()["status"] == "CANCELLED"

    positions = trader.get("/v1/positions").json()["data"]
    assert [(p["symbol"], p["quantity"], p["available_quantity"]) for p in positions] == [("TSLA", 3, 2)]
    assert trader.get("/v1/positions/TSLA").json() == positions[0]
    update = trader.patch("/v1/positions/TSLA", json={"target_quantity": 2}).json()
    assert (update["previous_quantity"], update["quantity"], update["order"]["side"]) == (3, 2, "SELL")
    assert account(trader)["id"] == "acc_trader"
    ai = trader.post("/v1/ai/recommendations",
                     json={"portfolio": ["TSLA", {"symbol": "AAPL", "quantity": 5}], "risk_tolerance": "MODERATE",
                           "time_horizon": "30_DAYS"})
    assert ai.status_code == 200
    batch = trader.post("/v1/batch", json={"operations": [{"action": "CANCEL_ORDER",
                                                           "data": {"order_id": resting["id"]}}]})
    assert batch.json()["results"][0]["result"]["status"] == "CANCELLED"
    assert trader.checked >= 15  # every answer above was checked against the spec


def test_a_read_only_token_reads_but_cannot_write(http: CheckedSession, base_url: str, app: Flask) -> None:
    with spec_session(base_url, app) as reader:
        reader.headers["Authorization"] = f"Bearer {mint(http, 'reader', 'trading:read')}"
        assert reader.get("/v1/account").status_code == 200
        assert reader.get("/v1/orders").status_code == 200
        for response in (order(reader, symbol="AAPL"), reader.patch("/v1/positions/AAPL", json={"target_quantity": 1}),
                         reader.delete("/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"),
                         reader.post("/v1/batch", json={"operations": [
                             {"action": "CANCEL_ORDER", "data": {"order_id": "ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"}}]})):
            error_of(response, 403, 1005)
            assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
        assert reader.get("/v1/orders").json()["data"] == []


# -- documented errors --------------------------------------------------------------------------------------------

V1_CALLS = [
    ("GET", "/v1/account", None), ("GET", "/v1/orders", None), ("GET", "/v1/positions", None),
    ("GET", "/v1/positions/AAPL", None), ("GET", "/v1/market/clock", None), ("GET", "/v1/market/quotes/AAPL", None),
    ("GET", "/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA", None),
    ("DELETE", "/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA", None),
    ("POST", "/v1/orders", {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}),
    ("POST", "/v1/orders", {"quantity": 0}),  # authentication comes before validation
    ("PATCH", "/v1/positions/AAPL", {"target_quantity": 1}),
    ("POST", "/v1/batch", {"operations": []}),
    ("POST", "/v1/ai/recommendations", {"portfolio": ["AAPL"], "risk_tolerance": "MODERATE",
                                        "time_horizon": "30_DAYS"}),
]


def test_1001_bad_or_missing_token_on_every_operation(http: CheckedSession) -> None:
    expired = http.post("/_mock/tokens", json={"subject": "trader", "expires_in": 1}).json()["access_token"]
    http.post("/_mock/clock", json={"action": "advance", "seconds": 2})
    for authorization in ("Bearer not-a-jwt", "Bearer ", "Token abc", None, f"Bearer {expired}"):
        headers = {} if authorization is None else {"Authorization": authorization}
        for method, path, body in V1_CALLS:
            response = http.request(method, path, json=body, headers=headers)
            error_of(response, 401, 1001)
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="tradefence"'), (method, path)
            assert "X-RateLimit-Limit" not in response.headers  # no valid token, no client, no bucket


def test_1002_oversized_buy_and_the_nsf_magic_value(trader: CheckedSession) -> None:
    before = account(trader)
    error = error_of(order(trader, symbol="AAPL", quantity=1_000_000), 422, 1002)
    assert "exceeds buying power" in error["message"]
    error_of(order(trader, symbol="AAPL", quantity=1, client_order_id="nsf-test-1"), 422, 1002)
    error_of(order(trader, symbol="AAPL", type="LIMIT", price=1000, quantity=101), 422, 1002)  # > 100 000 at limit
    error_of(trader.patch("/v1/positions/AAPL", json={"target_quantity": 1_000_000}), 422, 1002)
    assert trader.get("/v1/orders").json()["data"] == []
    assert account(trader) == before


def test_1002_counts_what_open_buys_reserve(http: CheckedSession, trader: CheckedSession) -> None:
    resting = placed(trader, symbol="AAPL", type="LIMIT", price=10.00, quantity=9_000)  # reserves 90 000.00
    state = account(trader)
    assert (D(state["reserved_cash"]), D(state["buying_power"])) == (Decimal("90000.00"), Decimal("10000.00"))
    error_of(order(trader, symbol="AAPL", type="LIMIT", price=10.00, quantity=1_001), 422, 1002)
    placed(trader, symbol="AAPL", type="LIMIT", price=10.00, quantity=1_000)
    assert D(account(trader)["buying_power"]) == Decimal("0.00")
    trader.delete(f"/v1/orders/{resting['id']}")
    assert D(account(trader)["buying_power"]) == Decimal("90000.00")


def test_1003_market_closed_by_mode_halt_symbol_and_nyse_weekend(http: CheckedSession, trader: CheckedSession) -> None:
    placed(trader, symbol="AAPL", quantity=2)
    error = error_of(order(trader, symbol="HALT"), 422, 1003)
    assert "halted" in error["message"]

    closed = http.put("/_mock/market", json={"mode": "closed"}).json()
    assert closed["is_open"] is False and closed["mode"] == "closed"
    assert trader.get("/v1/market/clock").json()["is_open"] is False
    error_of(order(trader, symbol="AAPL"), 422, 1003)
    error_of(trader.patch("/v1/positions/AAPL", json={"target_quantity": 0}), 422, 1003)
    results = trader.post("/v1/batch", json={"operations": [
        {"action": "CREATE_ORDER", "data": {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}}]})
    assert results.json()["results"][0]["error"]["code"] == 1003

    http.put("/_mock/market", json={"mode": "nyse"})
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-28T15:00:00Z"})  # a Saturday
    login(http, trader)
    clock = trader.get("/v1/market/clock").json()
    assert clock["is_open"] is False and clock["next_open"] == "2026-11-30T14:30:00.000Z"  # Monday 09:30 EST
    error = error_of(order(trader, symbol="AAPL"), 422, 1003)
    assert "2026-11-30T14:30:00.000Z" in error["message"]  # the same form as every timestamp of the API
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-30T14:30:00Z"})
    login(http, trader)
    assert trader.get("/v1/market/clock").json()["is_open"] is True
    assert placed(trader, symbol="AAPL")["status"] == "FILLED"
    error_of(order(trader, symbol="HALT"), 422, 1003)  # halted whatever the hours


UNKNOWN_SYMBOL_CALLS = [
    ("POST", "/v1/orders", {"symbol": "ZZZZ", "type": "MARKET", "side": "BUY", "quantity": 1}, "symbol"),
    ("POST", "/v1/orders", {"symbol": "aapl", "type": "MARKET", "side": "BUY", "quantity": 1}, "symbol"),
    ("GET", "/v1/market/quotes/ZZZZ", None, "symbol"),
    ("GET", "/v1/positions/ZZZZ", None, "symbol"),
    ("PATCH", "/v1/positions/ZZZZ", {"target_quantity": 1}, "symbol"),
    ("POST", "/v1/batch", {"operations": [
        {"action": "CANCEL_ORDER", "data": {"order_id": "ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"}},
        {"action": "CREATE_ORDER", "data": {"symbol": "ZZZZ", "type": "MARKET", "side": "BUY", "quantity": 1}}]},
     "operations.1.data.symbol"),
    ("POST", "/v1/batch", {"operations": [{"action": "UPDATE_POSITION",
                                           "data": {"symbol": "ZZZZ", "target_quantity": 1}}]},
     "operations.0.data.symbol"),
    ("POST", "/v1/ai/recommendations", {"portfolio": ["AAPL", {"symbol": "ZZZZ"}], "risk_tolerance": "MODERATE",
                                        "time_horizon": "30_DAYS"}, "portfolio.1"),
]


def test_1004_unknown_symbol_everywhere(trader: CheckedSession) -> None:
    for method, path, body, field in UNKNOWN_SYMBOL_CALLS:
        response = trader.request(method, path, json=body)
        if path == "/v1/batch":
            assert response.status_code == 200
            error = [result for result in response.json()["results"] if "error" in result][-1]["error"]
            assert error["code"] == 1004
        else:
            error = error_of(response, 422, 1004)
        assert (error["field"], error["type"]) == (field, "invalid_symbol"), (method, path)


def test_1006_sell_beyond_holdings_and_reserved_shares(http: CheckedSession, trader: CheckedSession) -> None:
    error = error_of(order(trader, symbol="KO", side="SELL", quantity=1), 422, 1006)
    assert error["field"] == "quantity"
    placed(trader, symbol="KO", quantity=10)
    error_of(order(trader, symbol="KO", side="SELL", quantity=11), 422, 1006)
    ask = D(quote(trader, "KO")["ask"])
    resting = placed(trader, symbol="KO", type="LIMIT", side="SELL", quantity=8, price=float(ask * 2))
    assert trader.get("/v1/positions/KO").json()["available_quantity"] == 2
    error_of(order(trader, symbol="KO", side="SELL", quantity=3), 422, 1006)
    error = error_of(trader.patch("/v1/positions/KO", json={"target_quantity": 0}), 422, 1006)
    assert error["field"] == "target_quantity"
    assert placed(trader, symbol="KO", side="SELL", quantity=2)["status"] == "FILLED"
    trader.delete(f"/v1/orders/{resting['id']}")
    assert trader.get("/v1/positions/KO").json()["available_quantity"] == 8


def test_1007_cancel_a_final_order_and_4004_for_unknown_or_foreign(http: CheckedSession, trader: CheckedSession,
                                                                     base_url: str, app: Flask) -> None:
    filled = placed(trader, symbol="AAPL")
    error = error_of(trader.delete(f"/v1/orders/{filled['id']}"), 409, 1007)
    assert "FILLED" in error["message"]
    resting = placed(trader, symbol="AAPL", type="LIMIT", price=1.00)
    assert trader.delete(f"/v1/orders/{resting['id']}").status_code == 200
    error_of(trader.delete(f"/v1/orders/{resting['id']}"), 409, 1007)
    rejected = placed(trader, symbol="REJECT")
    error_of(trader.delete(f"/v1/orders/{rejected['id']}"), 409, 1007)
    error_of(trader.delete("/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"), 404, 4004)
    error_of(trader.get("/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"), 404, 4004)
    with spec_session(base_url, app) as other:
        other.headers["Authorization"] = f"Bearer {mint(http, 'someone-else')}"
        error_of(other.get(f"/v1/orders/{filled['id']}"), 404, 4004)
        error_of(other.delete(f"/v1/orders/{resting['id']}"), 404, 4004)
        assert other.get("/v1/orders").json()["data"] == []
    error_of(trader.get("/v1/positions/MSFT"), 404, 4004)  # known symbol, no position


# -- the order lifecycle ------------------------------------------------------------------------------------------

def test_market_orders_fill_at_the_quote_and_move_cash_to_the_cent(http: CheckedSession,
                                                                   trader: CheckedSession) -> None:
    tsla = quote(trader, "TSLA")
    bought = placed(trader, symbol="TSLA", quantity=7)
    assert bought["status"] == "FILLED" and bought["filled_quantity"] == 7 and bought["remaining_quantity"] == 0
    assert bought["fills"] == [{"quantity": 7, "price": tsla["ask"], "timestamp": "2026-11-25T15:00:00.000Z"}]
    assert bought["average_fill_price"] == tsla["ask"] and bought["filled_at"] == "2026-11-25T15:00:00.000Z"
    cost = 7 * D(tsla["ask"])
    state = account(trader)
    assert D(state["cash"]) == STARTING_CASH - cost
    assert D(state["buying_power"]) == STARTING_CASH - cost and D(state["reserved_cash"]) == 0
    assert D(state["positions_value"]) == 7 * D(tsla["bid"])
    assert D(state["equity"]) == D(state["cash"]) + D(state["positions_value"])
    position = trader.get("/v1/positions/TSLA").json()
    assert (position["quantity"], D(position["cost_basis"]), D(position["market_price"])) == (7, cost, D(tsla["bid"]))
    assert D(position["unrealized_pl"]) == 7 * D(tsla["bid"]) - cost

    advance(http, 60)
    later = quote(trader, "TSLA")
    sold = placed(trader, symbol="TSLA", side="SELL", quantity=3)
    assert sold["fills"] == [{"quantity": 3, "price": later["bid"], "timestamp": "2026-11-25T15:01:00.000Z"}]
    state = account(trader)
    assert D(state["cash"]) == STARTING_CASH - cost + 3 * D(later["bid"])
    removed = (cost * 3 / 7).quantize(Decimal("0.01"))
    assert D(state["realized_pl"]) == 3 * D(later["bid"]) - removed
    assert D(trader.get("/v1/positions/TSLA").json()["cost_basis"]) == cost - removed


def test_a_limit_order_rests_then_fills_when_the_price_crosses(http: CheckedSession, trader: CheckedSession) -> None:
    start = quote(trader, "TSLA")
    limit = D(start["ask"]) - Decimal("0.10")
    resting = placed(trader, symbol="TSLA", type="LIMIT", quantity=5, price=float(limit))
    assert resting["status"] == "OPEN" and resting["fills"] == [] and resting["remaining_quantity"] == 5
    state = account(trader)
    assert D(state["reserved_cash"]) == 5 * limit and D(state["buying_power"]) == STARTING_CASH - 5 * limit
    assert D(state["cash"]) == STARTING_CASH

    for _ in range(600):  # one simulator step at a time, so every step the engine sees is a step we saw too
        advance(http, 1)
        now = quote(trader, "TSLA")
        current = trader.get(f"/v1/orders/{resting['id']}").json()
        if D(now["ask"]) > limit:
            assert current["status"] == "OPEN" and current["fills"] == [], (now, current)
            continue
        assert current["status"] == "FILLED"
        assert current["fills"] == [{"quantity": 5, "price": now["ask"], "timestamp": now["timestamp"]}]
        assert D(current["average_fill_price"]) <= limit and current["filled_at"] == now["timestamp"]
        break
    else:
        pytest.fail("the price never crossed the limit")
    state = account(trader)
    assert D(state["reserved_cash"]) == 0
    assert D(state["cash"]) == STARTING_CASH - 5 * D(now["ask"])


def test_a_stop_order_triggers_when_the_ask_reaches_the_stop(http: CheckedSession, trader: CheckedSession) -> None:
    stop = D(quote(trader, "TSLA")["ask"]) + Decimal("0.25")
    waiting = placed(trader, symbol="TSLA", type="STOP", quantity=2, stop_price=float(stop))
    assert waiting["status"] == "OPEN" and D(account(trader)["reserved_cash"]) == 2 * stop
    for _ in range(600):
        advance(http, 1)
        now = quote(trader, "TSLA")
        current = trader.get(f"/v1/orders/{waiting['id']}").json()
        if D(now["ask"]) < stop:
            assert current["status"] == "OPEN"
            continue
        assert current["status"] == "FILLED"
        assert current["fills"] == [{"quantity": 2, "price": now["ask"], "timestamp": now["timestamp"]}]
        break
    else:
        pytest.fail("the price never reached the stop")


def test_a_large_limit_order_fills_in_parts_across_steps(http: CheckedSession, trader: CheckedSession) -> None:
    start = quote(trader, "NIO")
    limit = (D(start["ask"]) * Decimal("1.05")).quantize(Decimal("0.01"))  # marketable for many steps
    big = placed(trader, symbol="NIO", type="LIMIT", quantity=20_000, price=float(limit))
    assert big["status"] == "PARTIALLY_FILLED"
    assert big["fills"] == [{"quantity": start["ask_size"], "price": start["ask"], "timestamp": start["timestamp"]}]
    assert big["remaining_quantity"] == 20_000 - start["ask_size"]
    state = account(trader)
    assert D(state["reserved_cash"]) == big["remaining_quantity"] * limit

    sizes = [start["ask_size"]]
    while sum(sizes) < 20_000:
        assert len(sizes) < 50
        advance(http, 1)
        now = quote(trader, "NIO")
        sizes.append(min(now["ask_size"], 20_000 - sum(sizes)))
        current = trader.get(f"/v1/orders/{big['id']}").json()
        assert current["fills"][-1] == {"quantity": sizes[-1], "price": now["ask"], "timestamp": now["timestamp"]}
        assert current["filled_quantity"] == sum(sizes)
    assert len(sizes) >= 4  # 20 000 shares against at most 5 000 displayed per step
    assert current["status"] == "FILLED" and current["remaining_quantity"] == 0
    paid = sum((fill["quantity"] * D(fill["price"]) for fill in current["fills"]), Decimal("0"))
    assert D(current["average_fill_price"]) == (paid / 20_000).quantize(Decimal("0.0001"))
    state = account(trader)
    assert D(state["cash"]) == STARTING_CASH - paid and D(state["reserved_cash"]) == 0
    assert D(trader.get("/v1/positions/NIO").json()["cost_basis"]) == paid


def test_cancelling_a_partially_filled_order_keeps_the_fills(http: CheckedSession, trader: CheckedSession) -> None:
    start = quote(trader, "NIO")
    big = placed(trader, symbol="NIO", type="LIMIT", quantity=20_000, price=float(D(start["ask"]) + 1))
    assert big["status"] == "PARTIALLY_FILLED"
    cancelled = trader.delete(f"/v1/orders/{big['id']}").json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelled_at"] == "2026-11-25T15:00:00.000Z"
    assert cancelled["filled_quantity"] == start["ask_size"] and cancelled["remaining_quantity"] == 0
    assert cancelled["fills"] == big["fills"]
    advance(http, 30)
    assert trader.get(f"/v1/orders/{big['id']}").json()["fills"] == big["fills"]  # nothing more after the cancel
    state = account(trader)
    assert D(state["reserved_cash"]) == 0
    assert D(state["cash"]) == STARTING_CASH - start["ask_size"] * D(start["ask"])
    assert trader.get("/v1/positions/NIO").json()["quantity"] == start["ask_size"]


def test_magic_symbols_partl_and_reject(http: CheckedSession, trader: CheckedSession) -> None:
    partl = quote(trader, "PARTL")
    half = placed(trader, symbol="PARTL", quantity=11)
    assert (half["status"], half["filled_quantity"], half["remaining_quantity"]) == ("PARTIALLY_FILLED", 5, 6)
    assert half["fills"] == [{"quantity": 5, "price": partl["ask"], "timestamp": partl["timestamp"]}]
    one = placed(trader, symbol="PARTL", quantity=1)
    assert (one["status"], one["filled_quantity"]) == ("OPEN", 0)
    advance(http, 120)
    assert trader.get(f"/v1/orders/{half['id']}").json()["filled_quantity"] == 5  # stays partially filled
    assert D(account(trader)["reserved_cash"]) == 7 * D(partl["ask"])
    assert trader.delete(f"/v1/orders/{half['id']}").json()["filled_quantity"] == 5

    before = account(trader)
    rejected = placed(trader, symbol="REJECT", quantity=3)
    assert rejected["status"] == "REJECTED" and "REJECT" in rejected["reject_reason"]
    assert rejected["fills"] == [] and rejected["remaining_quantity"] == 0
    assert account(trader) == before


def test_ioc_and_fok(http: CheckedSession, trader: CheckedSession) -> None:
    nio = quote(trader, "NIO")
    far = placed(trader, symbol="NIO", type="LIMIT", time_in_force="IOC", quantity=10,
                 price=float(D(nio["bid"]) / 2))
    assert (far["status"], far["filled_quantity"]) == ("CANCELLED", 0)
    marketable = float(D(nio["ask"]) + Decimal("0.10"))
    ioc = placed(trader, symbol="NIO", type="LIMIT", time_in_force="IOC", quantity=10_000, price=marketable)
    assert (ioc["status"], ioc["filled_quantity"]) == ("CANCELLED", nio["ask_size"])  # keeps what filled at once
    fok = placed(trader, symbol="NIO", type="LIMIT", time_in_force="FOK", quantity=10_000, price=marketable)
    assert (fok["status"], fok["filled_quantity"], fok["fills"]) == ("CANCELLED", 0, [])
    whole = placed(trader, symbol="NIO", type="LIMIT", time_in_force="FOK", quantity=50, price=marketable)
    assert (whole["status"], whole["filled_quantity"]) == ("FILLED", 50)
    ioc_market = placed(trader, symbol="NIO", time_in_force="IOC", quantity=20)
    assert ioc_market["status"] == "FILLED"
    state = account(trader)
    assert D(state["reserved_cash"]) == 0
    assert D(state["cash"]) == STARTING_CASH - (nio["ask_size"] + 70) * D(nio["ask"])


def test_day_orders_expire_at_the_nyse_close_and_gtc_orders_keep_working(http: CheckedSession,
                                                                          trader: CheckedSession) -> None:
    http.put("/_mock/market", json={"mode": "nyse"})
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-25T20:59:00Z"})  # 15:59 in New York
    login(http, trader)
    assert trader.get("/v1/market/clock").json()["next_close"] == "2026-11-25T21:00:00.000Z"
    day = placed(trader, symbol="AAPL", type="LIMIT", price=1.00, quantity=100)
    gtc = placed(trader, symbol="AAPL", type="LIMIT", price=1.00, quantity=100, time_in_force="GTC")
    assert D(account(trader)["reserved_cash"]) == Decimal("200.00")
    advance(http, 120)
    expired = trader.get(f"/v1/orders/{day['id']}").json()
    assert (expired["status"], expired["expired_at"], expired["remaining_quantity"]) == (
        "EXPIRED", "2026-11-25T21:00:00.000Z", 0)
    error_of(trader.delete(f"/v1/orders/{day['id']}"), 409, 1007)
    assert trader.get(f"/v1/orders/{gtc['id']}").json()["status"] == "OPEN"
    assert D(account(trader)["reserved_cash"]) == Decimal("100.00")
    error_of(order(trader, symbol="AAPL"), 422, 1003)  # after the close
    assert trader.delete(f"/v1/orders/{gtc['id']}").json()["status"] == "CANCELLED"  # cancelling works when closed


def test_limit_prices_are_rounded_to_the_cent_half_even(trader: CheckedSession) -> None:
    for sent, kept in ((10.005, "10.00"), (10.015, "10.02"), (10.025, "10.02"), (10.0251, "10.03"), (7.1, "7.10")):
        resting = placed(trader, symbol="AAPL", type="LIMIT", price=sent, quantity=10)
        assert D(resting["price"]) == Decimal(kept), (sent, resting["price"])
        assert D(account(trader)["reserved_cash"]) == 10 * Decimal(kept)
        trader.delete(f"/v1/orders/{resting['id']}")
    error = error_of(order(trader, symbol="AAPL", type="LIMIT", price=0.004), 400, 4000)
    assert error["field"] == "price"


# -- positions and the account ------------------------------------------------------------------------------------

def test_patch_position_moves_to_the_target_and_cash_stays_exact(http: CheckedSession, trader: CheckedSession) -> None:
    up = trader.patch("/v1/positions/AAPL", json={"target_quantity": 12}).json()
    assert (up["previous_quantity"], up["quantity"]) == (0, 12)
    assert (up["order"]["type"], up["order"]["side"], up["order"]["quantity"], up["order"]["status"]) == (
        "MARKET", "BUY", 12, "FILLED")
    same = trader.patch("/v1/positions/AAPL", json={"target_quantity": 12}).json()
    assert same == {"symbol": "AAPL", "previous_quantity": 12, "quantity": 12, "order": None}
    advance(http, 5)
    down = trader.patch("/v1/positions/AAPL", json={"target_quantity": 4}).json()
    assert (down["quantity"], down["order"]["side"], down["order"]["quantity"]) == (4, "SELL", 8)
    placed(trader, symbol="MSFT", quantity=2)
    positions = trader.get("/v1/positions").json()["data"]
    assert [(p["symbol"], p["quantity"]) for p in positions] == [("AAPL", 4), ("MSFT", 2)]
    advance(http, 5)
    closed = trader.patch("/v1/positions/AAPL", json={"target_quantity": 0}).json()
    assert (closed["previous_quantity"], closed["quantity"]) == (4, 0)
    error_of(trader.get("/v1/positions/AAPL"), 404, 4004)
    error_of(trader.patch("/v1/positions/AAPL", json={"target_quantity": -1}), 400, 4000)

    orders = all_orders(trader)
    assert len(orders) == 4
    paid, received = cash_flows(orders)
    state = account(trader)
    assert D(state["cash"]) + paid - received == STARTING_CASH
    msft = trader.get("/v1/positions/MSFT").json()
    assert D(state["positions_value"]) == D(msft["market_value"])
    assert D(state["equity"]) == D(state["cash"]) + D(msft["market_value"])


# -- listing ------------------------------------------------------------------------------------------------------

def test_listing_filters_and_cursor_pagination(http: CheckedSession, trader: CheckedSession, base_url: str,
                                               app: Flask) -> None:
    # The clock is frozen: every order below has the same timestamp, so the order must come from the ids.
    created: list[dict[str, Any]] = []
    for i in range(9):
        created.append(placed(trader, symbol="AAPL", quantity=2))
        created.append(placed(trader, symbol="MSFT", type="LIMIT", price=1.00, quantity=1))
        created.append(placed(trader, symbol="AAPL", side="SELL", quantity=1))
        if i % 3 == 0:
            created.append(placed(trader, symbol="REJECT"))
    trader.delete(f"/v1/orders/{created[1]['id']}")
    with spec_session(base_url, app) as other:  # another account's orders never show up
        other.headers["Authorization"] = f"Bearer {mint(http, 'neighbour')}"
        placed(other, symbol="AAPL")

    newest_first = [o["id"] for o in reversed(created)]
    for size in (1, 4, 7, 30, 500):
        walked = [o["id"] for o in all_orders(trader, page_size=size)]
        assert walked == newest_first, size
    assert len(set(newest_first)) == len(created) == 30

    def ids(**filters: Any) -> list[str]:
        return [o["id"] for o in all_orders(trader, page_size=4, **filters)]

    by_id = {o["id"]: o for o in created}
    assert ids(symbol="MSFT") == [i for i in newest_first if by_id[i]["symbol"] == "MSFT"]
    assert ids(side="SELL") == [i for i in newest_first if by_id[i]["side"] == "SELL"]
    open_ids = [i for i in newest_first if by_id[i]["symbol"] == "MSFT" and i != created[1]["id"]]
    assert ids(status="open") == open_ids
    assert ids(status="closed") == [i for i in newest_first if i not in open_ids]
    assert ids(status="rejected") == [i for i in newest_first if by_id[i]["symbol"] == "REJECT"]
    assert ids(status="cancelled") == [created[1]["id"]]
    assert ids(status="filled", symbol="AAPL", side="BUY") == [
        i for i in newest_first if by_id[i]["symbol"] == "AAPL" and by_id[i]["side"] == "BUY"]
    assert ids(status="expired") == [] and ids(symbol="TSLA") == []
    for filters in ({}, {"symbol": "MSFT"}, {"status": "closed", "side": "SELL"},
                    {"status": "filled", "symbol": "AAPL", "side": "BUY"}):  # the control plane lists the same
        assert [o["id"] for o in all_orders(http, 4, "/_mock/accounts/acc_trader/orders", **filters)] == ids(**filters)

    # Pages stay stable while new orders arrive: the cursor lists what was older than it.
    first = trader.get("/v1/orders", params={"limit": 10}).json()
    newer = placed(trader, symbol="AAPL")
    second = trader.get("/v1/orders", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [o["id"] for o in second["data"]] == newest_first[10:20]
    assert trader.get("/v1/orders", params={"limit": 1}).json()["data"][0]["id"] == newer["id"]
    for bad in ({"cursor": "nope"}, {"limit": 0}, {"limit": 501}, {"status": "open-ish"}, {"side": "buy"}):
        error = error_of(trader.get("/v1/orders", params=bad), 400, 4000)
        assert error["field"] == next(iter(bad))


# -- many clients at once -----------------------------------------------------------------------------------------

def test_concurrent_orders_and_cancels_lose_nothing_and_never_overdraw(http: CheckedSession, trader: CheckedSession,
                                                                       base_url: str, app: Flask) -> None:
    token = trader.headers["Authorization"]
    tsla = quote(trader, "TSLA")
    near = float(D(tsla["ask"]) - Decimal("0.05"))
    threads, per_thread = 12, 25
    barrier = threading.Barrier(threads + 1)
    lock = threading.Lock()
    created: list[str] = []
    cancelled: list[str] = []
    statuses: Counter[tuple[int, int | None]] = Counter()
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            with spec_session(base_url, app) as session:
                session.headers["Authorization"] = token
                mine: list[str] = []
                barrier.wait()
                for j in range(per_thread):
                    kind = (number + j) % 6
                    if kind in (0, 3):
                        response = order(session, symbol="TSLA", quantity=40)
                    elif kind == 1:
                        response = order(session, symbol="TSLA", type="LIMIT", quantity=30, price=near)
                    elif kind == 2 and mine:  # the newest may still rest; the oldest has often filled (1007)
                        response = session.delete(f"/v1/orders/{mine.pop(-1 if j % 2 else 0)}")
                    elif kind == 4:
                        response = session.patch("/v1/positions/TSLA", json={"target_quantity": 60})
                    else:
                        response = order(session, symbol="TSLA", type="LIMIT", side="SELL", quantity=25, price=near)
                    body = response.json()
                    code = body["error"]["code"] if "error" in body else None
                    with lock:
                        statuses[(response.status_code, code)] += 1
                        if response.status_code == 201:
                            created.append(body["id"])
                            mine.append(body["id"])
                        elif response.request.method == "PATCH" and body.get("order"):
                            created.append(body["order"]["id"])
                        elif response.request.method == "DELETE" and response.status_code == 200:
                            cancelled.append(body["id"])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def ticker() -> None:
        try:
            with spec_session(base_url, app) as control:
                barrier.wait()
                for _ in range(40):
                    control.post("/_mock/clock", json={"action": "advance", "seconds": 1})
        except BaseException as exc:
            failures.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    pool.append(threading.Thread(target=ticker))
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not failures, failures[:3]
    assert sum(statuses.values()) == threads * per_thread
    allowed = {(201, None), (200, None), (409, 1007), (422, 1002), (422, 1006)}
    assert set(statuses) <= allowed, statuses
    assert statuses[(201, None)] > 50 and statuses[(422, 1002)] > 0 and cancelled  # cash ran out under contention

    orders = all_orders(trader, page_size=100)
    assert len(orders) == len(created) == len(set(created))
    assert {o["id"] for o in orders} == set(created)
    assert [o["id"] for o in orders] == sorted(created, reverse=True)
    for entry in orders:
        assert trader.get(f"/v1/orders/{entry['id']}").json() == entry
        assert 0 <= entry["filled_quantity"] <= entry["quantity"]
        assert entry["filled_quantity"] == sum(fill["quantity"] for fill in entry["fills"])
        if entry["status"] == "FILLED":
            assert entry["filled_quantity"] == entry["quantity"]
    by_id = {o["id"]: o for o in orders}
    assert all(by_id[i]["status"] == "CANCELLED" for i in cancelled)  # a 200 cancel is never undone by a fill

    paid, received = cash_flows(orders)
    state = account(trader)
    assert D(state["cash"]) == STARTING_CASH - paid + received
    assert D(state["cash"]) >= 0 and D(state["buying_power"]) >= 0
    bought = sum(f["quantity"] for o in orders if o["side"] == "BUY" for f in o["fills"])
    sold = sum(f["quantity"] for o in orders if o["side"] == "SELL" for f in o["fills"])
    positions = trader.get("/v1/positions").json()["data"]
    assert sum(p["quantity"] for p in positions) == bought - sold >= 0
    working_buys = [o for o in orders if o["side"] == "BUY" and o["status"] in ("OPEN", "PARTIALLY_FILLED")]
    assert D(state["reserved_cash"]) == sum((o["remaining_quantity"] * D(o["price"]) for o in working_buys),
                                            Decimal("0"))
