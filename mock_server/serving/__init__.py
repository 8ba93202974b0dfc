"""The emulator's HTTP server (`server.py`); `controls.py` is what it offers the app beyond WSGI."""

from mock_server.serving.server import Server, make_server, serve

__all__ = ["Server", "make_server", "serve"]
