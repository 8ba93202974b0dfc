"""The emulator's HTTP server: an asyncio event loop in one thread, for the CLI and for serving an app on a loopback
port from inside a process (the contract suite's `mock` target, the tests).

Why not Werkzeug's server, or gunicorn, granian, uvicorn: `make bench` measured them all (docs/performance.md).
Werkzeug's closes every connection and runs a thread per connection; on two cores a bare Flask app peaks there
below Prism. granian serves REST fast but cannot hand a WSGI app a websocket; uvicorn speaks ASGI, which cannot
drop a connection without a close frame or hold back one answer without holding the loop. This server is the
small part that none of them offered together: keep-alive HTTP/1.1 parsed by httptools, the app called inline, a
websocket's raw socket handed to flask-sock on its own thread, and a way for faults to delay or drop one answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mock_server.serving.connection import DEFAULT_MAX_BODY_BYTES, HttpConnection, Limits, connection_factory
from mock_server.serving.wsgi import WsgiApp

_BACKLOG = 1024  # a burst of connections (a load test's 64 at once) waits in the kernel, never refused


class Server:
    """Bound at construction (a busy port fails here, and `server_port` is known at once); `serve_forever` runs the
    loop in the calling thread until `shutdown` (from any thread) or Ctrl-C. `after_answer` runs on the loop after
    each answer has been written and its body closed: work that should not delay a client (the CLI collects
    garbage there)."""

    def __init__(self, host: str, port: int, app: WsgiApp, limits: Limits | None = None, *,
                 after_answer: Callable[[], None] | None = None) -> None:
        self.socket = socket.create_server((host, port), backlog=_BACKLOG)
        self.server_port: int = self.socket.getsockname()[1]
        self._app = app
        self._limits = limits or Limits()
        self._after_answer = after_answer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._stopped = threading.Event()
        self._connections: set[HttpConnection] = set()

    def serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            for connection in list(self._connections):
                connection.close()
            loop.run_until_complete(asyncio.sleep(0))  # let the closes run their callbacks
            loop.close()
            self._stopped.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving: the listening socket stops accepting and open connections close. Waits for the loop."""
        with self._lock:
            self._stop_requested = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not self._stopped.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it has stopped already
                loop.call_soon_threadsafe(stop.set)
            self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()

    async def _serve(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            if self._stop_requested:
                return
            self._loop, self._stop = asyncio.get_running_loop(), stop
        factory = connection_factory(self._app, self._limits, self._connections, self._after_answer)
        listener = await asyncio.get_running_loop().create_server(factory, sock=self.socket, backlog=_BACKLOG)
        async with listener:
            await stop.wait()


def make_server(host: str, port: int, app: WsgiApp, limits: Limits | None = None, *,
                after_answer: Callable[[], None] | None = None) -> Server:
    """Without `limits`, a Flask app's MAX_CONTENT_LENGTH caps the bodies the server buffers: the app must see
    every body it would accept, and refuses the larger ones from their size alone."""
    if limits is None:
        config = getattr(app, "config", {})
        limits = Limits(max_body_bytes=config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BODY_BYTES)
    return Server(host, port, app, limits, after_answer=after_answer)


@contextmanager
def serve(app: WsgiApp, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port in a thread; always shut it down. Yields the base URL."""
    server = make_server(host, 0, app)
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
