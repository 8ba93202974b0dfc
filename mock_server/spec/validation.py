"""Validators compiled once per operation from the spec (stripe-mock's approach), so that a request's validation
is one call on a validator built at start-up, never a walk of the spec (docs/performance.md, "Code choices").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema_rs

from mock_server.spec.document import SPEC_URI, Operation, Parameter, SpecDocument

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


class InvalidInput(Exception):
    """A request or message that does not match the spec; `field` is a dotted path to the offending value."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Lookup(Protocol):
    """A request's path, query or headers as the validator reads them: a dict, or Werkzeug's MultiDict or Headers."""

    def get(self, key: str, /) -> str | None: ...


class _Absent:
    """No request body was sent — unlike a JSON `null`, which is a body and must match the schema."""


ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class ValidInput:
    path: dict[str, Any]
    query: dict[str, Any]
    headers: dict[str, str]
    body: Any


class SchemaValidator:
    """One compiled schema whose `#/components/...` references resolve inside the spec.

    Two validators of the same schema: jsonschema_rs answers "valid?" (natively, so a large batch costs little),
    and only a failure goes through the Python jsonschema validator (`explain.py`), whose errors carry the paths and
    branch context the messages are built from. That one is built on the first failure.
    """

    def __init__(self, document: SpecDocument, schema: Mapping[str, Any]) -> None:
        self._document = document
        self._schema = _anchor_refs(schema)
        self._fast = jsonschema_rs.Draft202012Validator(self._schema, registry=document.rs_registry,
                                                         validate_formats=True)

    @cached_property
    def _explaining(self) -> Draft202012Validator:
        from mock_server.spec import explain

        return explain.validator(self._schema, self._document.registry)

    def errors(self, instance: Any) -> list[ValidationError]:
        if self._fast.is_valid(instance):
            return []
        return list(self._explaining.iter_errors(instance))

    def check(self, instance: Any, *, root: str = "") -> None:
        """Raise InvalidInput naming the most relevant failure, if any."""
        if self._fast.is_valid(instance):
            return
        from mock_server.spec import explain

        problem = explain.first_problem(self._explaining, instance, root)
        if problem is not None:
            raise problem


class RequestValidator:
    """Everything one operation accepts: path, query and header parameters and the body."""

    def __init__(self, document: SpecDocument, operation: Operation) -> None:
        self.operation = operation
        self._params = [(p, SchemaValidator(document, p.schema)) for p in operation.parameters]
        self._body = SchemaValidator(document, operation.body_schema) if operation.body_schema else None

    def validate(self, *, path: Lookup, query: Lookup, headers: Lookup, body: Any = ABSENT) -> ValidInput:
        values: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}}
        sources = {"path": path, "query": query, "header": headers}
        for param, validator in self._params:
            raw = sources[param.location].get(param.name)
            if raw is None:
                if param.required:
                    raise InvalidInput(f"{param.name}: required {param.location} parameter is missing", param.name)
                if "default" in param.schema:
                    values[param.location][param.name] = param.schema["default"]
                continue
            value = _coerce(param, raw)
            validator.check(value, root=param.name)
            values[param.location][param.name] = value
        if body is ABSENT:
            body = None
        elif self._body is not None:
            self._body.check(body)
        return ValidInput(values["path"], values["query"], values["header"], body)


def _coerce(param: Parameter, raw: str) -> Any:
    """Query and path values arrive as text; the schema's type says what they mean."""
    kind = param.schema.get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        raise InvalidInput(f"{param.name}: {raw!r} is not a valid {kind}", param.name) from None
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise InvalidInput(f"{param.name}: {raw!r} is not true or false", param.name)
        return raw == "true"
    return raw


def _anchor_refs(schema: Any) -> Any:
    """Copy a schema taken out of the spec, pointing its local `#/...` refs at the spec's registry entry."""
    if isinstance(schema, Mapping):
        return {
            key: (SPEC_URI + value if key == "$ref" and isinstance(value, str) and value.startswith("#")
                  else _anchor_refs(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_anchor_refs(item) for item in schema]
    return copy.copy(schema)
