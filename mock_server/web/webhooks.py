"""The /_mock webhook control plane: endpoints, the delivery log, redelivery, and forced events."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.domain.clock import LATEST_READING
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.trading.models import Fill, OrderSide, OrderType, Strategy, TimeInForce
from mock_server.domain.webhooks.alerts import AlertKind
from mock_server.domain.webhooks.dispatcher import EventStatus
from mock_server.domain.webhooks.events import EventType
from mock_server.domain.webhooks.samples import AlertChoices, OrderChoices, PositionChoices
from mock_server.domain.webhooks.service import Choices
from mock_server.spec.validation import SchemaValidator
from mock_server.web import render
from mock_server.web.routing import Api, Call

SCHEMAS = {EventType.ORDER_FILLED: "OrderFilledEvent", EventType.POSITION_CLOSED: "PositionClosedEvent",
           EventType.ALERT_TRIGGERED: "AlertTriggeredEvent"}
E = TypeVar("E", bound=Enum)
SUBJECTS = {EventType.ORDER_FILLED: "order", EventType.POSITION_CLOSED: "position",
            EventType.ALERT_TRIGGERED: "alert"}


def blueprint(api: Api) -> Blueprint:
    bp = Blueprint("webhooks", __name__)
    document = api.document
    payloads = {kind: SchemaValidator(document, document.schema_ref(name)) for kind, name in SCHEMAS.items()}

    @api.route(bp, "mockListWebhookEndpoints")
    def list_endpoints(call: Call) -> ResponseReturnValue:
        return jsonify({"data": [render.webhook_endpoint(e) for e in call.services.webhooks.endpoints.all()]})

    @api.route(bp, "mockCreateWebhookEndpoint")
    def create_endpoint(call: Call) -> ResponseReturnValue:
        body = call.body
        endpoint = call.services.webhooks.endpoints.add(body["url"], secret=body.get("secret"),
                                                        events=body.get("events"))
        return _status(render.webhook_endpoint(endpoint), 201)

    @api.route(bp, "mockDeleteWebhookEndpoint")
    def delete_endpoint(call: Call) -> ResponseReturnValue:
        endpoint, abandoned = call.services.webhooks.remove_endpoint(call.inputs.path["endpointId"])
        return jsonify({"id": endpoint.id, "deleted": True,
                        "abandoned_event_ids": [pending.event_id for pending in abandoned]})

    @api.route(bp, "mockListWebhookDeliveries")
    def list_deliveries(call: Call) -> ResponseReturnValue:
        query = call.inputs.query
        status, kind = query.get("status"), query.get("type")
        records = call.services.webhooks.dispatcher.events(
            status=None if status is None else EventStatus(status),
            event_type=None if kind is None else EventType(kind), limit=query["limit"],
        )
        return jsonify({"data": [render.webhook_event(record) for record in records]})

    @api.route(bp, "mockGetWebhookEvent")
    def get_event(call: Call) -> ResponseReturnValue:
        return jsonify(render.webhook_event(call.services.webhooks.dispatcher.event(call.inputs.path["eventId"])))

    @api.route(bp, "mockRedeliverWebhookEvent")
    def redeliver(call: Call) -> ResponseReturnValue:
        record = call.services.webhooks.dispatcher.redeliver(call.inputs.path["eventId"],
                                                             (call.body or {}).get("endpoint_id"))
        return _status(render.webhook_event(record), 202)

    @api.route(bp, "mockTriggerEvent")
    def trigger(call: Call) -> ResponseReturnValue:
        """A made-up subject built around the caller's ``data`` (so it never contradicts itself), checked against
        the event's schema, then sent. A field the caller gave that the rest decides must agree with it."""
        webhooks = call.services.webhooks
        kind = EventType(call.body["type"])
        account_id = call.body.get("account_id") or f"acc_{call.services.config.default_subject}"
        overrides = call.body.get("data") or {}
        key = SUBJECTS[kind]
        found = overrides.get(key)
        given: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        try:
            sample = webhooks.sample_data(kind, CHOICES[kind](given))
        except ApiError as exc:
            if exc.field is None:
                raise
            raise ApiError(exc.code, f"data.{key}.{exc.message}" if exc.message.startswith(f"{exc.field}:")
                           else exc.message, field=f"data.{key}.{exc.field}") from None
        event = webhooks.build(kind, account_id, merge(sample, overrides))
        payloads[kind].check(event.payload)
        for name, value in given.items():
            if not _same(value, sample[key].get(name)):
                raise ApiError(ErrorCode.INVALID_REQUEST,
                               f"data.{key}.{name}: {value!r} contradicts the rest of the {key}, which makes it "
                               f"{sample[key].get(name)!r}", field=f"data.{key}.{name}")
        return _status(render.webhook_event(webhooks.publish(event)), 202)

    return bp


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; any other value (lists included) replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def _status(body: dict[str, Any], status: int) -> ResponseReturnValue:
    response = jsonify(body)
    response.status_code = status
    return response


def _same(given: Any, built: Any) -> bool:
    """The caller's value and the sample's agree: instants as instants, numbers as numbers, objects on the keys
    the caller gave."""
    if isinstance(given, Mapping) and isinstance(built, Mapping):
        return all(_same(value, built.get(name)) for name, value in given.items())
    if isinstance(given, list) and isinstance(built, list):
        return len(given) == len(built) and all(_same(a, b) for a, b in zip(given, built, strict=True))
    if isinstance(given, str) and isinstance(built, str) and given != built:
        return _instant(given) is not None and _instant(given) == _instant(built)
    if _number(given) and _number(built):
        return Decimal(str(given)) == Decimal(str(built))
    return bool(given == built)


# -- the caller's data, read as choices of a sample; a value of the wrong type is left to the schema check ----------

def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _decimal(value: Any, *, positive: bool = True) -> Decimal | None:
    if not _number(value) or not math.isfinite(value):
        return None
    found = Decimal(str(value))
    return found if found > 0 or not positive else None


def _instant(value: Any) -> datetime | None:
    """An RFC 3339 date-time inside the clock's range, or None."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None and 1970 <= found.astimezone(UTC).year < LATEST_READING.year else None


def _enum(kind: type[E], value: Any) -> E | None:
    try:
        return kind(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _fills(value: Any) -> tuple[Fill, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    fills = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        quantity, price, at = _positive_int(item.get("quantity")), _decimal(item.get("price")), \
            _instant(item.get("timestamp"))
        if quantity is None or price is None or at is None:
            return None
        fills.append(Fill(quantity, price, at))
    return tuple(fills)


def _order_choices(given: Mapping[str, Any]) -> OrderChoices:
    quantity = _positive_int(given.get("quantity"))
    return OrderChoices(
        order_id=_text(given.get("id")), client_order_id=_text(given.get("client_order_id")),
        symbol=_text(given.get("symbol")), type=_enum(OrderType, given.get("type")),
        side=_enum(OrderSide, given.get("side")),
        quantity=quantity if quantity is not None else _positive_int(given.get("filled_quantity")),
        limit_price=_decimal(given.get("price")), stop_price=_decimal(given.get("stop_price")),
        time_in_force=_enum(TimeInForce, given.get("time_in_force")), strategy=_enum(Strategy, given.get("strategy")),
        fills=_fills(given.get("fills")), fill_price=_decimal(given.get("average_fill_price")),
        created_at=_instant(given.get("created_at")), filled_at=_instant(given.get("filled_at")),
    )


def _position_choices(given: Mapping[str, Any]) -> PositionChoices:
    return PositionChoices(
        symbol=_text(given.get("symbol")), quantity_closed=_positive_int(given.get("quantity_closed")),
        average_entry_price=_decimal(given.get("average_entry_price")), exit_price=_decimal(given.get("exit_price")),
        opened_at=_instant(given.get("opened_at")), closed_at=_instant(given.get("closed_at")),
    )


def _alert_choices(given: Mapping[str, Any]) -> AlertChoices:
    return AlertChoices(
        alert_id=_text(given.get("id")), kind=_enum(AlertKind, given.get("kind")), symbol=_text(given.get("symbol")),
        message=_text(given.get("message")),
        threshold_percent=_decimal(given.get("threshold_percent")),
        observed_percent=_decimal(given.get("observed_percent"), positive=False),
    )


CHOICES: dict[EventType, Callable[[Mapping[str, Any]], Choices]] = {
    EventType.ORDER_FILLED: _order_choices, EventType.POSITION_CLOSED: _position_choices,
    EventType.ALERT_TRIGGERED: _alert_choices,
}
