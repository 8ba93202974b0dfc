"""Deliberately wrong emulators: each breaks one contract, and the contract suite must fail on every one.

A mutant is the real emulator plus one mutation applied after create_app: a rewrite of some responses, a header
stripped on the wire, a domain rule switched off, or a stream/webhook function replaced. If the contract suite
passes against a mutant, the suite has a blind spot.

Each mutant runs in a process of its own (`python -m tests.mutants NAME`), so a mutation can never leak into
another run: it prints its URL on the first line and serves until terminated.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request

from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.webhooks import signing
from mock_server.web import stream as stream_web

Body = Any


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    apply: Callable[[Flask], None]


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


ORDER_OPS = ("createOrder", "getOrder", "cancelOrder")

MUTANTS: tuple[Mutant, ...] = (
    Mutant("order-drops-status", "a required field (status) missing from orders",
           rewrite_json(ORDER_OPS, _drop("status"), statuses=[200, 201])),
    Mutant("order-quantity-string", "a wrong type: quantity as a string",
           rewrite_json(ORDER_OPS, _set("quantity", str), statuses=[200, 201])),
    Mutant("create-order-200", "a wrong status: 200 instead of 201 for a new order", _status("createOrder", 201, 200)),
    Mutant("unknown-symbol-code-1005", "a wrong error code: 1005 for an unknown symbol",
           rewrite_json((), _error_code(1004, 1005))),
    Mutant("no-retry-after", "429 without Retry-After", _strip_header("Retry-After", 429)),
    Mutant("refresh-not-rotated", "a refresh token that is not rotated",
           rewrite_json(("token",), _refresh_not_rotated, statuses=[200])),
    Mutant("no-bearer-challenge", "401 without WWW-Authenticate", _strip_header("WWW-Authenticate", 401)),
    Mutant("cash-as-string", "a wrong type: account cash as a string",
           rewrite_json(("getAccount",), _set("cash", lambda v: f"{v:.2f}"), statuses=[200])),
    Mutant("filled-exceeds-quantity", "fills that add up to more than the order",
           rewrite_json(ORDER_OPS, _fills_double, statuses=[200, 201])),
    Mutant("cancel-does-not-stick", "a cancelled order reads back as OPEN",
           rewrite_json(("getOrder",), _cancel_does_not_stick, statuses=[200])),
    Mutant("cash-off-by-a-cent", "cash that moves without a fill",
           rewrite_json(("getAccount",), _set("cash", lambda v: round(v + 0.01, 2)), statuses=[200])),
    Mutant("batch-drops-a-result", "a batch answering fewer results than operations",
           rewrite_json(("batch",), _batch_drops_last, statuses=[200])),
    Mutant("flat-error-envelope", "errors without the {error: ...} envelope", rewrite_json((), _flat_errors)),
    Mutant("no-request-id", "responses without X-Request-Id", _strip_header("X-Request-Id")),
    Mutant("json-as-text", "JSON bodies labelled text/plain", on_wire(_json_as_text)),
    Mutant("codes-reusable", "authorization codes usable twice", _codes_reusable),
    Mutant("market-never-closes", "orders accepted while the market is closed",
           _market_always_open),
    Mutant("tokens-never-expire", "expired access tokens still accepted", _tokens_never_expire),
    Mutant("open-redirect", "/authorize redirects to any URI", _open_redirect),
    Mutant("scope-ignored", "a read-only token may trade",
           patch(lambda app: services(app).oauth, "verify", _scope_ignored)),
    Mutant("no-body-validation", "invalid order bodies reach the engine", _no_validation),
    Mutant("wrong-method-200", "unsupported methods answered 200", on_wire(_method_not_refused)),
    Mutant("malformed-tick", "stream quotes without seq and with a text bid", _malformed_tick),
    Mutant("stream-unknown-symbol-4000", "a wrong stream error code for unknown symbols", _stream_wrong_symbol_code),
    Mutant("bad-webhook-signature", "webhooks signed with the wrong key", _bad_signature),
)


def main(argv: list[str]) -> None:
    """Serve one mutant on a free loopback port until terminated."""
    from mock_server.app import create_app
    from mock_server.config import Config
    from mock_server.serving import make_server

    app = create_app(Config(seed=99, rate_limit_capacity=100_000, rate_limit_per_second=100_000.0))
    if argv[0] != "none":
        next(m for m in MUTANTS if m.name == argv[0]).apply(app)
    server = make_server("127.0.0.1", 0, app)
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    finally:
        server.server_close()
        services(app).close()


if __name__ == "__main__":
    main(sys.argv[1:])
