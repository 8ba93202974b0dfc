"""Check a response against the spec: the status is listed, the body and headers match their schemas.

Used by the emulator's own tests (every response they see) and, when `validate_responses` is on, by the
emulator itself, so a handler that drifts from the spec fails loudly in development.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from mock_server.spec.document import Operation, SpecDocument
from mock_server.spec.validation import SchemaValidator


class HeaderItems(Protocol):
    """An answer's headers: Werkzeug's Headers, requests' CaseInsensitiveDict or a plain dict."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class ResponseChecker:
    """Compiled response validators for every operation, keyed by (operation id, status)."""

    def __init__(self, document: SpecDocument) -> None:
        self._document = document
        self._cache: dict[tuple[str, int, str], SchemaValidator] = {}

    def problems(self, operation: Operation, status: int, headers: HeaderItems, body: bytes) -> list[str]:
        spec = self._document.response_spec(operation, status)
        if spec is None:
            return [f"{operation.operation_id}: status {status} is not documented"]
        found: list[str] = []
        for name, header in spec.get("headers", {}).items():
            header = self._document.resolve(header)
            value = _header(headers, name)
            if value is None:
                if header.get("required"):
                    found.append(f"{operation.operation_id} {status}: required header {name} is missing")
                continue
            schema = header.get("schema", {})
            parsed: Any = int(value) if schema.get("type") == "integer" and value.isdigit() else value
            for error in self._validator(operation, status, f"header:{name}", schema).errors(parsed):
                found.append(f"{operation.operation_id} {status} header {name}: {error.message}")
        content = spec.get("content")
        if not content:
            return found
        content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip()
        if content_type not in content:
            return [*found, f"{operation.operation_id} {status}: content type {content_type!r} not in {list(content)}"]
        if content_type != "application/json":
            return found
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return [*found, f"{operation.operation_id} {status}: body is not JSON ({exc})"]
        schema = content[content_type].get("schema", {})
        for error in self._validator(operation, status, content_type, schema).errors(payload):
            path = "/".join(str(p) for p in error.absolute_path)
            found.append(f"{operation.operation_id} {status} body at /{path}: {error.message}")
        return found

    def _validator(self, operation: Operation, status: int, part: str, schema: dict[str, Any]) -> SchemaValidator:
        key = (operation.operation_id, status, part)
        if key not in self._cache:
            self._cache[key] = SchemaValidator(self._document, schema)
        return self._cache[key]


def _header(headers: HeaderItems, name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)
