"""Serving an app on a loopback port from inside a process (the contract suite's `mock` target, tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serve(app: Flask, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port in a thread; always shut it down. Yields the base URL."""
    server = make_server(host, 0, app, threaded=True)
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
