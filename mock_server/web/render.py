"""Domain views → the JSON shapes of openapi.yaml. Money leaves as JSON numbers, times as RFC 3339 UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.domain.ai import RecommendationSetView
from mock_server.domain.clock import rfc3339 as timestamp  # the API's one form of an instant
from mock_server.domain.errors import ApiError
from mock_server.domain.faults import Fault
from mock_server.domain.journal import JournalEntry
from mock_server.domain.market.hours import MarketStatus
from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.batch import BatchOutcome
from mock_server.domain.trading.models import (
    AccountView,
    ClosedPosition,
    OrderView,
    PositionUpdateResult,
    PositionView,
)
from mock_server.domain.webhooks.alerts import Alert
from mock_server.domain.webhooks.dispatcher import DeliveryView, EventRecord
from mock_server.domain.webhooks.endpoints import Endpoint
from mock_server.domain.webhooks.events import EventType


def error_body(error: ApiError) -> dict[str, object]:
    """The envelope's inside (without `request_id`, which only an HTTP answer has)."""
    body: dict[str, object] = {"code": int(error.code), "type": error.code.type, "message": error.message}
    if error.field is not None:
        body["field"] = error.field
    if error.retry_after is not None:
        body["retry_after"] = error.retry_after
    return body


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


def closed_position(view: ClosedPosition) -> dict[str, Any]:
    return {
        "symbol": view.symbol, "quantity_closed": view.quantity_closed,
        "average_entry_price": float(view.average_entry_price), "exit_price": float(view.exit_price),
        "realized_pl": float(view.realized_pl), "opened_at": timestamp(view.opened_at),
        "closed_at": timestamp(view.closed_at),
    }


def alert(view: Alert) -> dict[str, Any]:
    return {"id": view.id, "kind": str(view.kind), "symbol": view.symbol, "message": view.message,
            "threshold_percent": _number(view.threshold_percent), "observed_percent": _number(view.observed_percent)}


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


def webhook_endpoint(view: Endpoint) -> dict[str, Any]:
    events = None if view.events is None else [str(kind) for kind in EventType if kind in view.events]
    return {"id": view.id, "url": view.url, "secret": view.secret, "events": events, "source": str(view.source),
            "created_at": timestamp(view.created_at)}


def webhook_delivery(view: DeliveryView) -> dict[str, Any]:
    return {
        "endpoint_id": view.endpoint_id, "url": view.url, "status": str(view.status),
        "attempts": [{"number": a.number, "attempted_at": timestamp(a.at), "status_code": a.status_code,
                      "latency_ms": a.latency_ms, "error": a.error, "succeeded": a.succeeded}
                     for a in view.attempts],
        "next_attempt_at": _time(view.next_attempt_at), "error": view.error,
    }


def webhook_event(record: EventRecord) -> dict[str, Any]:
    """``payload`` is the document every attempt sends (the same JSON, re-serialized)."""
    event = record.event
    return {"id": event.id, "type": str(event.type), "created_at": timestamp(event.created_at),
            "account_id": event.account_id, "status": str(record.status), "payload": event.payload,
            "deliveries": [webhook_delivery(delivery) for delivery in record.deliveries]}


def fault(view: Fault) -> dict[str, Any]:
    request = view.request
    return {
        "id": view.id, "operation": request.operation, "path": request.path, "latency_ms": request.latency_ms,
        "error_code": None if request.error_code is None else int(request.error_code), "status": request.status,
        "drop_connection": request.drop_connection, "stream_disconnect_after": request.stream_disconnect_after,
        "message": request.message, "retry_after": request.retry_after, "count": request.count,
        "probability": request.probability, "applied": view.applied, "remaining": view.remaining,
        "created_at": timestamp(view.created_at),
    }


def journal_entry(entry: JournalEntry) -> dict[str, Any]:
    return {
        "request_id": entry.request_id, "timestamp": timestamp(entry.timestamp), "method": entry.method,
        "path": entry.path, "query": entry.query, "headers": entry.headers, "body": entry.body,
        "body_truncated": entry.body_truncated, "status": entry.status, "operation": entry.operation,
        "duration_ms": entry.duration_ms,
    }
