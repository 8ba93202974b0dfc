"""Applying injected faults to an API request: the web half of `domain/faults.py`.

The domain decides which faults fire; this module makes them happen over HTTP: it holds the answer back for the
latency, renders a forced error through the normal envelope (with the headers that error always carries), or
closes the connection without answering. Holding back and closing go through the server's `ResponseControls`:
the request is handled at once and only its answer waits, so a slow endpoint never slows another connection.
It runs first in the pipeline (`web/routing.py`), before authentication, as a failing gateway in front of the
API would.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

from flask import Response, request

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.faults import FORCIBLE_STATUSES, Outcome
from mock_server.domain.ratelimit import RateDecision
from mock_server.services import Services
from mock_server.serving.controls import RESPONSE_CONTROLS, ResponseControls
from mock_server.spec.document import Operation, SpecDocument
from mock_server.web.bearer import bearer_token, challenge
from mock_server.web.errors import error_response
from mock_server.web.request_state import current_state

log = logging.getLogger("tradefence.faults")
CONTROL_PREFIX = "/_mock"
_ERROR_SCHEMA = "#/components/schemas/Error"


def applies_to(operation: Operation) -> bool:
    """Faults are for the API (`/v1`, `/authorize`, `/token`), never for the control plane that sets them."""
    return not operation.url_path.startswith(CONTROL_PREFIX)


def forcible_statuses(document: SpecDocument) -> dict[str, frozenset[int]]:
    """For every API operation, the statuses at which it documents the error envelope: what a fault may force
    there without the response breaking the spec (`/token`'s RFC 6749 400 and 401, for one, are not)."""
    found: dict[str, frozenset[int]] = {}
    for operation in document.operations:
        if not applies_to(operation):
            continue
        responses: Mapping[str, dict] = document.pointer(
            "#/paths/" + operation.path.replace("~", "~0").replace("/", "~1") + f"/{operation.method.lower()}"
            "/responses")
        statuses: set[int] = set()
        for key, entry in responses.items():
            schema = document.resolve(entry).get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != _ERROR_SCHEMA:
                continue
            if key.isdigit():
                statuses.add(int(key))
            elif key.upper() == "5XX":
                statuses.update(FORCIBLE_STATUSES)
        found[operation.operation_id] = frozenset(statuses)
    return found


def inject(services: Services, operation: Operation, forcible: frozenset[int]) -> Response | None:
    """Apply whatever faults fire for this request; a response means "answer this instead"."""
    injection = services.faults.take(operation.operation_id, request.path, forcible)
    if injection.empty:
        return None
    controls: ResponseControls | None = request.environ.get(RESPONSE_CONTROLS)
    if injection.latency_ms:
        if controls is not None:
            controls.delay(injection.latency_ms / 1000)
        else:  # another WSGI server: all we can do is wait here
            time.sleep(injection.latency_ms / 1000)
    outcome = injection.outcome
    if outcome is None:
        return None
    if outcome.drop_connection:
        return _drop(controls)
    return _forced(services, operation, outcome)


def _forced(services: Services, operation: Operation, outcome: Outcome) -> Response:
    assert outcome.code is not None and outcome.status is not None
    headers: dict[str, str] = {}
    state = current_state()
    client_id = _caller(services) if operation.secured else None
    if client_id is not None:
        state.rate = services.rate_limiter.take(client_id, 0)  # X-RateLimit-* on every /v1 answer, this one too
    if outcome.code is ErrorCode.RATE_LIMIT_EXCEEDED:
        settings = services.rate_limiter.settings
        limit = state.rate.limit if state.rate is not None else settings.capacity
        state.rate = RateDecision(allowed=False, limit=limit, remaining=0,
                                  reset_seconds=math.ceil(limit / settings.refill_per_second),
                                  retry_after=outcome.retry_after or 1)
    elif outcome.code in (ErrorCode.INVALID_CREDENTIALS, ErrorCode.INSUFFICIENT_SCOPE):
        headers["WWW-Authenticate"] = challenge(outcome.code, description=outcome.message, scopes=operation.scopes)
    response = error_response(ApiError(outcome.code, outcome.message, retry_after=outcome.retry_after), headers)
    response.status_code = outcome.status  # 502 keeps code 5000
    return response


def _caller(services: Services) -> str | None:
    """The client of a valid bearer token, if the request has one (a fault never refuses for a bad token)."""
    token = bearer_token(request.headers.get("Authorization", ""))
    if not token:
        return None
    try:
        return services.oauth.verify(token).client_id
    except ApiError:
        return None


def _drop(controls: ResponseControls | None) -> Response:
    """Close the connection without a byte of answer; the client sees a connection error at once. Under another
    WSGI server there is no way to, so answer 502 with a message saying why."""
    if controls is None:
        log.warning("drop_connection needs the emulator's own server; answering 502 instead")
        response = error_response(ApiError(ErrorCode.INTERNAL_ERROR, "drop_connection fault: this server cannot "
                                                                     "close the connection; 502 instead"))
        response.status_code = 502
        return response
    current_state().dropped = True
    controls.drop()
    return Response(status=500)  # never sent
