"""Every error leaves as the spec's envelope: `{"error": {"code", "type", "message", ...}}` — never a 500 page."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.spec.validation import InvalidInput
from mock_server.web.render import error_body
from mock_server.web.request_state import current_request_id

log = logging.getLogger("tradefence.errors")

HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST, 404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE, 415: ErrorCode.UNSUPPORTED_MEDIA_TYPE, 503: ErrorCode.SERVICE_UNAVAILABLE,
}
HTTP_MESSAGES = {
    404: "No such route", 405: "Method not allowed on this route",
    413: "The request body is over the size limit", 415: "Unsupported Content-Type",
}


class HttpError(Exception):
    """An ApiError plus HTTP headers the web layer must add (e.g. RFC 6750's WWW-Authenticate)."""

    def __init__(self, error: ApiError, headers: dict[str, str]) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    body = error_body(error)
    body["request_id"] = current_request_id()
    response = jsonify({"error": body})
    response.status_code = error.code.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    response.headers.update(headers or {})
    return response


def invalid(exc: InvalidInput) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, exc.message, field=exc.field)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc)

    @app.errorhandler(HttpError)
    def _http_error(exc: HttpError) -> Response:
        return error_response(exc.error, exc.headers)

    @app.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput) -> Response:
        return error_response(invalid(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_CODES.get(status, ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.INVALID_REQUEST)
        message = HTTP_MESSAGES.get(status) or exc.description or exc.name
        response = error_response(ApiError(code, message))
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error (request %s)", current_request_id() or "-")
        return error_response(ApiError(ErrorCode.INTERNAL_ERROR, "Internal error; the request id identifies it"))
