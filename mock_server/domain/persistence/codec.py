"""Domain records ⇄ JSON text for the state file.

Exact, not pretty: money and prices are Decimal strings (``"150.4975"`` stays that, never a binary float), instants
are ISO 8601 with their microseconds and offset, enums are their values. Each record is one JSON object so a
column never needs migrating when a field is added: a loader reads missing keys as their defaults.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.oauth.server import Grant
from mock_server.domain.trading.models import Fill, OrderSide, OrderStatus, OrderType, Strategy, TimeInForce
from mock_server.domain.trading.state import OrderState, PositionState
from mock_server.domain.webhooks.alerts import AlertKey, AlertKind
from mock_server.domain.webhooks.dispatcher import Attempt, DeliveryStatus, StoredDelivery
from mock_server.domain.webhooks.endpoints import Endpoint, EndpointSource
from mock_server.domain.webhooks.events import EventType

T = TypeVar("T")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def instant(moment: datetime) -> str:
    return moment.isoformat()


_TEN_THOUSANDTH = Decimal("0.0001")


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def amount(text: str) -> Decimal:
    """A stored amount. NaN, Infinity or 1e999 (a row edited by hand) is refused here, when the file is read, not
    met by a request later: an amount must round to a ten-thousandth in the emulator's arithmetic, as all do."""
    value = Decimal(text)
    try:
        rounds = value.is_finite() and value.quantize(_TEN_THOUSANDTH).is_finite()
    except InvalidOperation:  # too many digits to round so
        rounds = False
    if not rounds:
        raise ValueError(f"{text!r} is not an amount")
    return value


# -- trading ------------------------------------------------------------------------------------------------------

def dump_order(order: OrderState) -> str:
    return dumps({
        "id": order.id, "client_order_id": order.client_order_id, "symbol": order.symbol, "type": order.type,
        "side": order.side, "quantity": order.quantity, "limit_price": _money(order.limit_price),
        "stop_price": _money(order.stop_price), "time_in_force": order.time_in_force, "strategy": order.strategy,
        "created_at": instant(order.created_at), "reserve_price": str(order.reserve_price),
        "last_step": order.last_step, "expires_at": _instant_or_none(order.expires_at), "status": order.status,
        "fills": [[fill.quantity, str(fill.price), instant(fill.timestamp)] for fill in order.fills],
        "filled_quantity": order.filled_quantity, "filled_value": str(order.filled_value),
        "triggered": order.triggered, "pinned": order.pinned, "reject_reason": order.reject_reason,
        "updated_at": _instant_or_none(order.updated_at), "filled_at": _instant_or_none(order.filled_at),
        "cancelled_at": _instant_or_none(order.cancelled_at), "expired_at": _instant_or_none(order.expired_at),
    })


def load_order(text: str) -> OrderState:
    """One order back from its JSON. A state file can hold millions, so this is the start-up's inner loop: enum
    members are looked up in a dict (an enum call costs several times more), and instants and prices that
    repeat (a filled order's created, updated and filled times; its price and reserve) are parsed once and
    shared, as the live objects they were written from shared them."""
    data = json.loads(text)
    instants: dict[str, datetime] = {}
    amounts: dict[str, Decimal] = {}

    def at(value: str) -> datetime:
        found = instants.get(value)
        if found is None:
            found = instants[value] = datetime.fromisoformat(value)
        return found

    def money(value: str) -> Decimal:
        found = amounts.get(value)
        if found is None:
            found = amounts[value] = amount(value)
        return found

    return OrderState(
        id=data["id"], client_order_id=data.get("client_order_id"), symbol=data["symbol"],
        type=_ORDER_TYPES[data["type"]], side=_SIDES[data["side"]], quantity=int(data["quantity"]),
        limit_price=_maybe(money, data.get("limit_price")), stop_price=_maybe(money, data.get("stop_price")),
        time_in_force=_TIMES_IN_FORCE[data["time_in_force"]], strategy=_STRATEGIES[data["strategy"]],
        created_at=at(data["created_at"]), reserve_price=money(data["reserve_price"]),
        last_step=int(data["last_step"]), expires_at=_maybe(at, data.get("expires_at")),
        status=_STATUSES[data["status"]], fills=[Fill(int(q), money(p), at(t)) for q, p, t in data.get("fills", [])],
        filled_quantity=int(data.get("filled_quantity", 0)), filled_value=money(data.get("filled_value", "0.00")),
        triggered=bool(data.get("triggered", False)), pinned=bool(data.get("pinned", False)),
        reject_reason=data.get("reject_reason"), updated_at=_maybe(at, data.get("updated_at")),
        filled_at=_maybe(at, data.get("filled_at")), cancelled_at=_maybe(at, data.get("cancelled_at")),
        expired_at=_maybe(at, data.get("expired_at")),
    )


def _maybe(parse: Callable[[str], T], value: str | None) -> T | None:
    return None if value is None else parse(value)


_ORDER_TYPES = {member.value: member for member in OrderType}
_SIDES = {member.value: member for member in OrderSide}
_TIMES_IN_FORCE = {member.value: member for member in TimeInForce}
_STRATEGIES = {member.value: member for member in Strategy}
_STATUSES = {member.value: member for member in OrderStatus}


def dump_positions(positions: dict[str, PositionState]) -> str:
    return dumps([{
        "symbol": p.symbol, "opened_at": instant(p.opened_at), "updated_at": instant(p.updated_at),
        "quantity": p.quantity, "cost": str(p.cost), "bought_quantity": p.bought_quantity,
        "bought_value": str(p.bought_value), "sold_quantity": p.sold_quantity, "sold_value": str(p.sold_value),
        "realized_pl": str(p.realized_pl),
    } for p in positions.values()])


def load_positions(text: str) -> dict[str, PositionState]:
    positions = {}
    for data in json.loads(text):
        position = PositionState(
            symbol=data["symbol"], opened_at=datetime.fromisoformat(data["opened_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]), quantity=int(data["quantity"]),
            cost=amount(data["cost"]), bought_quantity=int(data["bought_quantity"]),
            bought_value=amount(data["bought_value"]), sold_quantity=int(data["sold_quantity"]),
            sold_value=amount(data["sold_value"]), realized_pl=amount(data["realized_pl"]),
        )
        positions[position.symbol] = position
    return positions


def _instant_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else instant(moment)


# -- OAuth --------------------------------------------------------------------------------------------------------

def dump_grant(grant: Grant) -> str:
    return dumps({"client_id": grant.client_id, "subject": grant.subject, "scopes": list(grant.scopes),
                  "refresh_token": grant.refresh_token, "revoked": grant.revoked,
                  "retired_refresh_tokens": sorted(grant.retired_refresh_tokens)})


def load_grant(text: str) -> Grant:
    data = json.loads(text)
    return Grant(client_id=data["client_id"], subject=data["subject"], scopes=tuple(data["scopes"]),
                 refresh_token=data["refresh_token"], revoked=bool(data.get("revoked", False)),
                 retired_refresh_tokens=set(data.get("retired_refresh_tokens", ())))


def dump_client(client: OAuthClient) -> str:
    return dumps({"client_id": client.client_id, "client_secret": client.client_secret,
                  "redirect_uris": list(client.redirect_uris), "scopes": list(client.scopes),
                  "allow_loopback_redirects": client.allow_loopback_redirects})


def load_client(text: str) -> OAuthClient:
    data = json.loads(text)
    return OAuthClient(data["client_id"], data["client_secret"], tuple(data.get("redirect_uris", ())),
                       tuple(data["scopes"]), bool(data.get("allow_loopback_redirects", False)))


# -- webhooks -----------------------------------------------------------------------------------------------------

def dump_endpoint(endpoint: Endpoint) -> str:
    return dumps({"id": endpoint.id, "url": endpoint.url, "secret": endpoint.secret,
                  "events": None if endpoint.events is None else sorted(endpoint.events),
                  "created_at": instant(endpoint.created_at), "source": endpoint.source})


def load_endpoint(text: str) -> Endpoint:
    data = json.loads(text)
    events = data.get("events")
    return Endpoint(id=data["id"], url=data["url"], secret=data["secret"],
                    events=None if events is None else frozenset(EventType(e) for e in events),
                    created_at=datetime.fromisoformat(data["created_at"]), source=EndpointSource(data["source"]))


def dump_delivery(delivery: StoredDelivery) -> str:
    return dumps({
        "endpoint_id": delivery.endpoint_id, "url": delivery.url, "status": delivery.status,
        "attempts": [{"number": a.number, "at": instant(a.at), "status_code": a.status_code,
                      "latency_ms": a.latency_ms, "error": a.error} for a in delivery.attempts],
        "failures": delivery.failures, "next_at": instant(delivery.next_at), "error": delivery.error,
    })


def load_delivery(text: str) -> StoredDelivery:
    data = json.loads(text)
    attempts = tuple(Attempt(int(a["number"]), datetime.fromisoformat(a["at"]), a.get("status_code"),
                             int(a.get("latency_ms", 0)), a.get("error")) for a in data.get("attempts", ()))
    return StoredDelivery(endpoint_id=data["endpoint_id"], url=data["url"], status=DeliveryStatus(data["status"]),
                          attempts=attempts, failures=int(data.get("failures", 0)),
                          next_at=datetime.fromisoformat(data["next_at"]), error=data.get("error"))


def dump_alerts(active: frozenset[AlertKey]) -> str:
    return dumps(sorted([account, symbol, instant(opened), str(kind)] for account, symbol, opened, kind in active))


def load_alerts(text: str) -> frozenset[AlertKey]:
    return frozenset((account, symbol, datetime.fromisoformat(opened), AlertKind(kind))
                     for account, symbol, opened, kind in json.loads(text))
