"""WSGI (PEP 3333) for the server: one parsed request as an environment, and the app's answer collected whole.

Every answer of the emulator is small JSON or a small page, so it is collected into one bytes object and sent
with a Content-Length: one write per response, and keep-alive always possible. The worker that ran the app
calls the body's `close()` (`Answer.close`) before it hands the answer to the event loop: whatever an app records
there (the emulator's request log and journal) is done by the time the client has its answer.
"""

from __future__ import annotations

import functools
import io
import mmap
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

from mock_server.serving.controls import RESPONSE_CONTROLS, ResponseControls

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_NO_BODY_STATUSES = frozenset((204, 304))


class Body:
    """A request body as it arrives, kept up to `capacity` bytes. Small bodies live in a bytearray; past `SPILL`
    bytes the body moves to an anonymous memory map with room for the whole cap, whose pages the kernel hands out
    as they are written and takes back the moment the map is closed. Hundreds of connections each holding most of
    a large body then leave nothing behind once they close: freed heap memory, by contrast, mostly stays with the
    process (the allocator keeps it for reuse)."""

    SPILL = 64 * 1024
    __slots__ = ("_capacity", "_map", "_small")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._small = bytearray()
        self._map: mmap.mmap | None = None

    def __len__(self) -> int:
        return self._map.tell() if self._map is not None else len(self._small)

    def append(self, data: bytes) -> None:
        """Keep `data`, as much of it as fits under the capacity."""
        room = self._capacity - len(self)
        if room <= 0:
            return
        data = data[:room]
        if self._map is None and len(self._small) + len(data) > self.SPILL:
            self._map = mmap.mmap(-1, self._capacity)
            self._map.write(self._small)
            self._small = bytearray()
        if self._map is not None:
            self._map.write(data)
        else:
            self._small += data

    def getvalue(self) -> bytes:
        return self._map[:self._map.tell()] if self._map is not None else bytes(self._small)

    def close(self) -> None:
        """Hand a spilled body's pages back at once (a connection's requests may outlive it in a queue)."""
        if self._map is not None:
            self._map.close()
            self._map = None
        self._small = bytearray()


@dataclass(slots=True)
class ParsedRequest:
    """What the HTTP parser read. `body_size` counts every body byte received, also past the cap where `body`
    stops growing: the app sees the true size and answers 413 without the server holding it all."""

    method: str
    path: bytes
    query: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    body: Body = field(default_factory=lambda: Body(0))
    body_size: int = 0
    keep_alive: bool = True


@dataclass(slots=True)
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    closer: Callable[[], None] | None = None  # the body's close(), not yet called

    @property
    def status_code(self) -> int:
        return int(self.status[:3])

    def close(self) -> None:
        """Call the app's `close()` once (PEP 3333 requires it); the server does so after sending the answer."""
        closer, self.closer = self.closer, None
        if closer is not None:
            closer()


def environ(request: ParsedRequest, server: tuple[str, int], peer: tuple[str, int],
            controls: ResponseControls, scheme: str = "http") -> dict[str, Any]:
    """The WSGI environment: CGI-style keys, headers as HTTP_* (repeats joined with commas), the whole body."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(request.path).decode("latin-1"),
        "QUERY_STRING": request.query.decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(request.body.getvalue()),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        RESPONSE_CONTROLS: controls,
    }
    for raw_name, raw_value in request.headers:
        name = environ_key(raw_name)
        value = raw_value.decode("latin-1")
        env[name] = f"{env[name]},{value}" if name in env else value
    if request.body_size or "CONTENT_LENGTH" in env:  # a chunked body arrives without a length: give it one
        env["CONTENT_LENGTH"] = str(request.body_size)
        env.pop("HTTP_TRANSFER_ENCODING", None)
    return env


@functools.lru_cache(maxsize=512)
def environ_key(raw_name: bytes) -> str:
    """`X-Request-Id` -> `HTTP_X_REQUEST_ID` (Content-Type and -Length without the prefix), per PEP 3333. Clients
    send the same few names on every request: each is worked out once."""
    name = raw_name.decode("latin-1").upper().replace("-", "_")
    return name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name


def call(app: WsgiApp, env: dict[str, Any]) -> Answer:
    """Run the app to the end of its body; the caller sends the answer, then calls `Answer.close`. Exceptions are
    the caller's (the body closed first): a websocket session ends in one."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(env, start_response)
    close = getattr(result, "close", None)
    try:
        written.extend(result)
        if not started:
            raise RuntimeError("the WSGI app returned without calling start_response")
    except BaseException:
        if close is not None:
            close()
        raise
    return Answer(started[0], started[1], b"".join(written), close)


def head(answer: Answer, *, method: str, keep_alive: bool, http_version: str = "1.1",
         now: Callable[[], float] = time.time) -> bytes:
    """The status line and headers, with Date (RFC 9110 s6.6.1), a Content-Length when the app gave none, and
    `Connection: close` when this is the connection's last answer. An HTTP/1.0 connection stays open only when
    the answer says so (`Connection: keep-alive`, RFC 9112 s9.3)."""
    lines = [f"HTTP/1.1 {answer.status}"]
    has_length = False
    for name, value in answer.headers:
        lowered = name.lower()
        if lowered == "content-length":
            has_length = True
        elif lowered in ("connection", "transfer-encoding", "date"):
            continue  # the server decides these
        lines.append(f"{name}: {value}")
    if not has_length and answer.status_code not in _NO_BODY_STATUSES and method != "HEAD":
        lines.append(f"Content-Length: {len(answer.body)}")
    lines.append(f"Date: {http_date(int(now()))}")
    if not keep_alive:
        lines.append("Connection: close")
    elif http_version == "1.0":
        lines.append("Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@functools.lru_cache(maxsize=2)
def http_date(second: int) -> str:
    """IMF-fixdate for a whole second, formatted once per second (every response carries one)."""
    return formatdate(second, usegmt=True)
