"""The emulator's HTTP server: an asyncio event loop that owns every socket, and a bounded pool of worker threads
that runs the WSGI app. For the CLI, and for serving an app on a loopback port from inside a process (the
contract suite's `mock` target, the tests).

Why not Werkzeug's server, or gunicorn, granian, uvicorn: `make bench` measured them all (docs/performance.md).
Werkzeug's closes every connection and runs a thread per connection; granian cannot hand a WSGI app a websocket;
uvicorn speaks ASGI, which cannot drop a connection without a close frame or hold back one answer; gunicorn's
gthread worker comes closest (its loop accepts and polls, a pool runs the app) but serves neither TLS to a
websocket nor half the requests per second. This server is the small part none of them offered together:
keep-alive HTTP/1.1 parsed by httptools, the app on worker threads (`connection.py`), a websocket bridged to
flask-sock on its own thread (`upgrade.py`), TLS for both on the same port, and a way for faults to delay or drop
one answer.

Accepting is the server's own, so that it can count: past `max_connections` a newcomer is answered 503 with
Retry-After and closed; out of file descriptors, accepting pauses for a moment with one log line (not one per
attempt) and resumes; with TLS, the first byte tells a ClientHello from plain HTTP, which gets nginx's 400
instead of a handshake that would hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from mock_server.serving.connection import DEFAULT_MAX_BODY_BYTES, HttpConnection, Limits, Shared
from mock_server.serving.workers import Workers
from mock_server.serving.wsgi import WsgiApp

log = logging.getLogger("tradefence.server")
_BACKLOG = 1024  # a burst of connections (a load test's 64 at once) waits in the kernel, never refused
_OUT_OF_DESCRIPTORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
_ACCEPT_PAUSE_SECONDS = 0.5  # how long accepting rests when the process is out of descriptors
_REFUSING_AT_MOST = 64  # connections past the cap that are being answered 503 at once; more are closed unanswered
_TLS_HANDSHAKE = 0x16  # the first byte of every TLS record that starts a handshake (RFC 8446 s5.1)
PLAIN_HTTP_TO_TLS = "The plain HTTP request was sent to HTTPS port"  # nginx's words for it
_STOP_SECONDS = 5.0  # at most, for `before_close` to finish while the loop still serves open websockets


class Server:
    """Bound at construction (a busy port fails here, and `server_port` is known at once); `serve_forever` runs the
    loop in the calling thread until `shutdown` (from any thread) or one of its `stop_signals`. `after_answer` runs
    on the loop after each answer has been written: work that should not delay a client (the CLI collects garbage
    there). `tls`: serve HTTPS and WSS on the same port with this context (plain HTTP to it is answered 400)."""

    def __init__(self, host: str, port: int, app: WsgiApp, limits: Limits | None = None, *,
                 after_answer: Callable[[], None] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.socket = socket.create_server((host, port), backlog=_BACKLOG,
                                           family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.server_port: int = self.socket.getsockname()[1]
        self.tls = tls
        self._app = app
        self._limits = limits or Limits()
        self._after_answer = after_answer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._stopped = threading.Event()
        self._shared: Shared | None = None
        self._admitting = 0  # accepted, not yet a connection (a TLS handshake, or the wait for the first byte)
        self._refusing = 0  # the same, for connections past the cap
        self._starved = False  # out of descriptors: said once, until accepting works again
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def serve_forever(self, before_close: Callable[[], None] | None = None, *,
                      stop_signals: Collection[signal.Signals] = ()) -> None:
        """`before_close` runs on a thread at the end, while the loop still relays what open websockets are sent
        (the emulator closes its streams with 1001 there). `stop_signals` (main thread only: the CLI's SIGINT and
        SIGTERM) stop the server as `shutdown` does, handled on the loop: an exception raised from a signal
        handler lands wherever the main thread is, and inside a garbage collector's callback it is swallowed."""
        loop = asyncio.new_event_loop()
        pool = Workers(self._limits.workers, "wsgi")
        self._shared = Shared(self._app, self._limits, loop, pool, self.scheme, self._after_answer)
        try:
            loop.run_until_complete(self._serve(stop_signals))
        finally:
            try:
                loop.run_until_complete(self._wind_down(before_close))
            finally:
                pool.stop()
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

    async def _serve(self, stop_signals: Collection[signal.Signals]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._stop_requested:
                return
            self._loop, self._stop = loop, stop
        for number in stop_signals:
            loop.add_signal_handler(number, stop.set)
        self.socket.setblocking(False)
        loop.add_reader(self.socket.fileno(), self._accept)
        await stop.wait()

    async def _wind_down(self, before_close: Callable[[], None] | None) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, OSError):  # the reader was removed or the socket closed already
            loop.remove_reader(self.socket.fileno())
        self.socket.close()  # newcomers are refused by the kernel from here on
        if before_close is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.run_in_executor(None, before_close), _STOP_SECONDS)
        assert self._shared is not None
        for connection in [*self._shared.connections, *self._shared.refusing]:
            connection.close()
        await asyncio.sleep(0)  # let the closes run their callbacks
        for task in asyncio.all_tasks(loop):
            if task is not asyncio.current_task():
                task.cancel()

    # -- accepting ----------------------------------------------------------------------------------------------

    def _accept(self) -> None:
        loop = self._loop
        assert loop is not None and self._shared is not None
        for _ in range(_BACKLOG):
            try:
                sock, _ = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._pause_accepting(exc)
                    return
                continue  # that one connection failed before we had it (ECONNABORTED): the next may not
            if self._starved:
                self._starved = False
                log.warning("accepting connections again")
            sock.setblocking(False)
            refusal = None
            refusing = self._refusing + len(self._shared.refusing)
            if len(self._shared.connections) + self._admitting + refusing >= self._limits.max_connections:
                if refusing >= _REFUSING_AT_MOST:
                    sock.close()
                    continue
                refusal = (503, "Too many connections; try again later")
                self._refusing += 1
            else:
                self._admitting += 1
            task = loop.create_task(self._admit(sock, refusal))
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of file descriptors: each accept would fail at once, so stop trying for a moment. Said once."""
        loop = self._loop
        assert loop is not None
        if not self._starved:
            self._starved = True
            log.warning("out of file descriptors (%s): not accepting new connections until some close", exc.strerror)
        loop.remove_reader(self.socket.fileno())
        loop.call_later(_ACCEPT_PAUSE_SECONDS, self._resume_accepting)

    def _resume_accepting(self) -> None:
        if self._loop is not None and not self._stop_requested and self.socket.fileno() >= 0:
            self._loop.add_reader(self.socket.fileno(), self._accept)

    async def _admit(self, sock: socket.socket, refusal: tuple[int, str] | None) -> None:
        """Make `sock` a connection: with TLS, by its first byte a TLS one or a plain one that is refused."""
        shared = self._shared
        assert shared is not None
        loop = asyncio.get_running_loop()
        refused = refusal is not None
        tls = None
        try:
            if self.tls is not None:
                first = await _first_byte(loop, sock, self._limits.idle_seconds)
                if first is None:
                    sock.close()
                    return
                if first == _TLS_HANDSHAKE:
                    tls = self.tls
                else:
                    refusal = refusal or (400, PLAIN_HTTP_TO_TLS)
            await loop.connect_accepted_socket(lambda: HttpConnection(shared, refusal), sock, ssl=tls,
                                               ssl_handshake_timeout=self._limits.idle_seconds if tls else None)
        except (OSError, TimeoutError, asyncio.CancelledError):  # a failed handshake: a client that does not trust us
            sock.close()
        finally:
            if refused:
                self._refusing -= 1
            else:
                self._admitting -= 1


async def _first_byte(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> int | None:
    """The connection's first byte, left unread (a TLS handshake must see it); None if it closed or never sent."""
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:  # level-triggered: it may run again before the wait below has woken
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await asyncio.wait_for(readable, timeout)
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(sock.fileno())
    try:
        peeked = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return None
    return peeked[0] if peeked else None


def make_server(host: str, port: int, app: WsgiApp, limits: Limits | None = None, *,
                after_answer: Callable[[], None] | None = None, tls: ssl.SSLContext | None = None) -> Server:
    """Without `limits`, a Flask app's MAX_CONTENT_LENGTH caps the bodies the server buffers: the app must see
    every body it would accept, and refuses the larger ones from their size alone."""
    if limits is None:
        config = getattr(app, "config", {})
        limits = Limits(max_body_bytes=config.get("MAX_CONTENT_LENGTH") or DEFAULT_MAX_BODY_BYTES)
    return Server(host, port, app, limits, after_answer=after_answer, tls=tls)


@contextmanager
def serve(app: WsgiApp, host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None,
          limits: Limits | None = None) -> Iterator[str]:
    """Serve `app` on a free port in a thread; always shut it down. Yields the base URL (https:// with `tls`)."""
    server = make_server(host, 0, app, limits, tls=tls)
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    try:
        shown = f"[{host}]" if ":" in host else host
        yield f"{server.scheme}://{shown}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
