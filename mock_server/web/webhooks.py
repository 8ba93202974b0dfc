"""The /_mock webhook control plane: endpoints, the delivery log, redelivery, and forced events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.webhooks.dispatcher import EventStatus
from mock_server.domain.webhooks.events import EventType
from mock_server.spec.validation import SchemaValidator
from mock_server.web import render
from mock_server.web.routing import Api, Call

SCHEMAS = {EventType.ORDER_FILLED: "OrderFilledEvent", EventType.POSITION_CLOSED: "PositionClosedEvent",
           EventType.ALERT_TRIGGERED: "AlertTriggeredEvent"}
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
        """A made-up subject, merged with the caller's ``data``, checked against the event's schema, then sent."""
        webhooks = call.services.webhooks
        kind = EventType(call.body["type"])
        account_id = call.body.get("account_id") or f"acc_{call.services.config.default_subject}"
        overrides = call.body.get("data") or {}
        subject = overrides.get(SUBJECTS[kind])
        symbol = subject.get("symbol") if isinstance(subject, dict) else None
        try:
            sample = webhooks.sample_data(kind, symbol if isinstance(symbol, str) else None)
        except ApiError as exc:
            if exc.code is not ErrorCode.INVALID_SYMBOL:
                raise
            raise ApiError(exc.code, exc.message, field=f"data.{SUBJECTS[kind]}.symbol") from None
        event = webhooks.build(kind, account_id, merge(sample, overrides))
        payloads[kind].check(event.payload)
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
