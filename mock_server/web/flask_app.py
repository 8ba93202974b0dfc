"""Flask, less four things every request paid for and the emulator never uses.

- Werkzeug's `get_wsgi_headers` rebuilds an answer's headers (validating each again) and percent-encodes its
  Location on the way out, 7% of a `POST /v1/orders`. `ApiResponse` hands the headers out as they are when that
  would change nothing, and leaves every other case to Werkzeug.
- `ensure_sync`: Flask asks `inspect` whether each hook and view is a coroutine function, on every request. The
  answer never changes, so it is kept per function (Flask documents this method as the one to override).
- Sessions: the emulator keeps none (OAuth state lives in the domain), yet Flask made a fresh `NullSession` per
  request. One read-only `NullSession` serves them all: it refuses every write, as Flask's own does.
- The URL adapter: Werkzeug's `bind_to_environ` works the host out twice and IDNA-encodes it through Python's
  codec, about 4% of a `GET /v1/orders/{id}`, although clients send the same Host every time. The emulator routes
  neither by host nor by subdomain, so the adapter is built as `Map.bind` builds it, with the host's part kept per
  Host header; any other configuration takes Flask's own path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import NullSession, SessionInterface
from werkzeug.datastructures import Headers
from werkzeug.exceptions import BadHost
from werkzeug.routing import MapAdapter
from werkzeug.wsgi import get_host

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

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Flask's adapter (`bind_to_environ`, then `Map.bind`), for a request with no SERVER_NAME, TRUSTED_HOSTS,
        subdomain or host matching configured: the emulator's case. `tests/test_flask_app.py` holds it to
        Flask's for every attribute the adapter has."""
        config = self.config
        if (request is None or config["SERVER_NAME"] is not None or config["TRUSTED_HOSTS"] is not None
                or self.subdomain_matching or self.url_map.host_matching):
            return super().create_url_adapter(request)
        env = request.environ
        scheme = env["wsgi.url_scheme"]
        host, server_name = _host_names(scheme, env.get("HTTP_HOST"), env.get("SERVER_NAME"), env.get("SERVER_PORT"))
        request.host = host  # Flask sets it here too, so later reads find it
        if "HTTP_UPGRADE" in env and _is_websocket(env):
            scheme = "wss" if scheme == "https" else "ws"
        script_name, path_info = _wsgi_text(env.get("SCRIPT_NAME")), _wsgi_text(env.get("PATH_INFO"))
        return MapAdapter(self.url_map, server_name, "/" if script_name is None else script_name,
                          self.url_map.default_subdomain or "", scheme, "/" if path_info is None else path_info,
                          env["REQUEST_METHOD"], _wsgi_text(env.get("QUERY_STRING")))

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        known = self._sync.get(func)
        if known is None:
            known = self.async_to_sync(func) if iscoroutinefunction(func) else func
            if len(self._sync) < _MAX_KEPT:
                self._sync[func] = known
        return known


@functools.lru_cache(maxsize=256)
def _host_names(scheme: str, host_header: str | None, server_name: str | None,
                server_port: str | None) -> tuple[str, str]:
    """The request's host (`get_host`) and the adapter's server name (`Map.bind`: lowercase, the name IDNA-encoded
    without its port). A name IDNA refuses is `BadHost` (400), as in Werkzeug; refusals are not kept."""
    environ: dict[str, Any] = {"wsgi.url_scheme": scheme}
    for key, value in (("HTTP_HOST", host_header), ("SERVER_NAME", server_name), ("SERVER_PORT", server_port)):
        if value is not None:
            environ[key] = value
    host = get_host(environ)
    name, port_sep, port = host.lower().partition(":")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadHost() from exc
    return host, f"{name}{port_sep}{port}"


def _is_websocket(env: dict[str, Any]) -> bool:
    """A websocket handshake, as `bind_to_environ` tells one (its rules match only the `ws`/`wss` scheme)."""
    return (env.get("HTTP_UPGRADE", "").lower() == "websocket"
            and any(token.strip(" \t") == "upgrade" for token in env.get("HTTP_CONNECTION", "").lower().split(",")))


def _wsgi_text(value: str | None) -> str | None:
    """PEP 3333's latin-1 environ string back to the UTF-8 text the client sent (Werkzeug's decoding)."""
    return None if value is None else value.encode("latin1").decode(errors="replace")
