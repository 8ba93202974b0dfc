"""The app's Flask class: Flask's behaviour, without per-request costs the emulator never uses."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, session
from werkzeug.exceptions import BadHost
from werkzeug.test import EnvironBuilder

from mock_server.web.flask_app import EmulatorFlask


def test_a_sync_function_is_run_as_it_is() -> None:
    app = EmulatorFlask("t")

    def view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view  # and again, from what was kept


def test_a_coroutine_function_still_goes_through_async_to_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    app = EmulatorFlask("t")
    wrapped: list[Any] = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: wrapped.append(func) or "wrapped")

    async def view() -> str:
        return "ok"

    assert app.ensure_sync(view) == "wrapped"
    assert app.ensure_sync(view) == "wrapped" and wrapped == [view]  # decided once


def test_sessions_read_empty_and_refuse_writes_as_flasks_null_session_does() -> None:
    app = EmulatorFlask("t")
    app.testing = True  # the refusal propagates instead of becoming a 500

    @app.get("/read")
    def read() -> str:
        return str(session.get("user"))

    @app.get("/write")
    def write() -> str:
        session["user"] = "alice"
        return "written"

    client = app.test_client()
    assert client.get("/read").get_data(as_text=True) == "None"
    with pytest.raises(RuntimeError, match="no secret key"):
        client.get("/write")
    assert client.get("/read").get_data(as_text=True) == "None"
    assert "Set-Cookie" not in client.get("/read").headers


def wsgi_output(response: Any, method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes]:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path="/v1/orders", method=method).get_environ()
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.update(status=status, headers=headers)
        return lambda data: None

    body = b"".join(response(environ, start_response))
    return seen["status"], seen["headers"], body


ANSWERS: list[dict[str, Any]] = [
    {"response": b'{"id":"ord_1"}', "status": 200, "mimetype": "application/json"},
    {"response": b"{}", "status": 201, "headers": {"Location": "/v1/orders/ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"}},
    {"response": b"", "status": 302, "headers": {"Location": "http://localhost:5000/cb?code=a b&state=\u00e9"}},
    {"response": b"", "status": 302, "headers": {"Location": "/caf\u00e9?x=1"}},
    {"response": b"", "status": 302, "headers": {"Location": "/v1/orders?cursor=a b"}},
    {"response": b"", "status": 204},
    {"response": b"", "status": 304, "headers": {"ETag": "x", "Content-Type": "text/plain"}},
    {"response": b"<p>hi</p>", "status": 200, "headers": {"Content-Location": "/caf\u00e9"}},
    {"response": (chunk for chunk in (b"a", b"b")), "status": 200},  # no length known in advance
    {"response": b"x", "status": 100},
]


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda answer: str(answer["status"]) + str(answer.get("headers", "")))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_answers_go_out_exactly_as_flasks_response_sends_them(answer: dict[str, Any], method: str) -> None:
    from flask import Response

    from mock_server.web.flask_app import ApiResponse

    def build(cls: type) -> Any:
        kwargs = dict(answer)
        if not isinstance(kwargs["response"], bytes):
            kwargs["response"] = (chunk for chunk in (b"a", b"b"))
        return cls(**kwargs)

    assert wsgi_output(build(ApiResponse), method) == wsgi_output(build(Response), method)


ADAPTER_FIELDS = ("server_name", "script_name", "subdomain", "url_scheme", "path_info", "default_method",
                  "query_args")
WEBSOCKET = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade"}


@pytest.mark.parametrize("options", [
    {"path": "/v1/orders/ord_1", "headers": {"Host": "127.0.0.1:8080"}},
    {"path": "/v1/orders", "method": "POST", "query_string": "a=1&b=%C3%A9", "headers": {"Host": "LocalHost:80"}},
    {"path": "/_mock", "base_url": "https://example.test:443/"},
    {"path": "/caf\u00e9/\u00fcber", "headers": {"Host": "b\u00fccher.example"}},  # IDNA, UTF-8 path
    {"path": "/market-data", "headers": {**WEBSOCKET, "Host": "127.0.0.1:9000"}},
    {"path": "/market-data", "base_url": "https://secure.test/", "headers": WEBSOCKET},
    {"path": "/market-data", "headers": {"Upgrade": "websocket", "Connection": "close"}},  # not a handshake
    {"path": "/x", "base_url": "http://localhost/prefix"},  # a script name
    {"path": "", "headers": {"Host": "127.0.0.1"}},
])
def test_the_url_adapter_is_the_one_flask_builds(options: dict[str, Any]) -> None:
    app = EmulatorFlask("t")
    request = app.request_class(EnvironBuilder(**options).get_environ())
    flasks = app.request_class(request.environ)
    ours, theirs = app.create_url_adapter(request), Flask.create_url_adapter(app, flasks)
    assert ours is not None and theirs is not None
    assert [getattr(ours, name) for name in ADAPTER_FIELDS] == [getattr(theirs, name) for name in ADAPTER_FIELDS]
    assert ours.map is theirs.map and request.host == flasks.host


def test_a_host_idna_refuses_is_a_bad_host_as_in_flask() -> None:
    app = EmulatorFlask("t")
    environ = EnvironBuilder(path="/", headers={"Host": "a..b"}).get_environ()
    with pytest.raises(BadHost):
        Flask.create_url_adapter(app, app.request_class(environ))
    with pytest.raises(BadHost):
        app.create_url_adapter(app.request_class(environ))


def test_other_configurations_take_flasks_own_path() -> None:
    app = EmulatorFlask("t", subdomain_matching=True)
    app.config["SERVER_NAME"] = "example.test"
    request = app.request_class(EnvironBuilder(path="/", base_url="http://api.example.test/").get_environ())
    adapter = app.create_url_adapter(request)
    assert adapter is not None and adapter.subdomain == "api"
