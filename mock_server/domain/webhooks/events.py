"""Webhook events: the spec's envelope ``{id, type, created_at, account_id, data}``, serialized once.

The body is fixed once made, so every attempt and every redelivery signs and sends the same bytes. It is made on
first use, not when the event happens: every fill publishes an event, and most are never sent (no endpoint wants
them) nor read. What it says is fixed at once all the same: the id is drawn when the event is created, and the
data are frozen snapshots (``OrderView``, ``ClosedPosition``, ``Alert``), so rendering later says the same.
The domain decides *what* an event says; how a domain value looks as JSON is the web layer's ``render`` module,
handed in as ``Shapes`` by the composition root (the domain never imports the web layer).
"""

from __future__ import annotations

import functools
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


EventData = OrderView | ClosedPosition | Alert | Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class WebhookEvent:
    """One event as sent: ``body`` its exact bytes, ``payload`` that JSON.

    ``content`` is what ``data`` says: a snapshot, rendered by ``shapes`` on first use, or a mapping as given; or
    the whole body as bytes (an event restored from a state file). Holding the snapshot, not closures or rendered
    dicts, keeps an event at one object for the garbage collector to walk.
    """

    id: str
    type: EventType
    created_at: datetime
    account_id: str
    content: EventData | bytes
    shapes: Shapes | None = None

    @functools.cached_property
    def body(self) -> bytes:
        if isinstance(self.content, bytes):
            return self.content
        assert self.shapes is not None, "a snapshot needs shapes to render"
        payload = {"id": self.id, "type": str(self.type), "created_at": self.shapes.timestamp(self.created_at),
                   "account_id": self.account_id, "data": _data(self.content, self.shapes)}
        return json.dumps(payload, separators=(",", ":")).encode()

    @functools.cached_property
    def payload(self) -> Mapping[str, Any]:
        payload: Mapping[str, Any] = json.loads(self.body)
        return payload

    def __eq__(self, other: object) -> bool:
        """The same event sent as the same bytes (how it is held does not matter)."""
        if not isinstance(other, WebhookEvent):
            return NotImplemented
        return ((self.id, self.type, self.created_at, self.account_id, self.body)
                == (other.id, other.type, other.created_at, other.account_id, other.body))

    def __hash__(self) -> int:
        return hash(self.id)


def _data(content: EventData, shapes: Shapes) -> dict[str, Any]:
    if isinstance(content, OrderView):
        return {"order": shapes.order(content)}
    if isinstance(content, ClosedPosition):
        return {"position": shapes.closed_position(content)}
    if isinstance(content, Alert):
        return {"alert": shapes.alert(content)}
    return dict(content)


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
            return self._event(EventType.ORDER_FILLED, event.account_id, event.at, event.order)
        return self._event(EventType.POSITION_CLOSED, event.account_id, event.at, event.position)

    def from_alert(self, account_id: str, alert: Alert, at: datetime) -> WebhookEvent:
        return self._event(EventType.ALERT_TRIGGERED, account_id, at, alert)

    def build(self, type: EventType, account_id: str, data: Mapping[str, Any], at: datetime) -> WebhookEvent:
        """An event with ``data`` as given (forced events, samples): rendered at once, so later changes to ``data``
        cannot reach it."""
        event = self._event(type, account_id, at, data)
        _ = event.body
        return event

    def _event(self, type: EventType, account_id: str, at: datetime, content: EventData) -> WebhookEvent:
        return WebhookEvent(self._ids.new("evt"), EventType(type), at, account_id, content, self._shapes)
