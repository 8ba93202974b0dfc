"""A real emulator on a free loopback port (`serve`), and an HTTP session that checks every response against the
spec."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from flask import Flask
from werkzeug.exceptions import HTTPException

from mock_server.serving import serve
from mock_server.spec.responses import ResponseChecker

__all__ = ["SpecSession", "serve"]


class SpecSession(requests.Session):
    """A requests session that fails the test on any response the spec does not describe."""

    def __init__(self, base_url: str, app: Flask) -> None:
        super().__init__()
        self.base_url = base_url
        self._app = app
        self._checker = ResponseChecker(app.extensions["tradefence.spec"])
        self.checked = 0

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:  # type: ignore[override]
        kwargs["allow_redirects"] = False  # the tests look at redirects themselves
        kwargs.setdefault("timeout", 10)
        response = super().request(method, url if "://" in url else self.base_url + url, *args, **kwargs)
        self.check(method, response)
        return response

    def check(self, method: str, response: requests.Response) -> None:
        assert "X-Request-Id" in response.headers, f"{method} {response.url}: no X-Request-Id"
        operation = self._operation(method, urlsplit(response.url).path)
        if operation is None:  # unknown route or method: the envelope is all we can check
            body = response.json()
            assert set(body) == {"error"} and {"code", "type", "message"} <= set(body["error"]), body
            return
        problems = self._checker.problems(operation, response.status_code, response.headers, response.content)
        assert not problems, f"{method} {response.url} -> {response.status_code}: {problems}\n{response.text[:500]}"
        self.checked += 1

    def _operation(self, method: str, path: str):
        adapter = self._app.url_map.bind("localhost")
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            return None
        api = self._app.extensions["tradefence.api"]
        return api.operation_for(endpoint)
