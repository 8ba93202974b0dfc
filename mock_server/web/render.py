"""Domain views → the JSON shapes of openapi.yaml. Money leaves as JSON numbers, times as RFC 3339 UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mock_server.domain.ai import RecommendationSetView
from mock_server.domain.market.hours import MarketStatus
from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.batch import BatchOutcome
from mock_server.domain.trading.models import AccountView, OrderView, PositionUpdateResult, PositionView
from mock_server.web.errors import error_body


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order(view: OrderView) -> dict[str, Any]:
    return {
        "id": view.id, "client_order_id": view.client_order_id, "symbol": view.symbol, "type": str(view.type),
        "side": str(view.side), "quantity": view.quantity, "price": _number(view.limit_price),
        "stop_price": _number(view.stop_price), "time_in_force": str(view.time_in_force),
        "strategy": str(view.strategy), "status": str(view.status), "filled_quantity": view.filled_quantity,
        "remaining_quantity": view.remaining_quantity, "average_fill_price": _number(view.average_fill_price),
        "fills": [{"quantity": f.quantity, "price": float(f.price), "timestamp": timestamp(f.timestamp)}
                  for f in view.fills],
        "reject_reason": view.reject_reason, "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at), "filled_at": _time(view.filled_at),
        "cancelled_at": _time(view.cancelled_at), "expired_at": _time(view.expired_at),
    }


def position(view: PositionView) -> dict[str, Any]:
    return {
        "symbol": view.symbol, "quantity": view.quantity, "available_quantity": view.available_quantity,
        "average_entry_price": float(view.average_entry_price), "cost_basis": float(view.cost_basis),
        "market_price": float(view.market_price), "market_value": float(view.market_value),
        "unrealized_pl": float(view.unrealized_pl), "unrealized_pl_percent": float(view.unrealized_pl_percent),
        "opened_at": timestamp(view.opened_at), "updated_at": timestamp(view.updated_at),
    }


def position_update(result: PositionUpdateResult) -> dict[str, Any]:
    return {"symbol": result.symbol, "previous_quantity": result.previous_quantity, "quantity": result.quantity,
            "order": None if result.order is None else order(result.order)}


def account(view: AccountView) -> dict[str, Any]:
    return {
        "id": view.id, "currency": view.currency, "cash": float(view.cash), "buying_power": float(view.buying_power),
        "reserved_cash": float(view.reserved_cash), "positions_value": float(view.positions_value),
        "equity": float(view.equity), "realized_pl": float(view.realized_pl), "status": view.status,
        "created_at": timestamp(view.created_at),
    }


def market_clock(status: MarketStatus, now: datetime) -> dict[str, Any]:
    return {"timestamp": timestamp(now), "is_open": status.is_open, "mode": str(status.mode),
            "next_open": _time(status.next_open), "next_close": _time(status.next_close)}


def quote(view: Quote) -> dict[str, Any]:
    return {"symbol": view.symbol, "bid": float(view.bid), "ask": float(view.ask), "bid_size": view.bid_size,
            "ask_size": view.ask_size, "timestamp": timestamp(view.timestamp)}


def recommendations(view: RecommendationSetView) -> dict[str, Any]:
    return {
        "id": view.id, "generated_at": timestamp(view.generated_at), "model": view.model,
        "risk_tolerance": view.risk_tolerance, "time_horizon": view.time_horizon,
        "recommendations": [
            {"symbol": r.symbol, "action": r.action, "current_weight": r.current_weight,
             "target_weight": r.target_weight, "confidence": r.confidence, "expected_return": r.expected_return,
             "volatility": r.volatility, "rationale": r.rationale}
            for r in view.recommendations
        ],
        "disclaimer": view.disclaimer,
    }


def batch_outcome(outcome: BatchOutcome) -> dict[str, Any]:
    rendered: dict[str, Any] = {"index": outcome.index, "action": outcome.action, "status": outcome.status}
    if outcome.error is not None:
        rendered["error"] = error_body(outcome.error)
        if outcome.error.field is not None:
            rendered["error"]["field"] = f"operations.{outcome.index}.data.{outcome.error.field}"
    elif isinstance(outcome.result, PositionUpdateResult):
        rendered["result"] = position_update(outcome.result)
    elif outcome.result is not None:
        rendered["result"] = order(outcome.result)
    return rendered
