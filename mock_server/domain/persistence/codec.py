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
from typing import Any

from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.oauth.server import Grant
from mock_server.domain.trading.models import Fill, OrderSide, OrderStatus, OrderType, Strategy, TimeInForce
from mock_server.domain.trading.state import OrderState, PositionState
from mock_server.domain.webhooks.alerts import AlertKey, AlertKind
from mock_server.domain.webhooks.dispatcher import Attempt, DeliveryStatus, StoredDelivery
from mock_server.domain.webhooks.endpoints import Endpoint, EndpointSource
from mock_server.domain.webhooks.events import EventType


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


class OrderDecoder:
    """Orders back from their JSON, for a restore that may read millions (its inner loop).

    Enum members come from dicts (an enum call costs several times more), and an instant or amount text met
    again is parsed once and its object shared, as the live objects written out shared them: a filled order's
    created, updated and filled times are one instant, neighbouring orders share prices. The cache is dropped
    every ``CACHE_TEXTS`` texts, so it stays small. ``loads`` is the JSON parser (the composition root may hand
    in a faster one than the standard library's).
    """

    CACHE_TEXTS = 4096

    def __init__(self, loads: Callable[[str], Any] = json.loads) -> None:
        self._loads = loads
        self._instants: dict[str, datetime] = {}
        self._amounts: dict[str, Decimal] = {}

    def __call__(self, text: str) -> OrderState:
        data = self._loads(text)
        if len(self._instants) + len(self._amounts) > self.CACHE_TEXTS:
            self._instants.clear()
            self._amounts.clear()
        at, money, get = self._at, self._money, data.get
        limit, stop, expires, updated = get("limit_price"), get("stop_price"), get("expires_at"), get("updated_at")
        filled, cancelled, expired = get("filled_at"), get("cancelled_at"), get("expired_at")
        return OrderState(
            id=data["id"], client_order_id=get("client_order_id"), symbol=data["symbol"],
            type=_ORDER_TYPES[data["type"]], side=_SIDES[data["side"]], quantity=int(data["quantity"]),
            limit_price=None if limit is None else money(limit), stop_price=None if stop is None else money(stop),
            time_in_force=_TIMES_IN_FORCE[data["time_in_force"]], strategy=_STRATEGIES[data["strategy"]],
            created_at=at(data["created_at"]), reserve_price=money(data["reserve_price"]),
            last_step=int(data["last_step"]), expires_at=None if expires is None else at(expires),
            status=_STATUSES[data["status"]], fills=[Fill(int(q), money(p), at(t)) for q, p, t in get("fills", [])],
            filled_quantity=int(get("filled_quantity", 0)), filled_value=money(get("filled_value", "0.00")),
            triggered=bool(get("triggered", False)), pinned=bool(get("pinned", False)),
            reject_reason=get("reject_reason"), updated_at=None if updated is None else at(updated),
            filled_at=None if filled is None else at(filled), cancelled_at=None if cancelled is None else at(cancelled),
            expired_at=None if expired is None else at(expired),
        )

    def _at(self, text: str) -> datetime:
        found = self._instants.get(text)
        if found is None:
            found = self._instants[text] = datetime.fromisoformat(text)
        return found

    def _money(self, text: str) -> Decimal:
        found = self._amounts.get(text)
        if found is None:
            found = self._amounts[text] = amount(text)
        return found


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
