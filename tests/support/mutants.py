"""Deliberately wrong emulators: each breaks one contract, and names the contract test meant to catch it.

A mutant is the real emulator plus one mutation applied after create_app: a rewrite of some responses, a header
or query parameter changed on the wire, a domain rule switched off, or a stream/webhook function replaced. If
its killer passes against it, the suite has a blind spot; if it fails there for some other reason than the check
it names, the suite caught it by luck.

Each mutant names its killer twice: with the control plane (`kill`), and behind the sandbox face (`face`, no
`/_mock`, the default rate limit), where only the public API can see it. `hidden` says why a public-API-only run
cannot see a mutant at all. `FaceSetup` is how the emulator behind the face must be configured for the killer to
have something to see (a closed market, short-lived tokens, a webhook receiver).

Each mutant runs in a process of its own, so a mutation can never leak into another run: `python -m
tests.support.mutants NAME [--face]` prints its URL on the first line and serves until terminated; with `--check
TEST...` it runs those contract tests against itself instead. The self-test's `--worker` processes import all
that once and fork a child per run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import importlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from flask import Flask, Response, request

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.simulator import Quote
from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.stream.connection import Connection
from mock_server.domain.stream.messages import Heartbeat
from mock_server.domain.trading import engine as engine_module
from mock_server.domain.trading.account import AccountState
from mock_server.domain.trading.models import OrderRequest, OrderType
from mock_server.domain.webhooks import signing
from mock_server.domain.webhooks.dispatcher import Dispatcher
from mock_server.domain.webhooks.events import EventType, WebhookEvent
from mock_server.web import stream as stream_web

Body = Any


@dataclass(frozen=True)
class Kill:
    """The contract test meant to kill a mutant, and the check its failure must name."""

    test: str  # a pytest node id, relative to the repository
    check: str  # text the failure carries: the broken check's name as the test words it


@dataclass(frozen=True)
class FaceSetup:
    """How the emulator behind the face is configured for a mutant's public-API killer."""

    market: str = "open"
    access_token_ttl: int | None = None  # seconds; None: the default hour
    webhooks: bool = False  # a receiver registered at start, named to the suite with --contract-webhook-url
    destructive: bool = False  # the killer is gated by --contract-destructive on a real target


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    apply: Callable[[Flask], None]
    kill: Kill  # with the control plane
    face: Kill | None = None  # behind the sandbox face; None: the same as `kill`
    hidden: str = ""  # why a public-API-only run cannot see it (then it is not run behind the face)
    setup: FaceSetup = FaceSetup()

    @property
    def face_kill(self) -> Kill | None:
        return None if self.hidden else (self.face or self.kill)


def _operation() -> str:
    return request.url_rule.endpoint.rsplit(".", 1)[-1] if request.url_rule else ""


def rewrite_json(operations: Iterable[str], change: Callable[[Body, Response], Body | None],
                 statuses: Iterable[int] | None = None) -> Callable[[Flask], None]:
    """Rewrite the JSON body of some operations' responses (None from `change` keeps the body)."""
    wanted = set(operations)
    status_filter = set(statuses) if statuses is not None else None

    def apply(app: Flask) -> None:
        @app.after_request
        def mutate(response: Response) -> Response:
            if (wanted and _operation() not in wanted) or not response.is_json:
                return response
            if status_filter is not None and response.status_code not in status_filter:
                return response
            body = response.get_json()
            changed = change(body, response)
            if changed is not None:
                response.set_data(json.dumps(changed))
            return response

    return apply


def on_wire(change: Callable[[str, int, list[tuple[str, str]]], tuple[int, list[tuple[str, str]]]]
            ) -> Callable[[Flask], None]:
    """Change status line or headers after everything else (WSGI middleware)."""

    def apply(app: Flask) -> None:
        inner = app.wsgi_app

        def middleware(environ: dict, start_response: Callable) -> Iterable[bytes]:
            def patched(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                code, new_headers = change(environ["PATH_INFO"], int(status.split()[0]), list(headers))
                reason = status.split(" ", 1)[1] if code == int(status.split()[0]) else "Mutated"
                return start_response(f"{code} {reason}", new_headers, exc_info)
            return inner(environ, patched)

        app.wsgi_app = middleware  # type: ignore[method-assign]

    return apply


def patch(path: Callable[[Flask], Any], attribute: str, replacement: Callable[[Any], Any]) -> Callable[[Flask], None]:
    """Replace a method of a domain service of this app only (replacement receives the original bound method)."""

    def apply(app: Flask) -> None:
        owner = path(app)
        original = getattr(owner, attribute)
        setattr(owner, attribute, replacement(original))

    return apply


def services(app: Flask) -> Any:
    return app.extensions["tradefence"]


def _drop(field: str) -> Callable[[Body, Response], Body]:
    def change(body: Body, _: Response) -> Body:
        body.pop(field, None)
        return body
    return change


def _set(field: str, value: Callable[[Any], Any]) -> Callable[[Body, Response], Body]:
    def change(body: Body, _: Response) -> Body:
        if field in body:
            body[field] = value(body[field])
        return body
    return change


def _error_code(old: int, new: int) -> Callable[[Body, Response], Body]:
    def change(body: Body, _: Response) -> Body:
        if isinstance(body.get("error"), dict) and body["error"].get("code") == old:
            body["error"]["code"] = new
        return body
    return change


def _status(operation: str, old: int, new: int) -> Callable[[Flask], None]:
    def apply(app: Flask) -> None:
        @app.after_request
        def mutate(response: Response) -> Response:
            if _operation() == operation and response.status_code == old:
                response.status_code = new
            return response
    return apply


def _strip_header(name: str, only_status: int | None = None) -> Callable[[Flask], None]:
    def change(_: str, status: int, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
        if only_status is None or status == only_status:
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        return status, headers
    return on_wire(change)


def _cancel_does_not_stick(body: Body, _: Response) -> Body:
    if request.method == "GET" and body.get("status") == "CANCELLED":
        body["status"] = "OPEN"
        body["cancelled_at"] = None
        body["remaining_quantity"] = body["quantity"] - body["filled_quantity"]  # consistent, but not cancelled
    return body


def _refresh_not_rotated(body: Body, _: Response) -> Body | None:
    if request.form.get("grant_type") == "refresh_token" and "refresh_token" in body:
        body["refresh_token"] = request.form["refresh_token"]
        return body
    return None


def _flat_errors(body: Body, _: Response) -> Body | None:
    return body["error"] if isinstance(body.get("error"), dict) else None


def _fills_double(body: Body, _: Response) -> Body:
    for fill in body.get("fills", []):
        fill["quantity"] *= 2
    return body


def _batch_drops_last(body: Body, _: Response) -> Body:
    if len(body["results"]) > 1:
        body["results"].pop()
    return body


def _never_used(original: Callable[..., Any]) -> Callable[..., Any]:
    def exchange(client: Any, form: Any) -> Any:
        answer = original(client, form)
        server = _never_used.server  # type: ignore[attr-defined]
        code = server._codes.get(form.get("code"))
        if code is not None:
            code.used = False
        return answer
    return exchange


def _codes_reusable(app: Flask) -> None:
    server = services(app).oauth
    _never_used.server = server  # type: ignore[attr-defined]
    server._exchange_code = _never_used(server._exchange_code)


def _market_always_open(app: Flask) -> None:
    engine = services(app).engine
    engine._require_open = lambda symbol, now: None


def _malformed_tick(_: Flask) -> None:
    """Quotes lose their sequence number and carry the bid as text."""
    original = stream_web.render

    def render(item: Any, texts: Any) -> str:
        body = json.loads(original(item, texts))
        if body["type"] == "quote":
            body.pop("seq")
            body["bid"] = str(body["bid"])
        return json.dumps(body)

    stream_web.render = render


def _stream_wrong_symbol_code(_: Flask) -> None:
    """Unknown symbols on the stream reported as a generic invalid message (4000) instead of 1004."""
    original = stream_web.render

    def render(item: Any, texts: Any) -> str:
        body = json.loads(original(item, texts))
        if body["type"] == "error" and body["code"] == 1004:
            body["code"] = 4000
        return json.dumps(body)

    stream_web.render = render


def _bad_signature(_: Flask) -> None:
    """Deliveries signed with some other key."""
    original = signing.headers

    def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return original("whsec_" + "B" * 43 + "=", message_id, timestamp, body)

    signing.headers = headers


def _tokens_never_expire(app: Flask) -> None:
    tokens = services(app).oauth._tokens
    origin = tokens._clock.now()
    tokens._clock = type("Stopped", (), {"now": staticmethod(lambda: origin)})()


def _open_redirect(app: Flask) -> None:
    server = services(app).oauth
    lax = type("Lax", (OAuthClient,), {"accepts_redirect": lambda self, uri: True})
    for client_id, client in list(server._clients.items()):
        server._clients[client_id] = lax(client.client_id, client.client_secret, client.redirect_uris,
                                         client.scopes, client.allow_loopback_redirects)


def _scope_ignored(original: Callable[..., Any]) -> Callable[..., Any]:
    def verify(token: str) -> Any:
        principal = original(token)
        return type(principal)(principal.subject, principal.client_id, frozenset({"trading:read", "trading:write"}),
                               principal.grant_id, principal.token_id)
    return verify


def _no_validation(app: Flask) -> None:
    api = app.extensions["tradefence.api"]
    validator = api._validators["createOrder"]
    validator._body = None


def _method_not_refused(_: str, status: int, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    if status == 405:
        return 200, [(k, v) for k, v in headers if k.lower() != "allow"]
    return status, headers


def _json_as_text(_: str, status: int, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    return status, [(k, "text/plain" if k.lower() == "content-type" and v == "application/json" else v)
                    for k, v in headers]


def _ignore_query(parameter: str) -> Callable[[Flask], None]:
    """GET /v1/orders answers as if `parameter` had not been sent."""

    def apply(app: Flask) -> None:
        inner = app.wsgi_app

        def middleware(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ["PATH_INFO"] == "/v1/orders" and environ["REQUEST_METHOD"] == "GET":
                kept = [(k, v) for k, v in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
                        if k != parameter]
                environ = {**environ, "QUERY_STRING": urlencode(kept)}
            return inner(environ, start_response)

        app.wsgi_app = middleware  # type: ignore[method-assign]

    return apply


def _no_more_pages(body: Body, _: Response) -> Body:
    return {**body, "has_more": False, "next_cursor": None}


def _oldest_first(body: Body, _: Response) -> Body:
    return {**body, "data": body["data"][::-1]}


def _fill_prices_inflated(body: Body, _: Response) -> Body:
    for fill in body.get("fills", []):
        fill["price"] = round(fill["price"] * 1.5, 2)
    if body.get("fills"):  # consistent with itself: only an earlier read of the order can tell
        body["average_fill_price"] = (sum(f["price"] * f["quantity"] for f in body["fills"])
                                      / sum(f["quantity"] for f in body["fills"]))
    return body


def _token_dies_after(seconds: int) -> Callable[[Flask], None]:
    """Access tokens refused `seconds` after they were issued, whatever their `exp` and `expires_in` say."""

    def apply(app: Flask) -> None:
        oauth, clock = services(app).oauth, services(app).clock
        original = oauth.verify

        def verify(token: str) -> Any:
            principal = original(token)
            issued = jwt.decode(token, options={"verify_signature": False})["iat"]
            if clock.now().timestamp() - issued > seconds:
                raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The access token expired")
            return principal

        oauth.verify = verify

    return apply


def _final_orders_cancellable(original: Callable[..., Any]) -> Callable[..., Any]:
    """DELETE of a final order answers 200 with the order as it is."""

    def cancel(account: Any, order_id: str) -> Any:
        order = account.state.orders.get(order_id)
        if order is not None and order.status.is_final:
            return order
        return original(account, order_id)

    return cancel


def _crash_on_many_symbols(original: Callable[..., Any]) -> Callable[..., Any]:
    def subscribe(connection: Any, symbols: list[str]) -> None:
        if len(symbols) >= 200:
            raise RuntimeError("too many symbols")
        original(connection, symbols)

    return subscribe


def _unsubscribe_ignored(app: Flask) -> None:
    """Unsubscribe acknowledged with the unchanged list: nothing is removed."""
    hub = services(app).stream
    hub.unsubscribe = lambda connection, symbols: hub.subscribe(connection, [])


def _alerts_without_kind(_: Flask) -> None:
    """alert.triggered deliveries lose their required `kind` on the way out (after the control plane checked the
    event it forced), signed as sent."""
    original = Dispatcher._send

    def send(self: Dispatcher, delivery: Any, at: Any) -> Any:
        event = delivery.event
        if event.type is EventType.ALERT_TRIGGERED:
            payload = json.loads(event.body)
            payload["data"]["alert"].pop("kind", None)
            body = json.dumps(payload).encode()
            delivery = dataclasses.replace(delivery, event=WebhookEvent(event.id, event.type, event.created_at,
                                                                        event.account_id, body))
        return original(self, delivery, at)

    Dispatcher._send = send  # type: ignore[method-assign]


def _no_heartbeats(_: Flask) -> None:
    original = Connection.push

    def push(self: Connection, message: Any) -> bool:
        return True if isinstance(message, Heartbeat) else original(self, message)

    Connection.push = push  # type: ignore[method-assign]


def _stops_reserve_nothing(_: Flask) -> None:
    original = engine_module._reserve_price

    def reserve_price(request: OrderRequest, quote: Quote) -> Decimal:
        return Decimal(0) if request.type is OrderType.STOP else original(request, quote)

    engine_module._reserve_price = reserve_price


def _keys_never_replay(_: Callable[..., Any]) -> Callable[..., Any]:
    """Idempotency-Key accepted but never remembered: a retry places the order again."""
    return lambda scope, key, fingerprint: None


def _remaining_stuck(_: str, status: int, headers: list[tuple[str, str]]) -> tuple[int, list[tuple[str, str]]]:
    limit = next((v for k, v in headers if k == "X-RateLimit-Limit"), None)
    return status, [(k, limit if k == "X-RateLimit-Remaining" and limit is not None else v) for k, v in headers]


def _batch_scope_ignored(original: Callable[..., Any]) -> Callable[..., Any]:
    def verify(token: str) -> Any:
        principal = original(token)
        if request.path.endswith("/batch"):
            return type(principal)(principal.subject, principal.client_id, principal.scopes | {"trading:write"},
                                   principal.grant_id, principal.token_id)
        return principal
    return verify


def _funds_unchecked(_: Flask) -> None:
    AccountState.buying_power = lambda self: Decimal("1e12")  # type: ignore[method-assign]


def _short_selling(_: Flask) -> None:
    AccountState.available_shares = lambda self, symbol: 10**9  # type: ignore[method-assign]


ORDER_OPS = ("createOrder", "getOrder", "cancelOrder")

MODEL = "contracts/test_account_model.py::test_the_account_agrees_with_the_run_s_own_fills"
LISTINGS = "contracts/test_listings.py::test_every_walk_lists_exactly_the_filtered_set"
TOUR = "contracts/test_tour.py::test_every_v1_operation_answers_as_the_spec_says"
BATCH = "contracts/test_properties.py::test_a_batch_answers_each_operation_in_order"
CODES = "contracts/test_error_codes.py::"
OAUTH = "contracts/test_oauth.py::"
LIFETIME = "contracts/test_tokens_over_time.py::"
HEADERS = "contracts/test_headers.py::"
STREAM = "contracts/test_stream.py::"
WEBHOOKS = "contracts/test_webhooks.py::test_delivered_events_are_signed_and_match_the_spec"
READ_ONLY = Kill(LIFETIME + "test_a_read_only_token_gets_1005_on_every_write", "1005 on every write")
SHORT_TOKENS = FaceSetup(access_token_ttl=4)

MUTANTS: tuple[Mutant, ...] = (
    # Shapes, statuses and headers: the spec's schemas see them from anywhere.
    Mutant("order-drops-status", "a required field (status) missing from orders",
           rewrite_json(ORDER_OPS, _drop("status"), statuses=[200, 201]), Kill(TOUR, "response conformance")),
    Mutant("order-quantity-string", "a wrong type: quantity as a string",
           rewrite_json(ORDER_OPS, _set("quantity", str), statuses=[200, 201]), Kill(TOUR, "response conformance")),
    Mutant("create-order-200", "a wrong status: 200 instead of 201 for a new order", _status("createOrder", 201, 200),
           Kill(TOUR, "response conformance")),
    Mutant("cash-as-string", "a wrong type: account cash as a string",
           rewrite_json(("getAccount",), _set("cash", lambda v: f"{v:.2f}"), statuses=[200]),
           Kill(TOUR, "response conformance")),
    Mutant("flat-error-envelope", "errors without the {error: ...} envelope", rewrite_json((), _flat_errors),
           Kill(TOUR, "response conformance")),
    Mutant("no-request-id", "responses without X-Request-Id", _strip_header("X-Request-Id"),
           Kill(TOUR, "X-Request-Id")),
    Mutant("json-as-text", "JSON bodies labelled text/plain", on_wire(_json_as_text),
           Kill(TOUR, "response conformance")),
    Mutant("no-bearer-challenge", "401 without WWW-Authenticate", _strip_header("WWW-Authenticate", 401),
           Kill(CODES + "test_1001_bad_token[not-a-jwt]", "1001 WWW-Authenticate")),
    Mutant("no-body-validation", "invalid order bodies reach the engine", _no_validation,
           Kill(CODES + "test_4000_an_invalid_order_names_its_field[body0-side]", "error 4000 status")),
    Mutant("wrong-method-200", "unsupported methods answered 200", on_wire(_method_not_refused),
           Kill("contracts/test_tour.py::test_unlisted_methods_get_405_with_allow", "unlisted methods get 405")),
    Mutant("no-ratelimit-remaining", "X-RateLimit-Remaining missing from /v1 answers",
           _strip_header("X-RateLimit-Remaining"), Kill(TOUR, "X-RateLimit-Remaining")),
    Mutant("ratelimit-remaining-stuck", "X-RateLimit-Remaining that never falls", on_wire(_remaining_stuck),
           Kill(HEADERS + "test_remaining_falls_with_use", "Remaining falls with use")),
    Mutant("no-retry-after", "429 without Retry-After", _strip_header("Retry-After", 429),
           Kill(CODES + "test_2001_burst_then_backoff_recovers", "2001 Retry-After"),
           setup=FaceSetup(destructive=True)),
    # Error codes, each provoked through the public API.
    Mutant("unknown-symbol-code-1005", "a wrong error code: 1005 for an unknown symbol",
           rewrite_json((), _error_code(1004, 1005)),
           Kill(CODES + "test_1004_unknown_symbol[POST-/orders-body0-createOrder]", "error 1004 code")),
    Mutant("market-never-closes", "orders accepted while the market is closed", _market_always_open,
           Kill(CODES + "test_1003_closed_market", "error 1003 status"), setup=FaceSetup(market="closed")),
    Mutant("funds-not-checked", "buys beyond buying power accepted", _funds_unchecked,
           Kill(CODES + "test_1002_beyond_buying_power", "error 1002 status")),
    Mutant("short-selling-allowed", "sells beyond the shares held accepted", _short_selling,
           Kill(CODES + "test_1006_sell_beyond_shares", "error 1006 status")),
    # Auth over time and scopes.
    Mutant("tokens-never-expire", "expired access tokens still accepted", _tokens_never_expire,
           Kill(CODES + "test_1001_expired_token", "error 1001 status"),
           face=Kill(LIFETIME + "test_a_token_past_expires_in_is_refused", "refused after expires_in"),
           setup=SHORT_TOKENS),
    Mutant("token-dies-after-5s", "access tokens refused 5 s after they were issued", _token_dies_after(5),
           Kill(LIFETIME + "test_the_token_works_until_expires_in", "works until expires_in")),
    Mutant("expires-in-overstated", "token answers that promise twice the life their tokens have",
           rewrite_json(("token",), _set("expires_in", lambda v: v * 2), statuses=[200]),
           Kill(LIFETIME + "test_exp_agrees_with_expires_in", "exp agrees with expires_in")),
    Mutant("scope-ignored", "a read-only token may trade",
           patch(lambda app: services(app).oauth, "verify", _scope_ignored),
           Kill(CODES + "test_1005_missing_scope", "error 1005 status"), face=READ_ONLY),
    Mutant("batch-scope-ignored", "a read-only token may send batches",
           patch(lambda app: services(app).oauth, "verify", _batch_scope_ignored), READ_ONLY),
    Mutant("refresh-not-rotated", "a refresh token that is not rotated",
           rewrite_json(("token",), _refresh_not_rotated, statuses=[200]),
           Kill(OAUTH + "test_refresh_rotates", "refresh rotation")),
    Mutant("codes-reusable", "authorization codes usable twice", _codes_reusable,
           Kill(OAUTH + "test_code_is_single_use", "RFC 6749 invalid_grant")),
    Mutant("open-redirect", "/authorize redirects to any URI", _open_redirect,
           Kill(OAUTH + "test_unregistered_redirect_never_redirects", "no open redirect")),
    # The account's meaning: the model-based test.
    Mutant("filled-exceeds-quantity", "fills that add up to more than the order",
           rewrite_json(ORDER_OPS, _fills_double, statuses=[200, 201]), Kill(MODEL, "fills sum to filled_quantity")),
    Mutant("cancel-does-not-stick", "a cancelled order reads back as OPEN",
           rewrite_json(("getOrder",), _cancel_does_not_stick, statuses=[200]),
           Kill(MODEL, "a final order stays final")),
    Mutant("cash-off-by-a-cent", "cash that moves without a fill",
           rewrite_json(("getAccount",), _set("cash", lambda v: round(v + 0.01, 2)), statuses=[200]),
           Kill(MODEL, "buying_power = cash - reserved_cash")),
    Mutant("final-order-cancellable", "DELETE of a filled order answers 200",
           patch(lambda app: services(app).engine, "_cancel", _final_orders_cancellable),
           Kill(MODEL, "a final order cannot be cancelled")),
    Mutant("realized-pl-sign-flipped", "realized P&L with its sign flipped",
           rewrite_json(("getAccount",), _set("realized_pl", lambda v: -v), statuses=[200]),
           Kill(MODEL, "realized P&L matches the fills")),
    Mutant("get-order-fill-price-1.5x", "getOrder reports fill prices 1.5 times the real ones",
           rewrite_json(("getOrder",), _fill_prices_inflated, statuses=[200]), Kill(MODEL, "fills never change")),
    Mutant("stops-reserve-nothing", "open STOP buys hold no cash back", _stops_reserve_nothing,
           Kill(MODEL, "reserved_cash is what open buys hold")),
    Mutant("idempotency-keys-ignored", "a retry with the same Idempotency-Key places a second order",
           patch(lambda app: services(app).idempotency, "begin", _keys_never_replay),
           Kill(MODEL, "Idempotency-Key replay")),
    Mutant("batch-drops-a-result", "a batch answering fewer results than operations",
           rewrite_json(("batch",), _batch_drops_last, statuses=[200]),
           Kill(BATCH, "one result per operation, in order")),
    # Lists.
    Mutant("cursor-ignored", "the pagination cursor ignored: the same page again",
           _ignore_query("cursor"), Kill(LISTINGS, "no order listed twice")),
    Mutant("has-more-always-false", "has_more always false", rewrite_json(("listOrders",), _no_more_pages),
           Kill(LISTINGS, "no gap")),
    Mutant("status-filter-ignored", "the status filter ignored", _ignore_query("status"),
           Kill(LISTINGS, "listed orders match the filter")),
    Mutant("symbol-filter-ignored", "the symbol filter ignored", _ignore_query("symbol"),
           Kill(LISTINGS, "listed orders match the filter")),
    Mutant("limit-ignored", "limit ignored: pages of the default size", _ignore_query("limit"),
           Kill(LISTINGS, "limit honoured")),
    Mutant("oldest-first", "pages listed oldest first", rewrite_json(("listOrders",), _oldest_first),
           Kill(LISTINGS, "newest first")),
    # The stream.
    Mutant("malformed-tick", "stream quotes without seq and with a text bid", _malformed_tick,
           Kill(STREAM + "test_subscribe_acknowledges_then_ticks_in_sequence", "breaks StreamServerMessage")),
    Mutant("stream-unknown-symbol-4000", "a wrong stream error code for unknown symbols", _stream_wrong_symbol_code,
           Kill(STREAM + "test_unknown_symbol_is_1004_and_the_connection_survives", "with code 1004")),
    Mutant("crash-on-200-symbols", "the stream connection dies on a 200-symbol subscribe",
           patch(lambda app: services(app).stream, "subscribe", _crash_on_many_symbols),
           Kill(STREAM + "test_the_symbol_limit_is_answered_and_the_connection_survives", "200 symbols")),
    Mutant("no-heartbeats", "an idle stream never hears a heartbeat", _no_heartbeats,
           Kill(STREAM + "test_heartbeats_come_within_their_interval", "heartbeats within their interval")),
    Mutant("unsubscribe-ignored", "unsubscribe acknowledged but nothing removed",
           _unsubscribe_ignored,
           Kill(STREAM + "test_unsubscribe_removes", "unsubscribe removes")),
    # Webhooks.
    Mutant("bad-webhook-signature", "webhooks signed with the wrong key", _bad_signature,
           Kill(WEBHOOKS + "[order.filled]", "signature does not verify"), setup=FaceSetup(webhooks=True)),
    Mutant("alert-without-kind", "alert.triggered events without their required kind", _alerts_without_kind,
           Kill(WEBHOOKS + "[alert.triggered]", "payload breaks AlertTriggeredEvent"),
           hidden="alert.triggered cannot be caused through the public API: a position must lose 5 % or a price "
                  "move 3 % while the run watches; only the control plane forces one"),
)


@contextlib.contextmanager
def serving(args: argparse.Namespace) -> Iterator[str]:
    """The mutant (or the plain emulator) on a free loopback port, behind the face if asked; its URL."""
    from mock_server.app import create_app
    from mock_server.config import Config
    from mock_server.domain.market.hours import MarketMode
    from mock_server.serving import serve

    config = Config(seed=99, market_mode=MarketMode(args.market), access_token_ttl=args.access_token_ttl,
                    webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    if not args.face:  # limits the suite never meets, as on an emulator whose control plane lifts them
        config = dataclasses.replace(config, rate_limit_capacity=100_000, rate_limit_per_second=100_000.0)
    app = create_app(config)
    if args.name != "none":
        next(m for m in MUTANTS if m.name == args.name).apply(app)
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(serve(app))
            if args.face:
                from tests.support.face import proxy

                url = stack.enter_context(proxy(url))
            yield url
    finally:
        services(app).close()


def check(url: str, args: argparse.Namespace) -> int:
    """Run the contract tests `args.check` against `url` in this process, as a user would: behind the face with
    the credentials a CI secret holds (a refresh token, got once through /authorize)."""
    import pytest

    options = [*args.check, f"--target={url}", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts=",
               "--assert=plain",  # no rewriting of every plugin module per run: the suite raises its own violations
               # The seed decides what is drawn, on CI as here (Hypothesis's own `ci` profile would ignore it).
               "--hypothesis-profile=default", f"--hypothesis-seed={args.hypothesis_seed}",
               f"--junitxml={args.junitxml}"]
    for name in [key for key in os.environ if key.startswith("TRADEFENCE_")]:
        del os.environ[name]
    if args.face:
        from tests.support.contract_run import login

        os.environ.update(login(url).environment())
        options.append(f"--contract-token-file={args.junitxml}.token")  # a refresh token rotates: keep the new one
        if args.destructive:
            options.append("--contract-destructive")
        if args.webhook_url:
            os.environ["TRADEFENCE_WEBHOOK_SECRET"] = args.webhook_secret
            options += [f"--contract-webhook-url={args.webhook_url}",
                        f"--contract-webhook-port={urlsplit(args.webhook_url).port}"]
    return int(pytest.main(options))


def main(argv: list[str]) -> int:
    """Serve one mutant (or `none`) until terminated, printing its URL first: with its control plane and limits
    the suite never meets, or `--face`: behind the sandbox face, as its `FaceSetup` says. With `--check`, run
    those contract tests against it instead, and exit with pytest's status."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.mutants")
    parser.add_argument("name", choices=["none", *(m.name for m in MUTANTS)])
    parser.add_argument("--face", action="store_true", help="behind the sandbox face: no /_mock, default limits")
    parser.add_argument("--market", default="open", choices=["open", "closed"])
    parser.add_argument("--access-token-ttl", type=int, default=3600)
    parser.add_argument("--webhooks", action="store_true", help="deliver to a receiver the suite starts")
    parser.add_argument("--destructive", action="store_true", help="run the checks gated on real targets")
    parser.add_argument("--check", nargs="+", metavar="TEST", default=[], help="contract tests to run against it")
    parser.add_argument("--junitxml", default="mutant.xml")
    parser.add_argument("--hypothesis-seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    args.webhook_url, args.webhook_secret = "", ""
    if args.webhooks:
        with socket.socket() as probe:  # a free port for the receiver, which the emulator must know at start
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        args.webhook_url = f"http://127.0.0.1:{port}/webhooks"
        args.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with serving(args) as url:
        if args.check:
            return check(url, args)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(url, flush=True)
        stop.wait()
    return 0


# What every run imports: loaded once by a worker, so that a run forked from it costs what its tests cost.
PRELOAD = ("pytest", "schemathesis", "hypothesis", "faker", "websocket", "standardwebhooks", "mock_server.app",
           "contracts.plugin", "tests.support.face", "tests.support.contract_run")
RUN_SECONDS = 300  # a run still going after this is stuck: its process ends itself


def worker(lines: Iterable[str]) -> int:
    """Runs for the self-test, one per line of `lines` (a JSON list: the arguments of `main`, and a log file), each
    in a child forked from this process; writes each run's exit status back as a line. Without `os.fork` (Windows)
    a run is a process of its own."""
    for name in PRELOAD:
        importlib.import_module(name)
    for line in lines:
        argv, log = json.loads(line)
        if not hasattr(os, "fork"):
            with open(log, "w") as out:
                done = subprocess.run([sys.executable, "-m", "tests.support.mutants", *argv], stdout=out,
                                      stderr=subprocess.STDOUT, timeout=RUN_SECONDS, check=False)
            print(done.returncode, flush=True)
            continue
        child = os.fork()
        if child == 0:
            signal.alarm(RUN_SECONDS)
            output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(output, 1)
            os.dup2(output, 2)
            try:
                code = main(argv)
            except BaseException:  # the child must end here, whatever happened: it is a copy of the worker
                traceback.print_exc()
                code = 3
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(child, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.stdin) if sys.argv[1:] == ["--worker"] else main(sys.argv[1:]))
