"""The route table built from the spec, and the one pipeline every operation's request goes through.

Handlers are bound to spec operations by operationId; the URL rule, method, scopes, and request validators all
come from openapi.yaml. The pipeline, in order: injected faults (API operations only; `web/faults.py`) →
authenticate and check scope → read and parse the body → validate path, query, headers and body → rate-limit →
Idempotency-Key → the handler.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from flask import Blueprint, Response, current_app, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.routing import BaseConverter, Map

from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.idempotency import StoredResponse
from mock_server.domain.oauth.tokens import Principal
from mock_server.services import Services
from mock_server.spec.document import Operation, SpecDocument
from mock_server.spec.validation import ABSENT, InvalidInput, RequestValidator, ValidInput
from mock_server.web import faults
from mock_server.web.bearer import CONTROL_REALM, bearer_token, challenge
from mock_server.web.errors import HttpError, error_response
from mock_server.web.request_state import RequestState, current_state


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: validated inputs, the caller, and the services."""

    inputs: ValidInput
    principal: Principal
    services: Services

    @property
    def body(self) -> Any:
        return self.inputs.body

    @property
    def subject(self) -> str:
        return self.principal.subject


Handler = Callable[[Call], ResponseReturnValue]
ErrorRenderer = Callable[[InvalidInput], ResponseReturnValue]
ANONYMOUS = Principal(subject="", client_id="", scopes=frozenset(), grant_id="", token_id="")
_NO_QUERY: Mapping[str, str] = MappingProxyType({})  # for operations without query parameters: args go unparsed


def services() -> Services:
    return current_app.extensions["tradefence"]


class Api:
    """Binds handlers to the spec's operations; knows which operation a Flask endpoint serves."""

    def __init__(self, document: SpecDocument, extensions: Mapping[str, Any], *,
                 control_token: str | None = None) -> None:
        """`control_token`: what every control-plane operation wants as its bearer token (None: open, as on
        loopback)."""
        self.document = document
        self._control_token = control_token
        self._extensions = extensions  # the app's own (one Api per app): read per request, never kept
        self._validators = {op.operation_id: RequestValidator(document, op) for op in document.operations}
        self._rules = flask_rules(document.operations)
        self._endpoints: dict[str, Operation] = {}
        # What a fault may force on each API operation: the statuses it documents the error envelope for.
        self.forcible = faults.forcible_statuses(document)

    def route(self, blueprint: Blueprint, operation_id: str, *, cost: Callable[[ValidInput], int] | None = None,
              idempotent: bool = False, on_invalid: ErrorRenderer | None = None) -> Callable[[Handler], Handler]:
        """Register `handler` for an operation. `cost` prices a request in rate-limit tokens (batch: one per
        operation); `idempotent` honours Idempotency-Key; `on_invalid` renders validation failures for the
        OAuth endpoints, whose error formats RFC 6749 fixes."""
        validator = self._validators[operation_id]
        operation = validator.operation
        forcible = self.forcible.get(operation_id)
        takes_query = any(parameter.location == "query" for parameter in operation.parameters)
        control_token = self._control_token if operation.control else None

        def register(handler: Handler) -> Handler:
            def view(**path: str) -> ResponseReturnValue:
                if control_token is not None:
                    _check_control_token(control_token)
                found = self.services()
                if forcible is not None:
                    forced = faults.inject(found, operation, forcible)
                    if forced is not None:
                        return forced
                state = current_state()
                principal = _authenticate(operation, found, state) if operation.secured else ANONYMOUS
                try:
                    inputs = validator.validate(path=path, query=request.args if takes_query else _NO_QUERY,
                                                headers=request.headers, body=_read_body(operation))
                except InvalidInput as exc:
                    if on_invalid is None:
                        raise
                    return on_invalid(exc)
                if operation.secured:
                    _rate_limit(principal, cost(inputs) if cost else 1, found, state)
                call = Call(inputs, principal, found)
                key = inputs.headers.get("Idempotency-Key")
                if idempotent and key:
                    return _idempotent(call, key, handler)
                return handler(call)

            blueprint.add_url_rule(self._rules[operation_id], endpoint=operation_id, view_func=view,
                                   methods=[operation.method], provide_automatic_options=False)
            self._endpoints[f"{blueprint.name}.{operation_id}"] = operation
            return handler

        return register

    def services(self) -> Services:
        """This app's current services (a reseed swaps them), without the `current_app` lookup: every request
        asks several times."""
        return self._extensions["tradefence"]

    def operation_for(self, endpoint: str) -> Operation:
        return self._endpoints[endpoint]

    def operation_id_for(self, endpoint: str | None) -> str | None:
        """The operationId a Flask endpoint serves; None for routes that are no spec operation (the stream)."""
        operation = self._endpoints.get(endpoint or "")
        return operation.operation_id if operation is not None else None

    def missing_handlers(self) -> list[str]:
        bound = {op.operation_id for op in self._endpoints.values()}
        return sorted(op.operation_id for op in self.document.operations if op.operation_id not in bound)


class SegmentConverter(BaseConverter):
    """One path segment, except the literals given: the fixed segments of sibling routes at that place.

    Werkzeug answers 405 with an `Allow` made of every rule the path matches. `/_mock/webhooks/deliveries` matched
    `GET /_mock/webhooks/deliveries` and also `DELETE /_mock/webhooks/{endpointId}`, so `Allow` offered `DELETE`,
    which then answered 400 (no endpoint is called `deliveries`). Refusing the sibling's literal here keeps `Allow`
    to the methods that path really has."""

    def __init__(self, url_map: Map, *taken: str) -> None:
        super().__init__(url_map)
        self.regex = "".join(rf"(?!{re.escape(literal)}\Z)" for literal in taken) + "[^/]+"


CONVERTERS: Mapping[str, type[BaseConverter]] = MappingProxyType({"segment": SegmentConverter})
"""Register these in the app's `url_map.converters` before the blueprints (`create_app` does)."""


def flask_rules(operations: tuple[Operation, ...]) -> dict[str, str]:
    """Each operation's Werkzeug rule: `{name}` becomes `<name>`, or `<segment('literal', ...):name>` where a route
    of the same shape has a fixed segment in that place (see `SegmentConverter`)."""
    shapes = {op.operation_id: op.url_path.split("/") for op in operations}
    rules = {}
    for operation_id, parts in shapes.items():
        rule = []
        for place, part in enumerate(parts):
            name = _variable(part)
            if name is None:
                rule.append(part)
                continue
            taken = sorted({other[place] for other in shapes.values() if _fixed_beside(other, parts, place)})
            rule.append(f"<segment({', '.join(map(repr, taken))}):{name}>" if taken else f"<{name}>")
        rules[operation_id] = "/".join(rule)
    return rules


def _variable(part: str) -> str | None:
    return part[1:-1] if part.startswith("{") and part.endswith("}") else None


def _fixed_beside(other: list[str], parts: list[str], place: int) -> bool:
    """`other` has a fixed segment at `place`, and a path could match `parts` and `other` everywhere else."""
    if len(other) != len(parts) or _variable(other[place]) is not None:
        return False
    return all(_may_match(mine, theirs) for index, (mine, theirs) in enumerate(zip(parts, other, strict=True))
               if index != place)


def _may_match(part: str, other: str) -> bool:
    """Some path segment matches both."""
    return part == other or _variable(part) is not None or _variable(other) is not None


def _authenticate(operation: Operation, found: Services, state: RequestState) -> Principal:
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise HttpError(ApiError(ErrorCode.INVALID_CREDENTIALS, "Missing bearer token"),
                        {"WWW-Authenticate": challenge()})
    token = bearer_token(header)
    try:
        if not token:
            raise ApiError(ErrorCode.INVALID_CREDENTIALS, "The Authorization header must be 'Bearer <token>'")
        principal = found.oauth.verify(token)
    except ApiError as exc:
        raise HttpError(exc, {"WWW-Authenticate": challenge(exc.code, description=exc.message)}) from None
    state.client_id = principal.client_id  # known from here on: refusals before the rate limit report its bucket
    missing = [scope for scope in operation.scopes if scope not in principal.scopes]
    if missing:
        refusal = ApiError(ErrorCode.INSUFFICIENT_SCOPE, f"This operation needs the scope {missing[0]}")
        raise HttpError(refusal, {"WWW-Authenticate": challenge(refusal.code, scopes=operation.scopes)})
    return principal


def _check_control_token(expected: str) -> None:
    """Beyond loopback, anyone who can reach the port could reset the emulator, mint tokens for any account or
    inject faults: the control plane then wants its own bearer secret."""
    token = bearer_token(request.environ.get("HTTP_AUTHORIZATION", ""))
    # The environ is latin-1 text, so any header encodes; compare_digest takes the time of a match either way.
    if token is None or not hmac.compare_digest(token.encode("latin-1"), expected.encode()):
        raise HttpError(ApiError(ErrorCode.INVALID_CREDENTIALS, "The control plane needs Authorization: Bearer "
                                 "<TRADEFENCE_CONTROL_TOKEN> (the emulator listens beyond loopback)"),
                        {"WWW-Authenticate": CONTROL_REALM})


def _read_body(operation: Operation) -> Any:
    if operation.body_content_type is None:
        return ABSENT
    raw = request.get_data(cache=True)
    if not raw:
        if operation.body_required:
            raise InvalidInput("body: a request body is required", "body")
        return ABSENT
    if media_type(request.environ) != operation.body_content_type:
        raise ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {operation.body_content_type}")
    if operation.body_content_type == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads decodes bytes
        body = _JSON.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(ErrorCode.MALFORMED_JSON, f"The body is not valid JSON: {exc}") from None
    except RecursionError:  # `[` x 100000: the parser's own limit, free to catch (no scan before every parse)
        raise ApiError(ErrorCode.MALFORMED_JSON, "The body nests arrays or objects too deeply to parse") from None
    if has_lone_surrogate(text, body):
        raise ApiError(ErrorCode.MALFORMED_JSON, f"The body is not valid JSON: {LONE_SURROGATE}")
    return body


_SURROGATE_ESCAPES = ("\\ud", "\\uD")
_SURROGATE_ESCAPE_BYTES = (b"\\ud", b"\\uD")
LONE_SURROGATE = "a \\u escape stands for half a UTF-16 surrogate pair (\\ud800), which is no Unicode text"


def has_lone_surrogate(text: str | bytes, parsed: Any) -> bool:
    """Whether JSON `text` escaped a lone UTF-16 surrogate (RFC 8259 §8.2), which Python's parser lets through as a
    string no UTF-8 encoder takes (the validator raised on it: a 500). Only text with a `\\ud` escape (rare, and
    found at memchr speed) is looked at further."""
    lower, upper = _SURROGATE_ESCAPES if isinstance(text, str) else _SURROGATE_ESCAPE_BYTES
    if lower not in text and upper not in text:  # type: ignore[operator]
        return False
    try:
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def media_type(environ: Mapping[str, Any]) -> str:
    """The body's media type as Werkzeug's `Request.mimetype` gives it, without its parse of the parameters:
    every request with a body asks."""
    return str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower()


def _number(text: str) -> float | int:
    """JSON Schema counts 153.0 as an integer; hand the domain an int for it, as the client meant."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def reject_constant(name: str) -> None:
    """`NaN`, `Infinity` and `-Infinity`, which Python's parser accepts and JSON does not."""
    raise ValueError(f"{name} is not JSON")


# One decoder for every body: json.loads with options builds a new decoder per call.
_JSON = json.JSONDecoder(parse_constant=reject_constant, parse_float=_number)


def _rate_limit(principal: Principal, cost: int, found: Services, state: RequestState) -> None:
    decision = found.rate_limiter.take(principal.client_id, cost)
    state.rate = decision
    if not decision.allowed:
        raise ApiError(ErrorCode.RATE_LIMIT_EXCEEDED, f"Rate limit of {decision.limit} requests exceeded",
                       retry_after=decision.retry_after)


def _idempotent(call: Call, key: str, handler: Handler) -> Response:
    store = call.services.idempotency
    scope = call.principal.subject
    fingerprint = store.fingerprint(request.method, request.path, request.get_data(cache=True))
    stored = store.begin(scope, key, fingerprint)
    if stored is not None:
        replay = make_response(stored.body, stored.status, list(stored.headers))
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = make_response(handler(call))
    except ApiError as exc:
        response = error_response(exc)
    except BaseException:
        store.abandon(scope, key)
        raise
    if response.status_code >= 500:
        store.abandon(scope, key)
        return response
    kept = tuple((name, value) for name, value in response.headers.items() if name in ("Content-Type", "Location"))
    store.complete(scope, key, StoredResponse(response.status_code, response.get_data(), kept))
    response.headers["Idempotent-Replayed"] = "false"
    return response
