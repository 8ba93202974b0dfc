"""Webhook events: the spec's envelope ``{id, type, created_at, account_id, data}``, serialized once.

The body is fixed when the event is created, so every attempt and every redelivery signs and sends the same bytes.
The domain decides *what* an event says; how a domain value looks as JSON is the web layer's ``render`` module,
handed in as ``Shapes`` by the composition root (the domain never imports the web layer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from mock_server.domain.ids import IdGenerator
from mock_server.domain.trading.models import ClosedPosition, OrderFilled, OrderView, TradingEvent
from mock_server.domain.webhooks.alerts import Alert


class EventType(StrEnum):
    ORDER_FILLED = "order.filled"
    POSITION_CLOSED = "position.closed"
    ALERT_TRIGGERED = "alert.triggered"


class Shapes(Protocol):
    """Domain values → the spec's JSON (implemented by ``mock_server.web.render``)."""

    def timestamp(self, moment: datetime) -> str: ...

    def order(self, view: OrderView) -> dict[str, Any]: ...

    def closed_position(self, view: ClosedPosition) -> dict[str, Any]: ...

    def alert(self, alert: Alert) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WebhookEvent:
    """One event as sent: ``payload`` is the JSON document, ``body`` its exact bytes."""

    id: str
    type: EventType
    created_at: datetime
    account_id: str
    payload: Mapping[str, Any]
    body: bytes


class EventFactory:
    """Builds events with ``evt_`` ids from their own seeded id stream (so webhooks never shift order ids)."""

    def __init__(self, ids: IdGenerator, shapes: Shapes) -> None:
        self._ids = ids
        self._shapes = shapes

    @property
    def shapes(self) -> Shapes:
        return self._shapes

    def from_trading(self, event: TradingEvent) -> WebhookEvent:
        """``created_at`` is when the fill happened, which after a clock jump may be before now."""
        if isinstance(event, OrderFilled):
            return self.build(EventType.ORDER_FILLED, event.account_id, {"order": self._shapes.order(event.order)},
                              event.at)
        return self.build(EventType.POSITION_CLOSED, event.account_id,
                          {"position": self._shapes.closed_position(event.position)}, event.at)

    def from_alert(self, account_id: str, alert: Alert, at: datetime) -> WebhookEvent:
        return self.build(EventType.ALERT_TRIGGERED, account_id, {"alert": self._shapes.alert(alert)}, at)

    def build(self, type: EventType, account_id: str, data: Mapping[str, Any], at: datetime) -> WebhookEvent:
        event_id = self._ids.new("evt")
        payload = {"id": event_id, "type": str(type), "created_at": self._shapes.timestamp(at),
                   "account_id": account_id, "data": dict(data)}
        body = json.dumps(payload, separators=(",", ":")).encode()
        return WebhookEvent(id=event_id, type=EventType(type), created_at=at, account_id=account_id, payload=payload,
                            body=body)
