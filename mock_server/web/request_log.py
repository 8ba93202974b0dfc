"""Request ids, one log line per request, the request journal, and (in development) a check of every response
against the spec."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import HTTPException

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.spec.responses import ResponseChecker
from mock_server.web.errors import error_response
from mock_server.web.routing import Api, services

log = logging.getLogger("tradefence.requests")
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNJOURNALED = frozenset({"/_mock/journal"})  # reading the journal must not fill it
# Watching must not fill it either: the dashboard page, and the control-plane reads it polls every 2 s (marked with
# this header), would otherwise push a client's own requests out of the journal within minutes.
DASHBOARD = frozenset({"/_mock/", "/_mock"})  # the page, and the redirect to it
DASHBOARD_POLL = ("X-Tradefence-Dashboard", "poll")


def install_request_log(app: Flask, api: Api, request_ids: IdGenerator, checker: ResponseChecker | None) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        g.arrived = services().clock.now()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if CLIENT_REQUEST_ID.match(incoming) else request_ids.token("req", 16)

    @app.after_request
    def _finish(response: Response) -> Response:
        dropped = g.get("dropped", False)  # an injected drop_connection fault: nothing goes out
        if (checker is not None and request.url_rule is not None and not request.url_rule.websocket
                and not response.is_streamed and not dropped):
            operation = api.operation_for(request.url_rule.endpoint)
            problems = checker.problems(operation, response.status_code, response.headers, response.get_data())
            if problems:
                log.error("response breaks the spec: %s", "; ".join(problems))
                response = error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Response broke the spec: "
                                                   + "; ".join(problems)))
        response.headers["X-Request-Id"] = g.get("request_id", "")
        rate = g.get("rate")
        if rate is not None:
            response.headers["X-RateLimit-Limit"] = str(rate.limit)
            response.headers["X-RateLimit-Remaining"] = str(rate.remaining)
            response.headers["X-RateLimit-Reset"] = str(rate.reset_seconds)
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        # The path only: query strings can carry secrets (the stream's access_token).
        log.info("%s %s %s %.1fms %s", request.method, request.path, "dropped" if dropped else response.status_code,
                 elapsed, g.request_id)
        if request.path not in UNJOURNALED and not _watching(request):
            _journal(api, request, None if dropped else response.status_code, elapsed)
        return response


def _journal(api: Api, incoming: Request, status: int | None, elapsed_ms: float) -> None:
    journal = services().journal
    if journal.capacity == 0:
        return
    try:
        body = incoming.get_data(cache=True)
    except (HTTPException, OSError):  # over the size limit, or the connection is gone: the body is unknown
        body = b""
    journal.record(
        request_id=g.get("request_id", ""), timestamp=g.get("arrived") or services().clock.now(),
        method=incoming.method, path=incoming.path, query=incoming.args.items(multi=True),
        headers=incoming.headers.items(), body=body, content_type=incoming.content_type or "", status=status,
        operation=api.operation_id_for(incoming.url_rule.endpoint if incoming.url_rule is not None else None),
        duration_ms=elapsed_ms,
    )


def _watching(incoming: Request) -> bool:
    """The dashboard page, or one of its polls: a GET of the control plane carrying the dashboard's header."""
    if incoming.path in DASHBOARD:
        return True
    name, value = DASHBOARD_POLL
    return (incoming.method == "GET" and incoming.path.startswith("/_mock/")
            and incoming.headers.get(name) == value)
