"""The HTTP server the emulator runs on: Werkzeug's threaded server with a leaner request handler, for the CLI
and for serving an app on a loopback port from inside a process (the contract suite's `mock` target, tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as werkzeug_server


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without two per-request costs that `make bench` found.

    TCP_NODELAY: a response leaves as two writes (head, then body) and Nagle's algorithm would hold the second until
    the client acknowledged the first. No access log of Werkzeug's: ours (`web/request_log.py`) writes one line per
    request with the path only, since query strings can carry tokens, and Werkzeug formats its line, date and all,
    before its logger drops it.
    """

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):  # not TCP (a test's socket pair, say): nothing to tune
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def make_server(host: str, port: int, app: Flask) -> BaseWSGIServer:
    """A thread per connection: each websocket holds one for its whole life, so a pool would cap the streams."""
    return werkzeug_server(host, port, app, threaded=True, request_handler=RequestHandler)


@contextmanager
def serve(app: Flask, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port in a thread; always shut it down. Yields the base URL."""
    server = make_server(host, 0, app)
    # A short poll interval: shutdown() waits up to one interval, which would otherwise add 0.5 s to every stop.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="emulator",
                              daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
