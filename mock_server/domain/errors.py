"""Errors the domain raises, each with its Tradefence code; the web layer turns them into the envelope.

The code → (HTTP status, type) table mirrors `ErrorCode` in openapi.yaml.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    INVALID_CREDENTIALS = 1001
    INSUFFICIENT_FUNDS = 1002
    MARKET_CLOSED = 1003
    INVALID_SYMBOL = 1004
    INSUFFICIENT_SCOPE = 1005
    INSUFFICIENT_POSITION = 1006
    ORDER_NOT_CANCELLABLE = 1007
    RATE_LIMIT_EXCEEDED = 2001
    INVALID_REQUEST = 4000
    MALFORMED_JSON = 4001
    NOT_FOUND = 4004
    METHOD_NOT_ALLOWED = 4005
    IDEMPOTENCY_IN_FLIGHT = 4009
    PAYLOAD_TOO_LARGE = 4013
    UNSUPPORTED_MEDIA_TYPE = 4015
    IDEMPOTENCY_MISMATCH = 4022
    ROLLED_BACK = 4024
    INTERNAL_ERROR = 5000
    SERVICE_UNAVAILABLE = 5003

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def type(self) -> str:
        return self.name.lower()


_STATUS = {
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.INSUFFICIENT_FUNDS: 422,
    ErrorCode.MARKET_CLOSED: 422,
    ErrorCode.INVALID_SYMBOL: 422,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.INSUFFICIENT_POSITION: 422,
    ErrorCode.ORDER_NOT_CANCELLABLE: 409,
    ErrorCode.RATE_LIMIT_EXCEEDED: 429,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.MALFORMED_JSON: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.IDEMPOTENCY_IN_FLIGHT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.IDEMPOTENCY_MISMATCH: 422,
    ErrorCode.ROLLED_BACK: 424,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}


class ApiError(Exception):
    """A refusal with a Tradefence code. `field` names the offending input; `retry_after` goes with 2001."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
