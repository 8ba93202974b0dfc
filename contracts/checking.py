"""A requests session whose every response is checked against openapi.yaml, with failures a CI reader can act on.

A failure names the operation, what broke, and a curl command that reproduces the request.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import requests

from mock_server.spec.document import Operation, SpecDocument
from mock_server.spec.responses import ResponseChecker


class ContractViolation(AssertionError):
    """One broken contract: operation, check, reproducer."""


def curl(request: requests.PreparedRequest) -> str:
    parts = ["curl", "-X", request.method or "GET"]
    for name, value in request.headers.items():
        if name.lower() in ("content-length", "accept-encoding", "connection", "user-agent", "accept"):
            continue
        if name.lower() == "authorization":
            value = value.split(" ")[0] + " $TOKEN"
        parts += ["-H", f"{name}: {value}"]
    if request.body:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        parts += ["-d", body[:2000]]
    parts.append(request.url or "")
    return " ".join(shlex.quote(part) for part in parts)


def violation(operation: str, check: str, response: requests.Response, detail: str) -> ContractViolation:
    return ContractViolation(
        f"[{operation}] {check}: {detail}\n"
        f"  got {response.status_code}: {response.text[:400]}\n"
        f"  reproduce: {curl(response.request)}"
    )


class OperationMatcher:
    """URL path (relative to a server) → the spec operation it addresses."""

    def __init__(self, document: SpecDocument) -> None:
        self._routes = [
            (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(op.path)) + "$"), op)
            for op in document.operations
        ]

    def match(self, method: str, path: str) -> Operation | None:
        for pattern, operation in self._routes:
            if operation.method == method.upper() and pattern.match(path):
                return operation
        return None


class CheckedSession(requests.Session):
    """HTTP against one server base (the API's /v1 or the auth host), checking each response against the spec."""

    def __init__(self, base_url: str, document: SpecDocument) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self._matcher = OperationMatcher(document)
        self._checker = ResponseChecker(document)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", 15)
        response = super().request(method, url if "://" in url else self.base_url + url, *args, **kwargs)
        self.check(response)
        return response

    def check(self, response: requests.Response) -> None:
        request = response.request
        path = urlsplit(request.url).path.removeprefix(self._base_path) or "/"
        operation = self._matcher.match(request.method or "GET", path)
        if operation is None:
            return
        if "X-Request-Id" not in response.headers:
            raise violation(operation.operation_id, "X-Request-Id header", response, "missing")
        problems = self._checker.problems(operation, response.status_code, response.headers, response.content)
        if problems:
            raise violation(operation.operation_id, "response conformance", response, "; ".join(problems))
