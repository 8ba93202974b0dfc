"""`/market-data`: the websocket adapter between flask-sock and the domain's StreamHub.

Each connection's request thread is its only sender: it waits for work, handles what the client sent, then
writes what the hub queued. simple_websocket's reader thread also writes (pings, pongs, close replies) and its
`send` takes no lock, so the socket is wrapped so that writes take turns and always go out whole.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from types import MappingProxyType
from typing import Any

from flask import Blueprint, Flask, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from mock_server.domain.errors import ErrorCode
from mock_server.domain.market.simulator import Quote, Trade
from mock_server.domain.stream import (
    Authenticated,
    Connection,
    Heartbeat,
    Outgoing,
    StreamFault,
    StreamHub,
    Subscribed,
)
from mock_server.spec.document import SpecDocument
from mock_server.spec.validation import InvalidInput, SchemaValidator
from mock_server.web.bearer import bearer_token
from mock_server.web.render import timestamp
from mock_server.web.routing import LONE_SURROGATE, has_lone_surrogate, reject_constant, services

PATH = "/market-data"
# Pings find clients that vanished without closing the TCP connection; the size cap bounds what one client
# message may cost (the largest valid one, 200 symbols, is ~3 KB).
SERVER_OPTIONS = MappingProxyType({"ping_interval": 25, "max_message_size": 64 * 1024})
# A fixed, modest kernel send buffer (Linux would otherwise grow it to 4 MB): a slow client then falls behind
# in its outbox, where the drop-oldest policy and seq gaps apply, not in seconds of data hidden in the kernel.
SEND_BUFFER_BYTES = 128 * 1024
_CLOSE_HANDSHAKE_SECONDS = 2.0  # how long a client may take to answer our close frame
_SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")  # where simple_websocket finds the socket, in its order
_POLL_SECONDS = 1.0  # a safety net only: the hub and the reader thread both wake the sender at once


def register(app: Flask, document: SpecDocument) -> None:
    """Add the `/market-data` route to `app`."""
    messages = SchemaValidator(document, document.schema_ref("StreamClientMessage"))
    texts = TickTexts()
    blueprint = Blueprint("market_data", __name__)
    blueprint.before_request(_serialize_the_socket)

    @Sock().route(PATH, bp=blueprint)
    def market_data(ws: Server) -> None:
        hub: StreamHub = services().stream
        wire = ws.sock
        connection = hub.connect(ws.event.set, wire.abort, token=_handshake_token())
        cut_after = services().faults.stream_disconnect_after()  # once per connection: it counts the fault down
        try:
            _serve(ws, connection, hub, messages, texts, cut_after)
        except (ConnectionClosed, OSError):
            pass  # the client went away (or was aborted at shutdown): nothing left to say to it
        finally:
            hub.disconnect(connection)
            # Let the reader thread finish the close handshake (it sends the reply to a client's close), then end
            # our side of the TCP stream. Werkzeug writes an HTTP response after every handler, flask-sock's
            # included; after a close frame a client would read it as a broken frame (Node's `ws` does).
            # With our side shut down, that write fails as a dropped connection and never reaches the client.
            ws.thread.join(timeout=_CLOSE_HANDSHAKE_SECONDS)
            wire.finish()

    app.register_blueprint(blueprint)


def _serialize_the_socket() -> None:
    """Wrap the connection's socket before flask-sock's `Server` takes it: that starts simple_websocket's reader
    thread, which may answer (a close with 1009 for an oversized first message) and close the socket before the
    route's own code runs. Wrapped only afterwards, such a close was a real one, and the client's close reply was
    reset."""
    for key in _SOCKET_KEYS:
        if (raw := request.environ.get(key)) is not None:
            wire = _SerializedSocket(raw)
            wire.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            request.environ[key] = wire
            return


def _serve(ws: Server, connection: Connection, hub: StreamHub, messages: SchemaValidator, texts: TickTexts,
           cut_after: int | None) -> None:
    """Send what the hub queues and handle what the client sends. With a `stream_disconnect_after` fault, cut the
    TCP connection after that many messages, with no close frame (the client sees 1006), as a network drop would."""
    sent = 0
    while True:
        if cut_after is not None and sent >= cut_after:
            ws.sock.abort()
            return
        ws.event.wait(_POLL_SECONDS)
        ws.event.clear()  # anything that sets it from now on is seen by the next round
        while (raw := ws.receive(timeout=0)) is not None:
            _handle(raw, connection, hub, messages)
        batch, closing = connection.take()
        if cut_after is not None:
            batch = batch[:cut_after - sent]
        if batch:
            _send_all(ws, batch, texts)
            sent += len(batch)
        if closing is not None:
            ws.close(closing.code, closing.reason)
            return
        if not ws.connected:
            return


def _send_all(ws: Server, batch: list[Outgoing], texts: TickTexts) -> None:
    """Everything queued in one write: a frame per message, but one system call and one turn of the socket's lock
    per wake-up instead of one per message (a step brings two ticks per subscribed symbol at once)."""
    if not ws.connected:
        raise ConnectionClosed(ws.close_reason, ws.close_message)
    ws.sock.send(b"".join([text_frame(render(item, texts)) for item in batch]))


def text_frame(text: str) -> bytes:
    """One final, unmasked text frame (RFC 6455 section 5.2): FIN and opcode 1, then the payload length in 7, 16 or
    64 bits, as a server sends it.

    Built here rather than by wsproto, whose general path was the stream's main cost once each tick was rendered
    only once (docs/performance.md). Never compressed, even where a client negotiated permessage-deflate
    (browsers and Node's `ws` offer it; simple_websocket accepts it): RFC 7692 section 6 lets a sender leave any
    message uncompressed (RSV1 clear), and deflating small JSON costs more CPU than loopback bandwidth saves.
    Control frames (close, ping, pong) still go through wsproto."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def _handle(raw: str | bytes, connection: Connection, hub: StreamHub, messages: SchemaValidator) -> None:
    """Parse (4001), validate against StreamClientMessage (4000), then one hub call. Errors keep the socket."""
    try:
        message = json.loads(raw, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        hub.report(connection, ErrorCode.MALFORMED_JSON, f"The message is not valid JSON: {exc}")
        return
    except RecursionError:
        hub.report(connection, ErrorCode.MALFORMED_JSON, "The message nests arrays or objects too deeply to parse")
        return
    if has_lone_surrogate(raw, message):
        hub.report(connection, ErrorCode.MALFORMED_JSON, f"The message is not valid JSON: {LONE_SURROGATE}")
        return
    try:
        messages.check(message, root="")
    except InvalidInput as exc:
        hub.report(connection, ErrorCode.INVALID_REQUEST, f"Invalid message: {exc.message}", field=exc.field)
        return
    action = message["action"]
    if action == "subscribe":
        hub.subscribe(connection, message["symbols"])
    elif action == "unsubscribe":
        hub.unsubscribe(connection, message["symbols"])
    else:
        hub.authenticate(connection, message["token"])


def _handshake_token() -> str | None:
    """`Authorization: Bearer <token>` (what servers send) or `?access_token=` (what browsers can send)."""
    header = request.headers.get("Authorization")
    if header is not None:
        token = bearer_token(header)
        return header if token is None else token  # a non-bearer header fails to verify
    return request.args.get("access_token")


def render(item: Outgoing, texts: TickTexts) -> str:
    """One queued message as the spec's StreamServerMessage JSON (type and seq first, for people reading)."""
    message = item.message
    if isinstance(message, Quote | Trade):
        kind, rest = texts.of(message)
        return f'{{"type":"{kind}","seq":{item.seq},{rest}'
    body: dict[str, Any]
    if isinstance(message, Heartbeat):
        body = {"type": "heartbeat", "seq": item.seq, "timestamp": timestamp(message.at)}
    elif isinstance(message, Subscribed):
        body = {"type": "subscription", "seq": item.seq, "timestamp": timestamp(message.at),
                "symbols": list(message.symbols)}
    elif isinstance(message, Authenticated):
        body = {"type": "authenticated", "seq": item.seq, "timestamp": timestamp(message.at),
                "subject": message.subject}
    elif isinstance(message, StreamFault):
        body = {"type": "error", "seq": item.seq, "timestamp": timestamp(message.at), "code": int(message.code),
                "message": message.message}
        if message.symbols:
            body["symbols"] = list(message.symbols)
        if message.field is not None:
            body["field"] = message.field
    else:  # pragma: no cover - the Message union is closed
        raise TypeError(f"cannot render {message!r}")
    return json.dumps(body, separators=(",", ":"))


class TickTexts:
    """Each tick's type and JSON after `seq`, rendered once for all its subscribers, who get it with their own `seq`.

    The hub queues the very same quote and trade objects to every subscriber of a symbol for a step, so a tick is
    found by identity: hashing its six fields on every send cost more than the rest of the lookup, for every
    subscriber of every tick (docs/performance.md, "The stream's tick texts"). An `id` cannot be reused while the
    object is held here; at `size` entries (several steps of the whole universe) everything is dropped and
    rendered again on first use."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._texts: dict[int, tuple[Quote | Trade, tuple[str, str]]] = {}

    def of(self, message: Quote | Trade) -> tuple[str, str]:
        entry = self._texts.get(id(message))
        if entry is not None and entry[0] is message:
            return entry[1]
        text = _tick_text(message)
        if len(self._texts) >= self._size:
            self._texts.clear()  # sender threads race here harmlessly: at worst a tick is rendered twice
        self._texts[id(message)] = (message, text)
        return text


def _tick_text(message: Quote | Trade) -> tuple[str, str]:
    """A tick's type, and its JSON after `seq`."""
    body: dict[str, Any]
    if isinstance(message, Quote):
        kind = "quote"
        body = {"timestamp": timestamp(message.timestamp), "symbol": message.symbol, "bid": float(message.bid),
                "ask": float(message.ask), "bid_size": message.bid_size, "ask_size": message.ask_size}
    else:
        kind = "trade"
        body = {"timestamp": timestamp(message.timestamp), "symbol": message.symbol,
                "price": float(message.price), "size": message.size}
    return kind, json.dumps(body, separators=(",", ":"))[1:]


class _SerializedSocket:
    """The connection's socket, with writes that take turns and go out whole (`sendall`)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, data: bytes) -> int:
        with self._lock:
            self._sock.sendall(data)
        return len(data)

    def close(self) -> None:
        """simple_websocket's reader closes the socket when it is done with it: only end the writing instead.
        The server closes the socket once the request is over; until then, writes fail instead of landing on
        a closed (perhaps reused) file descriptor."""
        self.finish()

    def finish(self) -> None:
        """No more writes: the client gets FIN, and later writes fail with a broken pipe."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Shut the socket down under a sender blocked writing to a client that stopped reading."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
