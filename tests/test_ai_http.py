"""POST /v1/ai/recommendations over real HTTP: deterministic, sized by risk tolerance, 1004 naming the holding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import mint
from tests.support.live import CheckedSession, spec_session

PORTFOLIO = [{"symbol": "AAPL", "quantity": 100}, {"symbol": "TSLA", "quantity": 10}, "KO", "NVDA"]


@pytest.fixture
def reader(base_url: str, app: Flask, http: CheckedSession) -> Iterator[CheckedSession]:
    """Recommendations only need trading:read; the clock is frozen at a fixed instant first."""
    http.post("/_mock/clock", json={"action": "freeze"})
    http.post("/_mock/clock", json={"action": "set", "to": "2026-11-25T15:00:00.400Z"})
    with spec_session(base_url, app) as session:
        session.headers["Authorization"] = f"Bearer {mint(http, 'analyst', 'trading:read')}"
        yield session


def ask(session: CheckedSession, portfolio: list[Any] = PORTFOLIO, risk: str = "MODERATE",
        horizon: str = "30_DAYS") -> Any:
    return session.post("/v1/ai/recommendations",
                        json={"portfolio": portfolio, "risk_tolerance": risk, "time_horizon": horizon})


def test_recommendations_are_complete_and_consistent(reader: CheckedSession) -> None:
    response = ask(reader)
    assert response.status_code == 200
    body = response.json()
    assert (body["risk_tolerance"], body["time_horizon"], body["model"]) == ("MODERATE", "30_DAYS", "tradefence-sim-1")
    assert body["generated_at"] == "2026-11-25T15:00:00.000Z"  # the start of the simulator step
    assert [r["symbol"] for r in body["recommendations"]] == ["AAPL", "TSLA", "KO", "NVDA"]
    assert round(sum(r["target_weight"] for r in body["recommendations"]), 4) == 1
    assert round(sum(r["current_weight"] for r in body["recommendations"]), 4) == 1
    for r in body["recommendations"]:
        gap = r["target_weight"] - r["current_weight"]
        expected = "BUY" if gap > 0.02 + 1e-9 else "SELL" if gap < -0.02 - 1e-9 else "HOLD"
        assert r["action"] == expected, r
        assert r["rationale"]
    # The two bare symbols share half the weight equally; the two holdings split the other half by value.
    weights = {r["symbol"]: r["current_weight"] for r in body["recommendations"]}
    assert weights["KO"] == weights["NVDA"] == 0.25
    single = ask(reader, ["AAPL"]).json()["recommendations"]
    assert (single[0]["action"], single[0]["current_weight"], single[0]["target_weight"]) == ("HOLD", 1.0, 1.0)


def test_same_seed_clock_and_input_give_the_same_answer(reader: CheckedSession, http: CheckedSession) -> None:
    first = ask(reader)
    assert ask(reader).content == first.content
    http.post("/_mock/clock", json={"action": "advance", "seconds": 0.5})  # still inside the same step
    assert ask(reader).content == first.content
    http.post("/_mock/clock", json={"action": "advance", "seconds": 1800})
    later = ask(reader).json()
    assert later["generated_at"] == "2026-11-25T15:30:00.000Z" and later["id"] != first.json()["id"]
    assert later["recommendations"] != first.json()["recommendations"]  # half an hour of new prices


def test_risk_tolerance_and_horizon_change_the_advice(reader: CheckedSession) -> None:
    answers = {risk: ask(reader, risk=risk).json() for risk in ("CONSERVATIVE", "MODERATE", "AGGRESSIVE")}
    targets = {risk: [r["target_weight"] for r in body["recommendations"]] for risk, body in answers.items()}
    assert len({tuple(t) for t in targets.values()}) == 3, targets
    assert len({body["id"] for body in answers.values()}) == 3
    for body in answers.values():  # the inputs, not the sizing, fix the current weights and the statistics
        assert [r["current_weight"] for r in body["recommendations"]] == [
            r["current_weight"] for r in answers["MODERATE"]["recommendations"]]
        assert [r["volatility"] for r in body["recommendations"]] == [
            r["volatility"] for r in answers["MODERATE"]["recommendations"]]
    # Conservative sizing leans toward the calmer names: KO (low volatility) gets more than under aggressive.
    ko = [r["symbol"] for r in answers["MODERATE"]["recommendations"]].index("KO")
    assert targets["CONSERVATIVE"][ko] > targets["AGGRESSIVE"][ko]
    horizons = {ask(reader, horizon=h).json()["recommendations"][0]["volatility"] for h in ("7_DAYS", "1_YEAR")}
    assert len(horizons) == 2


def test_unknown_symbols_get_1004_naming_the_portfolio_entry(reader: CheckedSession) -> None:
    for portfolio, field in ((["ZZZZ"], "portfolio.0"), (["AAPL", {"symbol": "NOPE", "quantity": 3}], "portfolio.1"),
                             (["AAPL", "MSFT", "KO", "aapl"], "portfolio.3")):
        response = ask(reader, portfolio)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["type"], error["field"]) == (1004, "invalid_symbol", field)


def test_invalid_requests_are_400_naming_the_field(reader: CheckedSession) -> None:
    for portfolio, risk, horizon, field in (([], "MODERATE", "30_DAYS", "portfolio"),
                                            (["AAPL"], "YOLO", "30_DAYS", "risk_tolerance"),
                                            (["AAPL"], "MODERATE", "2_DAYS", "time_horizon"),
                                            ([{"symbol": "AAPL", "quantity": -1}], "MODERATE", "30_DAYS", None)):
        response = ask(reader, portfolio, risk, horizon)
        assert response.status_code == 400 and response.json()["error"]["code"] == 4000
        if field:
            assert response.json()["error"]["field"] == field
    assert ask(reader, ["AAPL"] * 51).status_code == 400
