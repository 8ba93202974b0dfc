"""One HTTP/1.1 connection on the event loop: httptools parses, a worker thread runs the app, the loop writes.

The loop owns the socket: it reads, parses, enforces the limits and writes; it never runs the app. Each complete
request goes to the server's bounded pool of worker threads (`Shared.pool`), one request per connection at a
time, so answers leave in request order (RFC 9112 pipelining) while other connections' requests run beside it.
A slow request therefore costs its own connection a worker, not everyone the loop: under the GIL the others
still share the CPU with it, but CPython's switch interval bounds how long any one thread keeps it.

A request may hold its answer back (`ResponseControls.delay`, latency faults) or drop the connection; either
happens on the loop, after the worker is free again. Limits keep a bad client from costing more than its own
connection: the request head's bytes are counted as they arrive (`max_head_bytes`, 431), bodies past
`max_body_bytes` are answered 413 from the declared or counted size and not kept, and `idle_seconds` without a
complete request closes the connection. A protocol upgrade (the market-data websocket) becomes a `Bridge`
(`upgrade.py`): the app's websocket code runs on a thread of its own and talks to this transport through a
socket pair, so the same code serves ws:// and wss://.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

from mock_server.serving import upgrade, wsgi
from mock_server.serving.workers import Workers
from mock_server.serving.wsgi import Answer, Body, ParsedRequest, WsgiApp

log = logging.getLogger("tradefence.server")


DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
RETRY_AFTER_SECONDS = 1  # what a client refused for a full server is told to wait
PARSE_AHEAD = 16  # complete requests a connection may have waiting before the rest of its bytes wait unparsed
PARSE_SLICE = 8 * 1024  # bytes parsed at a time, so that parsing stops soon after PARSE_AHEAD is reached
REFUSAL_IDLE_SECONDS = 5.0  # how long a connection that is to be refused may take to send its request head


@dataclass(frozen=True, slots=True)
class Limits:
    max_head_bytes: int = 64 * 1024
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Long enough that a client reusing a pooled connection rarely races the close (urllib3 does not retry a POST
    # on a connection the server closed); short enough that abandoned connections do not pile up.
    idle_seconds: float = 75.0
    # Open connections (websockets included) and websocket sessions at once; past either, a newcomer is refused
    # politely (503 with Retry-After; a websocket gets its handshake and close code 1013) and the others go on.
    max_connections: int = 2048
    max_websockets: int = 256
    workers: int = 16  # threads running the app: more requests at once than this wait their turn in a queue


@dataclass(slots=True)
class Shared:
    """What every connection of one server shares."""

    app: WsgiApp
    limits: Limits
    loop: asyncio.AbstractEventLoop
    pool: Workers
    scheme: str = "http"
    after_answer: Callable[[], None] | None = None  # run on the loop after each answer is written
    connections: set[HttpConnection] = field(default_factory=set)
    refusing: set[HttpConnection] = field(default_factory=set)  # answering one refusal, then closing
    bridges: set[upgrade.Bridge] = field(default_factory=set)


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing: the request already known is answered, then we close."""


class _Controls:
    """`ResponseControls` for one request: set by the app on its worker, acted on by the loop afterwards."""

    __slots__ = ("delay_seconds", "dropped")

    def __init__(self) -> None:
        self.delay_seconds = 0.0
        self.dropped = False

    def delay(self, seconds: float) -> None:
        self.delay_seconds += max(seconds, 0.0)

    def drop(self) -> None:
        self.dropped = True


class HttpConnection(asyncio.Protocol):
    """`refusal`: answer every request with this status and message, then close (a full server, or plain HTTP
    sent to the TLS port)."""

    def __init__(self, shared: Shared, refusal: tuple[int, str] | None = None) -> None:
        self._shared = shared
        self._limits = shared.limits
        self._loop = shared.loop
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._server: tuple[str, int] = ("", 0)
        self._peer: tuple[str, int] = ("", 0)
        self._ready: collections.deque[ParsedRequest] = collections.deque()
        self._current: ParsedRequest | None = None
        self._url = bytearray()
        self._refuse_all = refusal
        self._busy = False  # a request of this connection is with a worker, or its answer is held back
        self._write_paused = False
        self._closing = False
        self._unparsed = False  # parsing stopped: what follows in the stream is never read
        self._refusal: tuple[int, str] | None = None  # sent, then closed, once the requests before it are answered
        self._idle: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # when the wait for a complete request began; None while one is handled
        self._bridge: upgrade.Bridge | None = None
        self._unfed = b""  # received, not yet parsed (see `_feed`)
        # Counting the head as it arrives (see `_count_head`).
        self._head_open = False  # between a request's first byte and the end of its head
        self._head_bytes = 0  # the parts of the open head httptools has reported: URL, complete header lines
        self._url_bytes = 0
        self._header_seen = False
        self._line = 0  # bytes since the last newline in the stream
        self._body_tail = 0  # of those, how many were the body of the request before the open head
        self._carry = 0

    # -- asyncio.Protocol ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._server = transport.get_extra_info("sockname")[:2]
        self._peer = transport.get_extra_info("peername")[:2]
        (self._shared.refusing if self._refuse_all else self._shared.connections).add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._shared.connections.discard(self)
        self._shared.refusing.discard(self)
        self._closing = True
        for request in self._ready:
            request.body.close()
        self._ready.clear()
        if self._current is not None:
            self._current.body.close()
        if self._idle is not None:
            self._idle.cancel()
        if self._bridge is not None:
            self._bridge.client_lost()

    def data_received(self, data: bytes) -> None:
        if self._bridge is not None:
            self._bridge.from_client(data)
            return
        if self._closing or self._unparsed:
            return
        self._unfed = self._unfed + data if self._unfed else data
        self._feed()

    def _feed(self) -> None:
        """Parse what has arrived, a slice at a time, and stop while `PARSE_AHEAD` requests wait their turn: one
        read may hold thousands of pipelined requests, and parsing them all at once would hold up every other
        connection on the loop for as long. The rest waits here (one read at most: reading pauses meanwhile)."""
        while self._unfed and not (self._closing or self._unparsed) and len(self._ready) < PARSE_AHEAD:
            piece, self._unfed = self._unfed[:PARSE_SLICE], self._unfed[PARSE_SLICE:]
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserUpgrade as upgraded:
                leftover, self._unfed = piece[upgraded.args[0]:] + self._unfed, b""
                self._upgrade(leftover)
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
            else:
                self._count_head(piece)
        if self._unparsed:
            self._unfed = b""
        self._answer_ready()

    def eof_received(self) -> bool | None:
        if self._bridge is not None:
            self._bridge.client_eof()
            # Keep writing to a client that is done sending (a websocket's close handshake); a TLS stream cannot.
            return self._transport is not None and self._transport.can_write_eof()
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._bridge is not None:
            self._bridge.pause()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._bridge is not None:
            self._bridge.resume()
        else:
            self._answer_ready()

    def close(self) -> None:
        """End the connection at once (server shutdown)."""
        if self._transport is not None:
            self._transport.close()

    # -- httptools callbacks ------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url.clear()
        self._head_open = True
        self._head_bytes = self._url_bytes = 0
        self._header_seen = False
        self._carry, self._body_tail = self._body_tail, 0
        self._current = ParsedRequest("", b"", b"", "1.1", [], Body(self._limits.max_body_bytes))

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._url_bytes += len(url)
        self._head_bytes += len(url)
        if self._head_bytes > self._limits.max_head_bytes:
            self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.headers.append((name, value))
        self._header_seen = True
        self._carry = 0
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > self._limits.max_head_bytes:
            self._head_too_large()

    def on_headers_complete(self) -> None:
        self._head_open = False
        request = self._current
        assert request is not None
        parser = self._parser
        request.method = parser.get_method().decode("ascii")
        request.http_version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        if self._refuse_all is not None:
            self._stop_reading(*self._refuse_all)
            raise _Stop
        problem = _head_problem(request)
        if problem is not None:
            self._stop_reading(400, f"Malformed HTTP request: {problem}")
            raise _Stop
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
        newline = body.rfind(b"\n")
        self._body_tail = len(body) - newline - 1 if newline >= 0 else self._body_tail + len(body)
        if request.body_size > self._limits.max_body_bytes:
            self._finish_early(request)
        request.body.append(body)

    def on_chunk_header(self) -> None:
        self._body_tail = 0  # a chunk's size line ends in a newline

    def on_chunk_complete(self) -> None:
        self._body_tail = 0  # so does the CRLF after its data

    def on_message_complete(self) -> None:
        if self._parser.should_upgrade():
            return  # `_upgrade` takes the request from here
        request, self._current = self._current, None
        if request is not None:
            self._ready.append(request)
            self._idle_since = None  # not idle until it is answered

    # -- limits -------------------------------------------------------------------------------------------------

    def _count_head(self, data: bytes) -> None:
        """Refuse a head over `max_head_bytes` however it arrives. httptools reports a header only once its line
        is complete and keeps the partial name and value itself, so a header that never ends would grow without
        bound unseen: the bytes since the stream's last newline are that partial line (less what belonged to the
        body before it, and the URL, which `on_url` counted already)."""
        newline = data.rfind(b"\n")
        self._line = len(data) - newline - 1 if newline >= 0 else self._line + len(data)
        if not self._head_open:
            return
        partial = self._line - self._carry - (0 if self._header_seen else self._url_bytes)
        if self._head_bytes + max(partial, 0) > self._limits.max_head_bytes:
            self._stop_reading(431, "Request head too large")

    def _head_too_large(self) -> None:
        self._stop_reading(431, "Request head too large")
        raise _Stop

    def _finish_early(self, request: ParsedRequest) -> None:
        """Answer what we have (the app refuses it) and read no further: the rest of the stream is unparsed."""
        request.keep_alive = False
        self._ready.append(request)
        self._current = None
        self._stop_reading()
        raise _Stop

    def _stop_reading(self, status: int | None = None, message: str = "") -> None:
        """Parse nothing more; answer the requests already complete, then refuse (if `status`) and close. Inside a
        parser callback, raise `_Stop` after it, so that the parser stops at once."""
        if self._current is not None:
            self._current.body.close()
            self._current = None
        self._head_open = False
        self._unparsed = True
        if status is not None:
            self._refusal = (status, message)

    # -- answering ----------------------------------------------------------------------------------------------

    def _answer_ready(self) -> None:
        """Hand the next request to a worker when none of ours is out, and read only while nothing waits."""
        if self._closing:
            return
        if not self._busy and not self._write_paused:
            if self._ready:
                self._busy = True
                self._shared.pool.submit(self._run, self._ready.popleft())
            elif self._refusal is not None:
                self._refuse(*self._refusal)
                return
        if self._ready or self._unfed or self._write_paused:
            self._transport.pause_reading()  # type: ignore[union-attr]
        elif not self._unparsed:
            self._transport.resume_reading()  # type: ignore[union-attr]

    def _run(self, request: ParsedRequest) -> None:
        """On a worker: the app's answer, whole and closed (what the app records is recorded), then to the loop."""
        controls = _Controls()
        env = wsgi.environ(request, self._server, self._peer, controls, self._shared.scheme)
        request.body.close()
        try:
            answer = wsgi.call(self._shared.app, env)
        except Exception:
            log.exception("the app failed on %s %s", request.method, request.path.decode("latin-1"))
            answer = Answer("500 Internal Server Error", [("Content-Type", "text/plain")], b"Internal error\n")
            request.keep_alive = False
        try:
            answer.close()
        except Exception:
            log.exception("the app failed closing its answer to %s %s", request.method,
                          request.path.decode("latin-1"))
        data = wsgi.head(answer, method=request.method, keep_alive=request.keep_alive,
                         http_version=request.http_version)
        if request.method != "HEAD":
            data += answer.body
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            self._loop.call_soon_threadsafe(self._answered, data, request.keep_alive, controls)

    def _answered(self, data: bytes, keep_alive: bool, controls: _Controls) -> None:
        if self._closing:
            return
        if controls.delay_seconds:
            then = self._abort if controls.dropped else lambda: self._send(data, keep_alive)
            self._loop.call_later(controls.delay_seconds, then)
        elif controls.dropped:
            self._abort()
        else:
            self._send(data, keep_alive)

    def _send(self, data: bytes, keep_alive: bool) -> None:
        self._busy = False
        if self._closing:
            return
        self._write(data)
        if not keep_alive:
            self._closing = True
            self._transport.close()  # type: ignore[union-attr]  # after what is written has gone
            return
        if not self._ready:
            self._arm_idle()  # the next request has `idle_seconds` to arrive whole
        if self._shared.after_answer is not None:
            self._shared.after_answer()
        if self._unfed and len(self._ready) < PARSE_AHEAD:
            self._feed()  # which answers next
        else:
            self._answer_ready()

    def _refuse(self, status: int, message: str) -> None:
        """A request that never reached the app: plain text, then close (the stream cannot be trusted after)."""
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if status == 503:
            headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
        answer = Answer(f"{status} {_REASONS[status]}", headers, (message + "\n").encode())
        self._send(wsgi.head(answer, method="GET", keep_alive=False) + answer.body, keep_alive=False)

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
            self._idle = self._loop.call_at(self._idle_since + self._idle_seconds(), self._idle_timeout)

    def _idle_timeout(self) -> None:
        """No complete request for `idle_seconds` (an idle keep-alive connection, or one sending slowly): close."""
        self._idle = None
        since = self._idle_since
        if since is None or self._busy or self._ready or self._closing or self._bridge is not None:
            return  # busy: answering re-arms it
        deadline = since + self._idle_seconds()
        if self._loop.time() >= deadline:
            self.close()
        else:
            self._idle = self._loop.call_at(deadline, self._idle_timeout)

    def _idle_seconds(self) -> float:
        limit = self._limits.idle_seconds
        return min(limit, REFUSAL_IDLE_SECONDS) if self._refuse_all is not None else limit

    # -- upgrade ------------------------------------------------------------------------------------------------

    def _upgrade(self, leftover: bytes) -> None:
        """Hand the request to a thread of its own, bridged to this transport. A client sends nothing more before
        the server's 101, so bytes after the request mean a confused client: refuse them."""
        request, self._current = self._current, None
        transport = self._transport
        assert transport is not None
        if request is None or leftover or self._ready or self._busy or self._refuse_all is not None:
            self._unparsed = True
            self._refusal = self._refuse_all or (400, "Unexpected data with an Upgrade request")
            self._answer_ready()
            return
        self._unparsed = True
        if len(self._shared.bridges) >= self._limits.max_websockets:
            if upgrade.refuse_busy(transport, request.headers):
                self._closing = True
                return
            self._refusal = (503, "Too many websocket sessions; try again later")
            self._answer_ready()
            return
        env = wsgi.environ(request, self._server, self._peer, _Controls(), self._shared.scheme)
        try:
            self._bridge = upgrade.Bridge.start(self._shared.app, env, request, transport, self._shared.bridges)
        except OSError as exc:  # no descriptors left for the socket pair
            log.warning("cannot start a websocket session: %s", exc)
            self._refusal = (503, "The server is out of resources; try again later")
            self._answer_ready()


def _head_problem(request: ParsedRequest) -> str | None:
    """What RFC 9112 forbids in a head that llhttp lets through: HTTP/0.9 (no head at all), and an HTTP/1.1
    request without exactly one Host (s3.2: a server MUST answer 400)."""
    if request.http_version == "0.9":
        return "HTTP/0.9 is not supported"
    if request.http_version == "1.1":
        hosts = sum(1 for name, _ in request.headers if name.lower() == b"host")
        if hosts != 1:
            return "an HTTP/1.1 request needs exactly one Host header"
    return None


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
