"""Request ids, one log line per request, and (in development) a check of every response against the spec."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, Response, g, request

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.spec.responses import ResponseChecker
from mock_server.web.errors import error_response
from mock_server.web.routing import Api

log = logging.getLogger("tradefence.requests")
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install_request_log(app: Flask, api: Api, request_ids: IdGenerator, checker: ResponseChecker | None) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if CLIENT_REQUEST_ID.match(incoming) else request_ids.token("req", 16)

    @app.after_request
    def _finish(response: Response) -> Response:
        if checker is not None and request.url_rule is not None and not response.is_streamed:
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
        log.info("%s %s %s %.1fms %s", request.method, request.path, response.status_code, elapsed, g.request_id)
        return response
