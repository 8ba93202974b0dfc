"""The emulator's HTTP server: Werkzeug's, with Nagle off and without Werkzeug's own access log."""

from __future__ import annotations

import logging
import socket

import pytest
import requests
from flask import Flask

from mock_server.serving import RequestHandler, serve


def test_connections_send_without_waiting_for_acknowledgements() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as _client:
        accepted, _ = listener.accept()
        with accepted:
            handler = RequestHandler.__new__(RequestHandler)  # setup() alone: what runs on every new connection
            handler.request = accepted
            handler.setup()
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            handler.finish()


def test_werkzeug_logs_no_access_line_of_its_own(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """Ours logs the path only; Werkzeug's would log the query string, where a stream token may be."""
    with caplog.at_level(logging.INFO), serve(app) as url:
        assert requests.get(f"{url}/_mock/clock?access_token=secret", timeout=5).status_code == 200
    assert not [record for record in caplog.records if record.name == "werkzeug"]
    assert any("/_mock/clock" in record.getMessage() for record in caplog.records)
    assert "secret" not in caplog.text
