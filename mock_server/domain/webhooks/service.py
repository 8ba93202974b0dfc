"""The webhook side of the emulator as everything else sees it: endpoints, events, delivery, samples."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from mock_server.domain.clock import Clock
from mock_server.domain.trading.models import TradingEvent
from mock_server.domain.webhooks.alerts import Alert
from mock_server.domain.webhooks.dispatcher import Dispatcher, EventRecord, PendingDelivery
from mock_server.domain.webhooks.endpoints import Endpoint, EndpointRegistry
from mock_server.domain.webhooks.events import EventFactory, EventType, WebhookEvent
from mock_server.domain.webhooks.samples import AlertChoices, OrderChoices, PositionChoices, Samples

Choices = OrderChoices | PositionChoices | AlertChoices
C = TypeVar("C", OrderChoices, PositionChoices, AlertChoices)


class Webhooks:
    def __init__(self, endpoints: EndpointRegistry, events: EventFactory, dispatcher: Dispatcher, samples: Samples,
                 clock: Clock) -> None:
        self.endpoints = endpoints
        self.events = events
        self.dispatcher = dispatcher
        self.samples = samples
        self._clock = clock

    def on_trading_event(self, event: TradingEvent) -> None:
        """The trading engine's listener: every fill that completes an order, every position that closes."""
        self.dispatcher.publish_unread(self.events.from_trading(event))

    def on_alert(self, account_id: str, alert: Alert, at: datetime) -> None:
        """The alert watcher's sink."""
        self.dispatcher.publish_unread(self.events.from_alert(account_id, alert, at))

    def sample_data(self, event_type: EventType, choices: Choices | None = None) -> dict[str, Any]:
        """The ``data`` of a made-up event of ``event_type`` in the spec's shape, built around ``choices`` (the
        ones of its type: ``OrderChoices`` for ``order.filled``, and so on)."""
        shapes = self.events.shapes
        if event_type is EventType.ORDER_FILLED:
            return {"order": shapes.order(self.samples.order(_of(OrderChoices, choices)))}
        if event_type is EventType.POSITION_CLOSED:
            return {"position": shapes.closed_position(self.samples.closed_position(_of(PositionChoices, choices)))}
        return {"alert": shapes.alert(self.samples.alert(_of(AlertChoices, choices)))}

    def build(self, event_type: EventType, account_id: str, data: Mapping[str, Any]) -> WebhookEvent:
        """An event at the current clock, not yet published (so a caller can check it first)."""
        return self.events.build(event_type, account_id, data, self._clock.now())

    def publish(self, event: WebhookEvent) -> EventRecord:
        return self.dispatcher.publish(event)

    def remove_endpoint(self, endpoint_id: str) -> tuple[Endpoint, list[PendingDelivery]]:
        endpoint = self.endpoints.remove(endpoint_id)
        return endpoint, self.dispatcher.endpoint_removed(endpoint_id)

    def reset(self) -> None:
        """Forget every event and the endpoints registered through the control plane; configured ones stay."""
        removed = self.endpoints.reset()
        self.dispatcher.reset([endpoint.id for endpoint in removed])

    def stop(self, grace: float) -> list[PendingDelivery]:
        return self.dispatcher.stop(grace)


def _of(kind: type[C], choices: Choices | None) -> C | None:
    if choices is not None and not isinstance(choices, kind):
        raise TypeError(f"{type(choices).__name__} are not the choices of this event type")
    return choices
