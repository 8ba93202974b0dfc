"""Reproducibility over real HTTP: two separate emulators with the same seed, frozen at the same instant and sent
the same requests and clock moves, answer byte for byte the same: fills (prices, quantities, timestamps), ids and
recommendations. Another seed gives another market."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from flask import Flask

from mock_server.app import create_app
from mock_server.config import Config
from tests.support.live import CheckedSession, serve, spec_session

START = "2026-11-25T15:00:00Z"


def emulator(seed: int) -> Flask:
    return create_app(Config(seed=seed, validate_responses=True, rate_limit_capacity=1000,
                             rate_limit_per_second=1000.0))


def scenario(app: Flask) -> list[tuple[str, int, Any]]:
    """Run one fixed session against a fresh emulator; return every (label, status, body) it saw."""
    transcript: list[tuple[str, int, Any]] = []
    with serve(app) as url, spec_session(url, app) as http, spec_session(url, app) as trader:
        def call(session: CheckedSession, method: str, path: str, body: Any = None, **params: Any) -> Any:
            response = session.request(method, path, json=body, params=params or None)
            transcript.append((f"{method} {path}", response.status_code, response.json()))
            return response.json()

        http.post("/_mock/clock", json={"action": "freeze"})  # answers with the real time: not compared
        call(http, "POST", "/_mock/clock", {"action": "set", "to": START})
        token = call(http, "POST", "/_mock/tokens", {"subject": "det"})["access_token"]
        trader.headers["Authorization"] = f"Bearer {token}"

        tsla = call(trader, "GET", "/v1/market/quotes/TSLA")
        nio = call(trader, "GET", "/v1/market/quotes/NIO")
        call(trader, "POST", "/v1/orders", {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10})
        call(trader, "POST", "/v1/orders", {"symbol": "TSLA", "type": "LIMIT", "side": "BUY", "quantity": 5,
                                            "price": float(Decimal(str(tsla["ask"])) - Decimal("0.10"))})
        call(trader, "POST", "/v1/orders", {"symbol": "TSLA", "type": "STOP", "side": "BUY", "quantity": 2,
                                            "stop_price": float(Decimal(str(tsla["ask"])) + Decimal("0.25"))})
        call(trader, "POST", "/v1/orders", {"symbol": "NIO", "type": "LIMIT", "side": "BUY", "quantity": 12_000,
                                            "price": float(Decimal(str(nio["ask"])) * Decimal("1.05"))})
        call(trader, "POST", "/v1/orders", {"symbol": "PARTL", "type": "MARKET", "side": "BUY", "quantity": 10})
        for _ in range(20):
            call(http, "POST", "/_mock/clock", {"action": "advance", "seconds": 1})
            call(trader, "GET", "/v1/orders", limit=500)
        call(http, "POST", "/_mock/clock", {"action": "advance", "seconds": 600})  # caught up step by step
        call(trader, "PATCH", "/v1/positions/AAPL", {"target_quantity": 4})
        call(trader, "POST", "/v1/batch", {"operations": [
            {"action": "CREATE_ORDER", "data": {"symbol": "KO", "type": "MARKET", "side": "BUY", "quantity": 7}},
            {"action": "UPDATE_POSITION", "data": {"symbol": "NIO", "target_quantity": 100}}]})
        for risk in ("CONSERVATIVE", "AGGRESSIVE"):
            call(trader, "POST", "/v1/ai/recommendations", {"portfolio": ["AAPL", {"symbol": "TSLA", "quantity": 3},
                                                                          "KO", "NIO"],
                                                            "risk_tolerance": risk, "time_horizon": "7_DAYS"})
        call(trader, "GET", "/v1/orders", limit=500)
        call(trader, "GET", "/v1/positions")
        call(trader, "GET", "/v1/account")
    return transcript


def fills(transcript: list[tuple[str, int, Any]]) -> list[tuple[str, str, int, float, str]]:
    orders = transcript[-3][2]["data"]
    return [(o["symbol"], o["side"], f["quantity"], f["price"], f["timestamp"]) for o in orders for f in o["fills"]]


def recommendations(transcript: list[tuple[str, int, Any]]) -> list[Any]:
    return [body for label, _, body in transcript if label == "POST /v1/ai/recommendations"]


def test_same_seed_same_instant_same_requests_give_identical_answers() -> None:
    # Built one after the other: CPython 3.11's compiler is not safe to run in two threads at once (it fails with
    # "AST constructor recursion depth mismatch"), and building an app compiles code (Werkzeug its URL rules).
    apps = [emulator(7), emulator(7)]
    with ThreadPoolExecutor(2) as pool:  # then side by side, so shared state between apps would show too
        first, second = pool.map(scenario, apps)
    assert [entry[:2] for entry in first] == [entry[:2] for entry in second]
    assert fills(first) == fills(second)
    assert recommendations(first) == recommendations(second)
    assert first == second  # everything else too: ids, timestamps, balances, tokens
    # The scenario exercised what matters: resting orders filled later, in parts, at several steps.
    timestamps = {timestamp for *_, timestamp in fills(first)}
    assert len(timestamps) >= 5 and len(fills(first)) >= 8
    statuses = {o["symbol"]: o["status"] for o in first[-3][2]["data"]}
    assert statuses["PARTL"] == "PARTIALLY_FILLED"
    assert all(status == 200 for label, status, _ in first if label.startswith("POST /v1/ai"))


def test_another_seed_gives_another_market() -> None:
    seven, eight = scenario(emulator(7)), scenario(emulator(8))
    assert [price for *_, price, _ in fills(seven)] != [price for *_, price, _ in fills(eight)]
    assert recommendations(seven) != recommendations(eight)
