"""One request's life in the web layer, and the typed state it keeps (`RequestState`, one per request on `g`).

For every request the app answers, in order:

1. `begin` (before_request): the request id (the client's `X-Request-Id` when well formed), the arrival on the
   emulator's clock and a timer, in a fresh `RequestState` (`web/request_state.py`).
2. The pipeline and the handler (`web/routing.py`): faults (`web/faults.py`) and authentication note the
   caller's client and its rate-limit bucket in the state; a fill records its webhook event inside the trade.
3. `finish` (after_request, for answers and errors alike): the answer checked against the spec (when
   `validate_responses` is on), `X-Request-Id` and `X-RateLimit-*` added, then the log line and the journal entry.
4. The answer goes back to the server, which sends it.

So everything a request records is recorded before its answer leaves the app: a client that has the answer
finds what its request did in the journal and the webhook deliveries, whichever connection it asks on.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Rule

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.spec.responses import ResponseChecker
from mock_server.web.errors import error_response
from mock_server.web.request_state import RequestState, current_state, start_request
from mock_server.web.routing import Api

log = logging.getLogger("tradefence.requests")
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNJOURNALED = frozenset({"/_mock/journal"})  # reading the journal must not fill it
# Watching must not fill it either: the dashboard page, and the control-plane reads it polls every 2 s (marked with
# this header), would otherwise push a client's own requests out of the journal within minutes.
DASHBOARD = frozenset({"/_mock/", "/_mock"})  # the page, and the redirect to it
DASHBOARD_POLL = ("X-Tradefence-Dashboard", "poll")
# The dashboard's own market-data socket: a browser cannot put a header on a websocket, so it says so in the query.
DASHBOARD_STREAM = ("/market-data", "watch=dashboard")
_DASHBOARD_POLL_KEY = "HTTP_X_TRADEFENCE_DASHBOARD"  # the header's name in the WSGI environ (PEP 3333)


def install_lifecycle(app: Flask, api: Api, checker: ResponseChecker | None) -> None:
    @app.before_request
    def begin() -> None:
        found = api.services()
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        start_request(RequestState(
            request_id=incoming if CLIENT_REQUEST_ID.match(incoming) else found.request_ids.token("req", 16),
            arrived=found.clock.now(), started=time.perf_counter()))

    @app.after_request
    def finish(response: Response) -> Response:
        state = current_state()
        rule = request.url_rule
        added = [("X-Request-Id", state.request_id)]
        rate = state.rate
        if rate is None and state.client_id is not None:
            # Refused after authentication but before the rate limit (403, 400, ...): report the client's bucket,
            # spending nothing, since every /v1 response carries X-RateLimit-*.
            rate = api.services().rate_limiter.take(state.client_id, 0)
        if rate is not None:
            added += [("X-RateLimit-Limit", str(rate.limit)), ("X-RateLimit-Remaining", str(rate.remaining)),
                      ("X-RateLimit-Reset", str(rate.reset_seconds))]
        if (checker is not None and rule is not None and not rule.websocket and not response.is_streamed
                and not state.dropped):
            # Checked as it will leave: with the headers added below (the spec requires the rate-limit ones).
            problems = checker.problems(api.operation_for(rule.endpoint), response.status_code,
                                        {**response.headers, **dict(added)}, response.get_data())
            if problems:
                log.error("response breaks the spec: %s", "; ".join(problems))
                response = error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Response broke the spec: "
                                                   + "; ".join(problems)))
        # Nothing before this sets these headers, so `add` (no search for an earlier value) is enough.
        for name, value in added:
            response.headers.add(name, value)
        try:
            _record(api, state, rule, None if state.dropped else response.status_code)
        except Exception:  # the answer is made and stands: a record that failed is a bug to log, not a 500
            log.exception("recording request %s failed", state.request_id)
        return response


def _record(api: Api, state: RequestState, rule: Rule | None, status: int | None) -> None:
    elapsed_ms = (time.perf_counter() - state.started) * 1000
    method, path, environ = request.method, request.path, request.environ
    # The path only: query strings can carry secrets (the stream's access_token).
    log.info("%s %s %s %.1fms %s", method, path, "dropped" if status is None else status, elapsed_ms,
             state.request_id)
    if path in UNJOURNALED or _watching(method, path, environ):
        return
    journal = api.services().journal
    if journal.capacity == 0:
        return
    body = b""
    if environ.get("CONTENT_LENGTH", "0") not in ("", "0") or environ.get("wsgi.input_terminated"):
        try:
            body = request.get_data(cache=True)
        except (HTTPException, OSError):  # over the size limit, or the connection is gone: the body is unknown
            body = b""
    journal.record(
        request_id=state.request_id, timestamp=state.arrived, method=method, path=path,
        query=request.args.items(multi=True) if environ.get("QUERY_STRING") else (),
        headers=request.headers.items(), body=body, content_type=environ.get("CONTENT_TYPE", ""), status=status,
        operation=api.operation_id_for(rule.endpoint if rule is not None else None), duration_ms=elapsed_ms,
    )


def _watching(method: str, path: str, environ: dict[str, Any]) -> bool:
    """The dashboard page, its market-data socket, or one of its polls: a GET of the control plane carrying the
    dashboard's header."""
    if path in DASHBOARD or (path, environ.get("QUERY_STRING")) == DASHBOARD_STREAM:
        return True
    return method == "GET" and path.startswith("/_mock/") and environ.get(_DASHBOARD_POLL_KEY) == DASHBOARD_POLL[1]
