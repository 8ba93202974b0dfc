"""A request that asks to switch protocols (the `/market-data` websocket): the app runs on a thread of its own,
talking to the client through a socket pair that the event loop joins to the client's transport.

The app gets its end of the pair as `werkzeug.socket`, the key through which flask-sock (simple-websocket) takes
over a connection: a real, blocking socket, so everything simple-websocket does with one (`recv`, `send`, a
selector for its pings, `shutdown`) works as on a raw TCP socket; and the loop, which owns the client's
transport, relays bytes both ways. TLS then stays with the loop: wss:// is ws:// to the app.

Back-pressure crosses the bridge: when the client reads slowly, the transport's buffer fills, the loop stops
reading the pair, the pair's buffer fills and the app's `send` blocks, so a slow stream client falls behind in
its own outbox (where the stream's drop-oldest policy applies), never in a buffer of the loop's. When the
session ends flask-sock raises ConnectionError instead of answering, as it does under Werkzeug. A request that
was not a websocket after all gets its answer through the pair, then the connection closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import socket
import struct
import threading
import time
from typing import Any

from mock_server.serving import wsgi
from mock_server.serving.controls import RESPONSE_CONTROLS
from mock_server.serving.wsgi import ParsedRequest, WsgiApp

log = logging.getLogger("tradefence.server")
# A client that never closes its side after ours is cut after this long; meanwhile what it sends is read and
# dropped, since closing with its bytes unread would reset the connection and lose our last frames to it.
LINGER_SECONDS = 1.0
# The kernel's send buffer for the client's socket (Linux grows it to megabytes otherwise): a stalled client's
# backlog then stays small and visible to the app, as a blocked send.
CLIENT_SEND_BUFFER = 128 * 1024
_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 s1.3
CLOSE_TRY_AGAIN_LATER = 1013


class _SocketControls:
    """`ResponseControls` on a thread that owns its end of the pair: waiting blocks no one else."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def delay(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)


class Bridge:
    """One upgraded connection: the client's transport on one side, the app's thread behind a socket pair on
    the other. Every method runs on the loop."""

    def __init__(self, client: asyncio.Transport, bridges: set[Bridge]) -> None:
        self._client = client
        self._bridges = bridges
        self._pair: asyncio.Transport | None = None
        self._early: list[bytes] = []  # from the client before the pair's transport exists
        self._client_done = False  # the client sent EOF, or its connection is gone
        self._app_done = False
        self._linger: asyncio.TimerHandle | None = None
        self._joining: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, app: WsgiApp, env: dict[str, Any], request: ParsedRequest, client: asyncio.Transport,
              bridges: set[Bridge]) -> Bridge:
        near, far = socket.socketpair()
        bridge = cls(client, bridges)
        bridges.add(bridge)
        raw = client.get_extra_info("socket")
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CLIENT_SEND_BUFFER)
        # Held here: the loop keeps only a weak reference to a task.
        bridge._joining = asyncio.get_running_loop().create_task(bridge._join(near))
        threading.Thread(target=_session, args=(app, env, request, far), name="upgrade", daemon=True).start()
        return bridge

    async def _join(self, near: socket.socket) -> None:
        try:
            transport, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: _PairEnd(self), near)
        except OSError:
            near.close()
            self.app_done()
            return
        self._pair = transport
        for data in self._early:
            transport.write(data)
        self._early.clear()
        if self._client_done:
            self._end_pair()

    # -- from the client's side ---------------------------------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        if self._app_done:
            return  # lingering: read and dropped
        if self._pair is None:
            self._early.append(data)
        else:
            self._pair.write(data)

    def client_eof(self) -> None:
        self._client_done = True
        if self._app_done:
            self._client.close()
        elif self._pair is not None:
            self._end_pair()

    def client_lost(self) -> None:
        self._client_done = True
        self._bridges.discard(self)
        if self._linger is not None:
            self._linger.cancel()
        if self._pair is not None:
            self._pair.close()  # the app's next read sees the end; its next write fails

    def pause(self) -> None:
        """The client reads slower than the app writes: stop taking the app's bytes."""
        if self._pair is not None:
            self._pair.pause_reading()

    def resume(self) -> None:
        if self._pair is not None and not self._pair.is_closing():
            self._pair.resume_reading()

    # -- from the app's side ------------------------------------------------------------------------------------

    def from_app(self, data: bytes) -> None:
        if not self._client.is_closing():
            self._client.write(data)

    def app_done(self) -> None:
        """The app has written its last byte: end our side, read what the client still sends, then close."""
        if self._app_done:
            return
        self._app_done = True
        if self._client_done or not self._client.can_write_eof():
            self._client.close()  # over TLS: close_notify, then the close (a TLS stream has no half-close)
            return
        self._client.write_eof()
        self._linger = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._client.close)

    def app_slow(self, slow: bool) -> None:
        """The app reads slower than the client writes: stop reading the client meanwhile."""
        if self._client.is_closing():
            return
        if slow:
            self._client.pause_reading()
        else:
            self._client.resume_reading()

    def _end_pair(self) -> None:
        assert self._pair is not None
        if self._pair.can_write_eof():
            self._pair.write_eof()  # the app reads the end of the stream
        else:
            self._pair.close()


class _PairEnd(asyncio.Protocol):
    """The loop's end of the socket pair."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    def data_received(self, data: bytes) -> None:
        self._bridge.from_app(data)

    def eof_received(self) -> bool:
        self._bridge.app_done()
        return True  # the client may still be sending: keep the pair open for reading

    def connection_lost(self, exc: Exception | None) -> None:
        self._bridge.app_done()

    def pause_writing(self) -> None:
        self._bridge.app_slow(True)

    def resume_writing(self) -> None:
        self._bridge.app_slow(False)


def _session(app: WsgiApp, env: dict[str, Any], request: ParsedRequest, sock: socket.socket) -> None:
    env["werkzeug.socket"] = sock
    env[RESPONSE_CONTROLS] = _SocketControls(sock)
    try:
        answer = wsgi.call(app, env)
        try:
            sock.sendall(wsgi.head(answer, method=request.method, keep_alive=False)
                         + (answer.body if request.method != "HEAD" else b""))
        finally:
            answer.close()
    except (ConnectionError, OSError):
        pass  # a websocket session's normal end, or a client gone
    except Exception:
        log.exception("the app failed on upgrade request %s", request.path.decode("latin-1"))
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def refuse_busy(transport: asyncio.Transport, headers: list[tuple[bytes, bytes]]) -> bool:
    """Past the cap on websocket sessions, a websocket client is told so in its own terms: the handshake, then
    close code 1013 (Try Again Later, RFC 6455 s7.4 via the IANA registry). False when the request is not a
    websocket handshake (the caller answers 503)."""
    found = {name.lower(): value for name, value in headers}
    key = found.get(b"sec-websocket-key")
    if found.get(b"upgrade", b"").lower() != b"websocket" or not key:
        return False
    accept = base64.b64encode(hashlib.sha1(key.strip() + _WEBSOCKET_GUID).digest())
    reason = b"Too many streams; try again later"
    close = struct.pack("!BBH", 0x88, 2 + len(reason), CLOSE_TRY_AGAIN_LATER) + reason
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + close)
    if transport.can_write_eof():
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)
    else:
        transport.close()
    return True
