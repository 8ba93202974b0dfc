"""HTTP whose every response is checked against openapi.yaml, with failures a CI reader can act on.

One session for the contract suite and for the emulator's own tests (`tests/`): every response must carry
`X-Request-Id`; one that answers a spec operation must be documented for it (status, headers, body); one that
answers no operation (an unknown route or method) must be the error envelope. A failure names the operation, the
check, what came back, and a curl command that reproduces the request with `$TOKEN` in place of the token.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from mock_server.spec.document import Operation, SpecDocument
from mock_server.spec.responses import ResponseChecker

# Form fields of the token endpoint that are secrets: the reproducer names a shell variable instead.
SECRET_FIELDS = {"refresh_token": "$REFRESH_TOKEN", "client_secret": "$CLIENT_SECRET", "code": "$CODE",
                 "code_verifier": "$CODE_VERIFIER", "access_token": "$TOKEN"}
QUIET_HEADERS = ("content-length", "accept-encoding", "connection", "user-agent", "accept")


class ContractViolation(AssertionError):
    """One broken contract: the operation, the check, what was expected and what came back, and a reproducer."""

    def __init__(self, operation: str, check: str, expected: str, actual: str = "", reproducer: str = "") -> None:
        self.operation, self.check, self.expected, self.actual, self.reproducer = (
            operation, check, expected, actual, reproducer)
        lines = [f"[{operation}] {check}: {expected}"]
        if actual:
            lines.append(f"  got {actual}")
        if reproducer:
            lines.append(f"  reproduce: {reproducer}")
        super().__init__("\n".join(lines))


def curl(request: requests.PreparedRequest) -> str:
    """The request as a curl command; the bearer token becomes `$TOKEN` and token-endpoint secrets shell
    variables, so the command works once they are exported and never shows them."""
    parts = ["curl", "-X", shlex.quote(request.method or "GET")]
    for name, value in request.headers.items():
        if name.lower() in QUIET_HEADERS:
            continue
        if name.lower() == "authorization":
            parts += ["-H", f'"{name}: {value.split(" ")[0]} $TOKEN"']
            continue
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if request.body:
        body = request.body.decode(errors="replace") if isinstance(request.body, bytes) else str(request.body)
        if "x-www-form-urlencoded" in str(request.headers.get("Content-Type", "")):
            fields = [f"{key}={SECRET_FIELDS.get(key, value)}" if key in SECRET_FIELDS else
                      shlex.quote(f"{key}={value}") for key, value in parse_qsl(body, keep_blank_values=True)]
            for field in fields:
                parts += ["--data-urlencode", f'"{field}"' if "$" in field else field]
        else:
            parts += ["-d", shlex.quote(body[:2000])]
    parts.append(shlex.quote(request.url or ""))
    return " ".join(parts)


def request_path(request: requests.PreparedRequest) -> str:
    """The URL path a prepared request goes to (requests types its URL as str or bytes)."""
    url = request.url or ""
    return urlsplit(url if isinstance(url, str) else url.decode()).path


def violation(operation: str, check: str, response: requests.Response, detail: str) -> ContractViolation:
    """A violation seen in `response`: `detail` says what was expected."""
    return ContractViolation(operation, check, detail, f"{response.status_code}: {response.text[:400]}",
                             curl(response.request))


class OperationMatcher:
    """A request's method and URL path → the spec operation it addresses, wherever the target serves each group.

    The spec's API operations live under the API base (`/v1` on the emulator, the path of `TRADEFENCE_API_URL`
    elsewhere); the auth server's and the control plane's under their own server root (the auth URL's path).
    A path is the most literal template it matches (`/_mock/webhooks/deliveries`, never
    `/_mock/webhooks/{endpointId}`), whatever the method: a method that template lacks addresses no operation.
    """

    def __init__(self, document: SpecDocument, *, api_prefix: str = "/v1", root_prefix: str = "") -> None:
        templates: dict[str, list[Operation]] = {}
        for operation in document.operations:
            group = operation.url_path.removesuffix(operation.path)
            templates.setdefault((api_prefix if group else root_prefix).rstrip("/") + operation.path,
                                 []).append(operation)
        self._templates = sorted(
            ((served.count("{"), re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(served)) + "$"), ops)
             for served, ops in templates.items()), key=lambda entry: entry[0])

    def match(self, method: str, path: str) -> Operation | None:
        for _, pattern, operations in self._templates:
            if pattern.match(path):
                return next((op for op in operations if op.method == method.upper()), None)
        return None


class CheckedSession(requests.Session):
    """HTTP against one server base (the API's, the auth server's, or an emulator's root), checking each response.

    `checked` counts the responses checked against an operation. Relative URLs are joined to `base_url`;
    redirects are never followed (tests look at them). `transport` (a `requests` adapter) carries every request
    when given: the contract suite's polite, guarded one.
    """

    def __init__(self, base_url: str, document: SpecDocument, *, matcher: OperationMatcher | None = None,
                 transport: requests.adapters.BaseAdapter | None = None) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self._matcher = matcher or OperationMatcher(document)
        self._checker = ResponseChecker(document)
        self.checked = 0
        if transport is not None:
            self.mount("http://", transport)
            self.mount("https://", transport)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", 15)
        url = url.decode() if isinstance(url, bytes) else url
        response = super().request(method, url if "://" in url else self.base_url + url, *args, **kwargs)
        self.check(response)
        return response

    def check(self, response: requests.Response) -> None:
        request = response.request
        method = request.method or "GET"
        path = request_path(request)
        operation = self._matcher.match(method, path)
        label = operation.operation_id if operation else f"{method} {path}"
        if "X-Request-Id" not in response.headers:
            raise violation(label, "X-Request-Id header", response, "missing")
        if operation is None:  # an unknown route or method: the error envelope is all the spec promises
            if not _is_error_envelope(response):
                raise violation(label, "error envelope", response, "an unknown route or method must answer "
                                '{"error": {"code", "type", "message"}}')
            return
        problems = self._checker.problems(operation, response.status_code, response.headers, response.content)
        if problems:
            raise violation(label, "response conformance", response, "; ".join(problems))
        self.checked += 1


def _is_error_envelope(response: requests.Response) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return (isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], dict)
            and {"code", "type", "message"} <= set(body["error"]))
