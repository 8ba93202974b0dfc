"""Market-data stream clients for tests: a spec-checking websocket-client wrapper and a raw socket client."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import websocket
from flask import Flask
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.spec.document import SpecDocument
from mock_server.spec.validation import SchemaValidator
from tests.support.live import serve

Message = dict[str, Any]


@contextmanager
def running(config: Config) -> Iterator[tuple[str, Flask]]:
    """An emulator with its own config, served live; its services are closed afterwards."""
    app = create_app(config)
    try:
        with serve(app) as url:
            yield url, app
    finally:
        app.extensions["tradefence"].close()


def stream_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://", 1) + "/market-data" + (f"?{query}" if query else "")


class StreamClient:
    """A websocket-client connection whose every server message must match StreamServerMessage and whose
    `seq` must count up from 1 without gaps (unless `gaps_allowed`)."""

    def __init__(self, base_url: str, app: Flask | SpecDocument, *, query: str = "",
                 header: list[str] | None = None, timeout: float = 5.0, gaps_allowed: bool = False) -> None:
        document = app if isinstance(app, SpecDocument) else app.extensions["tradefence.spec"]
        self._validator = SchemaValidator(document, document.schema_ref("StreamServerMessage"))
        self.ws = websocket.create_connection(stream_url(base_url, query), timeout=timeout, header=header or [])
        self.last_seq = 0
        self.gaps_allowed = gaps_allowed
        self.received: list[Message] = []

    def send(self, message: Message | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def subscribe(self, *symbols: str) -> None:
        self.send({"action": "subscribe", "symbols": list(symbols)})

    def recv(self, timeout: float | None = None) -> Message:
        if timeout is not None:
            self.ws.settimeout(timeout)
        message = json.loads(self.ws.recv())
        self.check(message)
        return message

    def check(self, message: Message) -> None:
        problems = [error.message for error in self._validator.errors(message)]
        assert not problems, f"not a StreamServerMessage: {message}: {problems}"
        if self.gaps_allowed:
            assert message["seq"] > self.last_seq, (self.last_seq, message)
        else:
            assert message["seq"] == self.last_seq + 1, (self.last_seq, message)
        self.last_seq = message["seq"]
        self.received.append(message)

    def until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """Read until a message matches; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv(timeout=left)
            if predicate(message):
                return message
        raise AssertionError(f"no matching message within {timeout} s")

    def expect_close(self, timeout: float = 5.0) -> tuple[int, str]:
        """Read (checking any messages) until the server's close frame; its code and reason. Fails after `timeout`
        seconds in all, also while ticks keep coming."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else 1005
                return code, frame.data[2:].decode()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self.check(json.loads(frame.data))
        raise AssertionError(f"no close frame within {timeout} s")

    def close(self) -> None:
        self.ws.close()


class RawClient:
    """A websocket client on a bare socket (wsproto): it reads only when told to, and can vanish abruptly."""

    def __init__(self, base_url: str, *, receive_buffer: int | None = None, deflate: bool = False) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        if receive_buffer is not None:  # before connecting, so the TCP window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(5)
        self.sock.connect((host, int(port)))
        self.ws = WSConnection(ConnectionType.CLIENT)
        offer = [PerMessageDeflate()] if deflate else []
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target="/market-data", extensions=offer)))
        self._pending: list[Message] = []
        accepted: list[AcceptConnection] = []
        while not accepted:
            accepted = [event for event in self._read() if isinstance(event, AcceptConnection)]
        self.extensions = [str(extension.name) for extension in accepted[0].extensions]  # what the server took

    def send(self, message: Message) -> None:
        self.sock.sendall(self.ws.send(TextMessage(json.dumps(message))))

    def messages(self) -> Iterator[Message]:
        """Everything the server sends from now on, until it closes."""
        buffered = ""
        while True:
            for event in self._read():
                if isinstance(event, TextMessage):
                    buffered += event.data
                    if event.message_finished:
                        yield json.loads(buffered)
                        buffered = ""
                elif isinstance(event, CloseConnection):
                    return

    def vanish(self) -> None:
        """Close with a TCP reset and no close frame, as a crashed client or a dropped network would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _read(self) -> list[object]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.ws.receive_data(data)
        return list(self.ws.events())


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
