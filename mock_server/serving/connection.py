"""One HTTP/1.1 connection on the event loop: httptools parses, the WSGI app runs inline, the answer goes out whole.

Inline means on the loop's own thread, one request at a time for the whole server. Under the GIL a thread per
request gains nothing for an app whose every request is a few hundred microseconds of Python, and costs a thread
switch each way; so the loop never hands a request to another thread, except a protocol upgrade (the
market-data websocket), which gets its own thread and the raw socket for its whole life (`upgrade.py`).

Keep-alive and pipelining follow RFC 9112: answers leave in request order, one at a time. A request may hold its
answer back (`ResponseControls.delay`, for latency faults) without holding up any other connection. Limits keep
a bad client from costing more than its own connection: a request head over `max_head_bytes`, a body over
`max_body_bytes` (the app answers 413 from the declared or counted size; the connection then closes), and
`idle_seconds` without a complete request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httptools

from mock_server.serving import wsgi
from mock_server.serving.upgrade import start_upgrade
from mock_server.serving.wsgi import Answer, ParsedRequest, WsgiApp

log = logging.getLogger("tradefence.server")


DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Long enough that a client reusing a pooled connection rarely races the close (urllib3 does not retry a POST
    # on a connection the server closed); short enough that abandoned connections do not pile up.
    idle_seconds: float = 75.0


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing: the request already known is answered, then we close."""


class _Controls:
    """`ResponseControls` for one request answered on the loop."""

    __slots__ = ("delay_seconds", "dropped")

    def __init__(self) -> None:
        self.delay_seconds = 0.0
        self.dropped = False

    def delay(self, seconds: float) -> None:
        self.delay_seconds += max(seconds, 0.0)

    def drop(self) -> None:
        self.dropped = True


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: WsgiApp, limits: Limits, connections: set[HttpConnection],
                 after_answer: Callable[[], None] | None = None) -> None:
        self._app = app
        self._after_answer = after_answer  # run after each answer has gone out (the CLI's collector policy)
        self._limits = limits
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._server: tuple[str, int] = ("", 0)
        self._peer: tuple[str, int] = ("", 0)
        self._ready: collections.deque[ParsedRequest] = collections.deque()
        self._current: ParsedRequest | None = None
        self._url = bytearray()
        self._head_bytes = 0
        self._waiting = False  # an answer is being held back (delay): later requests wait their turn
        self._write_paused = False
        self._closing = False
        self._unparsed = False  # parsing stopped: what follows in the stream is never read
        self._refusal: tuple[int, str] | None = None  # sent, then closed, once the requests before it are answered
        self._idle: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # when the wait for a complete request began; None while one is handled

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._server = transport.get_extra_info("sockname")[:2]
        self._peer = transport.get_extra_info("peername")[:2]
        self._connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        self._ready.clear()
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        if self._closing or self._unparsed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0]:])
            return
        except _Stop:
            pass
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _Stop):  # a bug of ours: say so, and end only this connection
                log.error("failed to parse a request", exc_info=exc.__context__ or exc)
                self._abort()
                return
        except httptools.HttpParserError as exc:
            self._stop_reading(400, f"Malformed HTTP request: {exc}")
        self._answer_ready()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._answer_ready()

    def close(self) -> None:
        """End the connection at once (server shutdown)."""
        if self._transport is not None:
            self._transport.close()

    # -- httptools callbacks ------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._head_bytes = 0
        self._current = ParsedRequest("", b"", b"", "1.1", [])

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._limits.max_head_bytes:
            self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.headers.append((name, value))
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > self._limits.max_head_bytes:
            self._head_too_large()

    def on_headers_complete(self) -> None:
        request = self._current
        assert request is not None
        parser = self._parser
        request.method = parser.get_method().decode("ascii")
        request.http_version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        try:
            url = httptools.parse_url(bytes(self._url))
        except httptools.HttpParserInvalidURLError:
            self._stop_reading(400, "Malformed HTTP request: bad request target")
            raise _Stop from None
        request.path, request.query = url.path or b"/", url.query or b""
        if parser.should_upgrade():
            return
        declared, expects_continue = _framing(request.headers)
        if declared is not None and declared > self._limits.max_body_bytes:
            request.body_size = declared  # answered 413 from the declared size, unread
            self._finish_early(request)
        if expects_continue and request.http_version == "1.1":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        request = self._current
        assert request is not None
        request.body_size += len(body)
        if request.body_size > self._limits.max_body_bytes:
            self._finish_early(request)
        request.body += body

    def on_message_complete(self) -> None:
        if self._parser.should_upgrade():
            return  # `_upgrade` takes the request from here
        request, self._current = self._current, None
        if request is not None:
            self._ready.append(request)
            self._idle_since = None  # not idle until it is answered

    # -- answering ----------------------------------------------------------------------------------------------

    def _head_too_large(self) -> None:
        self._stop_reading(431, "Request head too large")
        raise _Stop

    def _finish_early(self, request: ParsedRequest) -> None:
        """Answer what we have (the app refuses it) and read no further: the rest of the stream is unparsed."""
        request.keep_alive = False
        self._ready.append(request)
        self._stop_reading()
        raise _Stop

    def _stop_reading(self, status: int | None = None, message: str = "") -> None:
        """Parse nothing more; answer the requests already complete, then refuse (if `status`) and close. Inside a
        parser callback, raise `_Stop` after it, so that the parser stops at once."""
        self._current = None
        self._unparsed = True
        if status is not None:
            self._refusal = (status, message)

    def _answer_ready(self) -> None:
        while self._ready and not self._waiting and not self._write_paused and not self._closing:
            request = self._ready.popleft()
            controls = _Controls()
            try:
                answer = wsgi.call(self._app, wsgi.environ(request, self._server, self._peer, controls))
            except Exception:
                log.exception("the app failed on %s %s", request.method, request.path.decode("latin-1"))
                answer = Answer("500 Internal Server Error", [("Content-Type", "text/plain")], b"Internal error\n")
                request.keep_alive = False
            if controls.delay_seconds:
                _close(request, answer)  # the app's bookkeeping now: only the answer waits
                self._waiting = True
                if controls.dropped:
                    self._loop.call_later(controls.delay_seconds, self._abort)
                else:
                    self._loop.call_later(controls.delay_seconds, self._send_held, request, answer)
                return
            if controls.dropped:
                _close(request, answer)
                self._abort()
                return
            self._send(request, answer)
            _close(request, answer)  # after the write: the client has its answer while the app finishes up
            if self._after_answer is not None:
                self._after_answer()
        if self._refusal is not None and not self._ready and not self._waiting and not self._closing:
            self._refuse(*self._refusal)
            return
        if self._ready and not self._closing:
            self._transport.pause_reading()  # type: ignore[union-attr]
        elif not self._closing:
            self._transport.resume_reading()  # type: ignore[union-attr]

    def _send_held(self, request: ParsedRequest, answer: Answer) -> None:
        self._waiting = False
        if not self._closing:
            self._send(request, answer)
            self._answer_ready()

    def _send(self, request: ParsedRequest, answer: Answer) -> None:
        head = wsgi.head(answer, method=request.method, keep_alive=request.keep_alive)
        self._write(head + answer.body if request.method != "HEAD" else head)
        if not request.keep_alive:
            self._closing = True
            self._transport.close()  # type: ignore[union-attr]  # after what is written has gone
        elif not self._ready:
            self._arm_idle()  # the next request has `idle_seconds` to arrive whole

    def _refuse(self, status: int, message: str) -> None:
        """A request that never reached the app: plain text, then close (the stream cannot be trusted after)."""
        reason = {400: "Bad Request", 431: "Request Header Fields Too Large"}[status]
        body = (message + "\n").encode()
        self._send(ParsedRequest("GET", b"", b"", "1.1", [], keep_alive=False),
                   Answer(f"{status} {reason}", [("Content-Type", "text/plain; charset=utf-8")], body))

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()

    def _arm_idle(self) -> None:
        """The next request has `idle_seconds` to arrive whole. One timer per connection, moved lazily: answering
        a request only notes the time (a timer made and cancelled per request cost more than the rest of this
        class's bookkeeping), and a timer that fires early waits out the remainder."""
        self._idle_since = self._loop.time()
        if self._idle is None:
            self._idle = self._loop.call_at(self._idle_since + self._limits.idle_seconds, self._idle_timeout)

    def _idle_timeout(self) -> None:
        """No complete request for `idle_seconds` (an idle keep-alive connection, or one sending slowly): close."""
        self._idle = None
        since = self._idle_since
        if since is None or self._waiting or self._ready or self._closing:
            return  # busy: answering re-arms it
        deadline = since + self._limits.idle_seconds
        if self._loop.time() >= deadline:
            self.close()
        else:
            self._idle = self._loop.call_at(deadline, self._idle_timeout)

    # -- upgrade ------------------------------------------------------------------------------------------------

    def _upgrade(self, leftover: bytes) -> None:
        """Hand the socket to a thread of its own. A client sends nothing more before the server's 101, so bytes
        after the request mean a confused client: refuse them."""
        request, self._current = self._current, None
        transport = self._transport
        assert transport is not None
        if request is None or leftover or self._ready or self._waiting:
            self._unparsed = True
            self._refusal = (400, "Unexpected data with an Upgrade request")
            self._answer_ready()
            return
        raw = transport.get_extra_info("socket")
        # A duplicate descriptor outlives the transport, which closes its own without shutting the connection down.
        handed = socket.socket(fileno=os.dup(raw.fileno()))
        self._closing = True
        transport.abort()
        handed.setblocking(True)
        start_upgrade(self._app, request, self._server, self._peer, handed)


def _close(request: ParsedRequest, answer: Answer) -> None:
    """The body's `close()`. A failure there comes after the answer (if any) went out: log it, keep serving."""
    try:
        answer.close()
    except Exception:
        log.exception("the app failed closing its answer to %s %s", request.method, request.path.decode("latin-1"))


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """The declared Content-Length (None when absent) and whether the client expects 100 Continue, in one pass."""
    length: int | None = None
    expects_continue = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None  # llhttp has refused a malformed one already
        elif lowered == b"expect":
            expects_continue = value.lower() == b"100-continue"
    return length, expects_continue


def connection_factory(app: WsgiApp, limits: Limits, connections: set[HttpConnection],
                       after_answer: Callable[[], None] | None = None) -> Any:
    return lambda: HttpConnection(app, limits, connections, after_answer)
