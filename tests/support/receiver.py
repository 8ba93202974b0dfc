"""A webhook receiver on a free loopback port: records every POST and answers with scripted statuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    attempt: int  # how many times this webhook-id had reached this path, this one included

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


Plan = Callable[[Received], int]  # the status to answer


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._counts: dict[tuple[str, str], int] = {}
        self.plan: Plan = lambda _: 204
        host, port = server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address
        scheme = "https" if isinstance(server.socket, ssl.SSLSocket) else "http"
        self.url = f"{scheme}://{host}:{port}"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            key = (path, headers.get("webhook-id", ""))
            self._counts[key] = self._counts.get(key, 0) + 1
            received = Received(path, headers, body, self._counts[key])
        status = self.plan(received)
        with self._lock:  # recorded once answered, so a test that sees it also sees the emulator's outcome soon
            self._received.append(received)
        return status

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` requests (to ``path``), once they have arrived."""
        def arrived() -> list[Received] | None:
            got = self.at(path) if path is not None else self.received
            return got[:count] if len(got) >= count else None

        return eventually(arrived, timeout, f"{count} webhook requests" + (f" to {path}" if path else ""))


@contextmanager
def receiver(port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver on ``port`` (0: a free one); https:// with a ``tls`` server context."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = holder[0].record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def eventually(probe: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    """Poll ``probe`` until it returns something truthy (returned) or the deadline passes (the test fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification in plain stdlib, without a timestamp window (tests move the clock)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, part.partition(",")[2])
               for part in headers["webhook-signature"].split() if part.startswith("v1,"))
