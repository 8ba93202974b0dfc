"""Raw HTTP/1.1 over loopback for the server's tests: a WSGI app that echoes what it saw, a server run in a
thread that always stops, and a reader of one response at a time off a socket."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

from mock_server.serving import Server
from mock_server.serving.connection import Limits
from mock_server.serving.controls import RESPONSE_CONTROLS

RELEASE_SECONDS = 5.0  # how long a held answer waits at most (a test releases it long before)


class Echo:
    """A WSGI app that answers what it saw; `/hold` waits for `release`, `/drop` drops the connection."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            self.seen += 1
        path = environ["PATH_INFO"]
        controls = environ[RESPONSE_CONTROLS]
        if path.startswith("/drop"):
            controls.drop()
            if path == "/drop-later":
                controls.delay(0.1)
        elif path == "/hold":
            controls.delay(RELEASE_SECONDS)
        body = environ["wsgi.input"].read()
        answer = json.dumps({"method": environ["REQUEST_METHOD"], "path": path, "query": environ["QUERY_STRING"],
                             "length": environ.get("CONTENT_LENGTH"), "body": body.decode("latin-1"),
                             "x": environ.get("HTTP_X_THING")}).encode()
        status = "413 Payload Too Large" if int(environ.get("CONTENT_LENGTH") or 0) > 64 else "200 OK"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]


@contextlib.contextmanager
def running(app: Any, limits: Limits | None = None, **options: Any) -> Iterator[Server]:
    server = Server("127.0.0.1", 0, app, limits or Limits(max_body_bytes=64), **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=5)
    return sock


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[str, dict[str, str], bytes]:
    """One response off the socket (status line, headers, Content-Length body); the rest stays in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole head: {bytes(buffer)!r}")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    del buffer[:len(head) + 4]
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    size = int(headers.get("content-length", "0"))
    while len(buffer) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of a body")
        buffer += chunk
    body = bytes(buffer[:size])
    del buffer[:size]
    return status, headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
