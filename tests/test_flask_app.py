"""The app's Flask class: Flask's behaviour, without two per-request costs the emulator never uses."""

from __future__ import annotations

from typing import Any

import pytest
from flask import session

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
