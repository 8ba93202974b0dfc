"""Request ids, one log line per request, the request journal, and (in development) a check of every response
against the spec; and the hold on work that waits for the answer to be out (`domain/deferral.py`)."""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import HTTPException

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.spec.responses import ResponseChecker
from mock_server.web.errors import error_response
from mock_server.web.routing import Api

log = logging.getLogger("tradefence.requests")
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNJOURNALED = frozenset({"/_mock/journal"})  # reading the journal must not fill it
# Watching must not fill it either: the dashboard page, and the control-plane reads it polls every 2 s (marked with
# this header), would otherwise push a client's own requests out of the journal within minutes.
DASHBOARD = frozenset({"/_mock/", "/_mock"})  # the page, and the redirect to it
DASHBOARD_POLL = ("X-Tradefence-Dashboard", "poll")
_DASHBOARD_POLL_KEY = "HTTP_" + DASHBOARD_POLL[0].upper().replace("-", "_")  # the header's WSGI environ key
# The dashboard's own market-data socket: a browser cannot put a header on a websocket, so it says so in the query.
DASHBOARD_STREAM = ("/market-data", "watch=dashboard")


def install_request_log(app: Flask, api: Api, checker: ResponseChecker | None) -> None:
    @app.before_request
    def _start() -> None:
        state = g._get_current_object()  # one context lookup, not one per field
        found = api.services()
        state.started = time.perf_counter()
        state.arrived = found.clock.now()
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        state.request_id = incoming if CLIENT_REQUEST_ID.match(incoming) else found.request_ids.token("req", 16)
        state.deferral = found.deferral  # held now, released with the journal entry once the answer is out
        found.deferral.hold()

    @app.after_request
    def _finish(response: Response) -> Response:
        # The objects behind Flask's proxies, once: every attribute read through a proxy costs a context lookup,
        # and this runs for every request.
        incoming: Request = request._get_current_object()  # type: ignore[attr-defined]
        state = g._get_current_object()
        dropped = state.get("dropped", False)  # an injected drop_connection fault: nothing goes out
        rule = incoming.url_rule
        if checker is not None and rule is not None and not rule.websocket and not response.is_streamed and not dropped:
            operation = api.operation_for(rule.endpoint)
            problems = checker.problems(operation, response.status_code, response.headers, response.get_data())
            if problems:
                log.error("response breaks the spec: %s", "; ".join(problems))
                response = error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Response broke the spec: "
                                                   + "; ".join(problems)))
        # Nothing before this hook sets these headers, so `add` (no search for an earlier value) is enough.
        headers = response.headers
        request_id = state.get("request_id", "")
        headers.add("X-Request-Id", request_id)
        rate = state.get("rate")
        client = state.get("client_id")
        if rate is None and client is not None:
            # Refused after authentication but before the rate limit (403, 400, ...): report the client's bucket,
            # spending nothing, since every /v1 response carries X-RateLimit-*.
            rate = api.services().rate_limiter.take(client, 0)
        if rate is not None:
            headers.add("X-RateLimit-Limit", str(rate.limit))
            headers.add("X-RateLimit-Remaining", str(rate.remaining))
            headers.add("X-RateLimit-Reset", str(rate.reset_seconds))
        elapsed = (time.perf_counter() - state.get("started", time.perf_counter())) * 1000
        # Logged and journaled (and the held work released) when the server closes the answer, which the
        # emulator's own server does once the answer is out (WSGI servers call close() after the body): the client
        # is not kept waiting for it. The server handles the next request only after this ran, so a client that
        # reads the journal or the webhook events right after an answer finds what that request did.
        response.call_on_close(functools.partial(_record, api, incoming, state,
                                                 None if dropped else response.status_code, elapsed))
        return response


def _record(api: Api, incoming: Request, state: Any, status: int | None, elapsed_ms: float) -> None:
    deferral = state.get("deferral")
    if deferral is not None:
        deferral.release()
    path = incoming.path
    # The path only: query strings can carry secrets (the stream's access_token).
    log.info("%s %s %s %.1fms %s", incoming.method, path, "dropped" if status is None else status, elapsed_ms,
             state.get("request_id", ""))
    if path not in UNJOURNALED and not _watching(incoming):
        _journal(api, incoming, state, status, elapsed_ms)


def _journal(api: Api, incoming: Request, state: Any, status: int | None, elapsed_ms: float) -> None:
    found = api.services()
    journal = found.journal
    if journal.capacity == 0:
        return
    # Read from the environment, not through Werkzeug's header and query objects: this runs on every request.
    environ = incoming.environ
    body = b""
    if environ.get("CONTENT_LENGTH", "0") not in ("", "0") or environ.get("wsgi.input_terminated"):
        try:
            body = incoming.get_data(cache=True)
        except (HTTPException, OSError):  # over the size limit, or the connection is gone: the body is unknown
            body = b""
    rule = incoming.url_rule
    journal.record(
        request_id=state.get("request_id", ""), timestamp=state.get("arrived") or found.clock.now(),
        method=incoming.method, path=incoming.path,
        query=incoming.args.items(multi=True) if environ.get("QUERY_STRING") else (),
        headers=_headers(environ), body=body, content_type=environ.get("CONTENT_TYPE", ""), status=status,
        operation=api.operation_id_for(rule.endpoint if rule is not None else None), duration_ms=elapsed_ms,
    )


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers exactly as Werkzeug's `EnvironHeaders` lists them (`X-Request-Id`; an empty
    Content-Type left out), in one pass: the journal takes them on every request, and the class costs twice this."""
    return [(_header_name(key), value) for key, value in environ.items()
            if (key[:5] == "HTTP_" and key not in _DUPLICATES) or (key in _HEADER_NAMES and value)]


@functools.lru_cache(maxsize=512)
def _header_name(key: str) -> str:
    """`HTTP_X_REQUEST_ID` -> `X-Request-Id`; clients send the same few names on every request."""
    return _HEADER_NAMES.get(key) or key[5:].replace("_", "-").title()


_HEADER_NAMES = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_DUPLICATES = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})  # WSGI servers keep these without HTTP_


def _watching(incoming: Request) -> bool:
    """The dashboard page, its market-data socket, or one of its polls: a GET of the control plane carrying the
    dashboard's header."""
    if incoming.path in DASHBOARD:
        return True
    if (incoming.path, incoming.environ.get("QUERY_STRING")) == DASHBOARD_STREAM:
        return True
    return (incoming.method == "GET" and incoming.path.startswith("/_mock/")
            and incoming.environ.get(_DASHBOARD_POLL_KEY) == DASHBOARD_POLL[1])
