"""The app's Flask class: Flask's behaviour, without per-request costs the emulator never uses."""

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

