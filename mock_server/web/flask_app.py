"""Flask, less three things every request paid for and the emulator never uses.

- Werkzeug's `get_wsgi_headers` rebuilds an answer's headers (validating each again) and percent-encodes its
  Location on the way out, 7% of a `POST /v1/orders`. `ApiResponse` hands the headers out as they are when that
  would change nothing, and leaves every other case to Werkzeug.
- `ensure_sync`: Flask asks `inspect` whether each hook and view is a coroutine function, on every request. The
  answer never changes, so it is kept per function (Flask documents this method as the one to override).
- Sessions: the emulator keeps none (OAuth state lives in the domain), yet Flask made a fresh `NullSession` per
  request. One read-only `NullSession` serves them all: it refuses every write, as Flask's own does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import NullSession, SessionInterface
from werkzeug.datastructures import Headers

# A relative Location made of these characters is left as it is by Werkzeug's iri_to_uri (the API's own:
# `/v1/orders/ord_...`); anything else (an OAuth redirect to the client's URI) takes Werkzeug's path.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")

_MAX_KEPT = 4096  # hooks, views and error handlers number in the dozens; a bound in case something passes new ones


class ApiResponse(Response):
    def get_wsgi_headers(self, environ: dict[str, Any]) -> Headers:
        """Werkzeug's result without its copy when it would only copy: no 1xx/204/304 rules to apply, a
        Content-Length already there, no Content-Location, no Location but a plain relative path. The caller
        (`get_wsgi_response`) only turns the headers into the WSGI list."""
        status = self.status_code
        if status < 200 or status in (204, 304) or self.autocorrect_location_header:
            return super().get_wsgi_headers(environ)
        has_length = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "content-length":
                has_length = True
            elif lowered == "content-location" or (lowered == "location" and not _PLAIN_PATH.fullmatch(value)):
                return super().get_wsgi_headers(environ)
        return self.headers if has_length else super().get_wsgi_headers(environ)


class _NoSessions(SessionInterface):
    def __init__(self) -> None:
        self._null = NullSession()

    def make_null_session(self, app: Flask) -> NullSession:
        return self._null

    def open_session(self, app: Flask, request: Request) -> NullSession:
        return self._null

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        """Nothing to save: every session is the null one."""


class EmulatorFlask(Flask):
    response_class = ApiResponse

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_interface = _NoSessions()
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync.get(func)
        if known is None:
            known = self.async_to_sync(func) if iscoroutinefunction(func) else func
            if len(self._sync) < _MAX_KEPT:
                self._sync[func] = known
        return known
