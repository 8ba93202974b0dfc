"""The sandbox face: the emulator as the contract suite meets Tradefence's real sandbox.

A real sandbox has no control plane and a rate limit nobody lifts for you. The face is a reverse proxy on a free
loopback port that forwards what a real sandbox serves (`/authorize`, `/token`, `/v1/...`, `/market-data`) to an
emulator byte for byte — websocket upgrades included, spliced as raw bytes both ways — and answers everything
else (`/_mock/...`, the dashboard) with the 404 an unknown route gets. `sandbox_face()` puts it in front of an
in-process emulator at its default rate limit (120 burst, 20/s); `Face.behind` is the emulator itself, for a test's
own setup (closing the market, seeding an account), never for the suite under test. `proxy(url)` fronts any
emulator that already runs (a mutant process, `make mock-up`).

By hand: `python -m tests.support.face [--market closed] [--port N]` serves an emulator behind a face and prints
both URLs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.hours import MarketMode
from mock_server.web.errors import error_body
from tests.support.live import serve

SANDBOX_PATHS = ("/authorize", "/token", "/market-data")  # and /v1 with everything under it
MAX_HEAD = 64 * 1024
COPY_CHUNK = 64 * 1024


class _BadMessage(Exception):
    """A request or response the face cannot frame; the connection is closed."""


@dataclass(frozen=True)
class Face:
    url: str  # what the suite under test is given: no /_mock, the default rate limit
    behind: str  # the emulator itself, control plane included: for a test's own setup and checks
    app: Flask


def a_sandbox_serves(target: str) -> bool:
    """Whether a real sandbox would route this request target. Decoded first, as the emulator decodes it, so
    `/%5Fmock/...` is hidden like `/_mock/...`; dot segments and empty ones are hidden too rather than guessed at."""
    path = unquote(urlsplit(target).path if "://" in target else target.split("?", 1)[0])
    if any(segment in ("", ".", "..") for segment in path.split("/")[1:]):
        return False
    return path in SANDBOX_PATHS or path == "/v1" or path.startswith("/v1/")


@contextmanager
def proxy(upstream: str, port: int = 0) -> Iterator[str]:
    """A face in front of the emulator at `upstream` (http://HOST:PORT), on 127.0.0.1:`port` (0: a free one).
    Yields the face's URL; stops it (and every connection through it) on the way out."""
    split = urlsplit(upstream)
    assert split.scheme == "http" and split.hostname and split.port, upstream
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        relay = _Relay(split.hostname or "", split.port or 80)
        server = await asyncio.start_server(relay.handle, "127.0.0.1", port, limit=MAX_HEAD)
        holder["port"] = server.sockets[0].getsockname()[1]
        holder["stop"] = stop = asyncio.Event()
        ready.set()
        async with server:
            await stop.wait()
        await relay.close_all()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), name="sandbox-face", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        loop.close()


@contextmanager
def sandbox_face(*, market: str = "open", seed: int = 7, **config: Any) -> Iterator[Face]:
    """An in-process emulator with its default rate limit and the market `open` or `closed` (or `nyse`), behind
    a face. `config` overrides other `Config` fields (say, `access_token_ttl`)."""
    app = create_app(Config(seed=seed, market_mode=MarketMode(market), **config))
    try:
        with serve(app) as behind, proxy(behind) as url:
            yield Face(url, behind, app)
    finally:
        app.extensions["tradefence"].close()


class _Relay:
    """One upstream connection per client connection; requests relayed one at a time, in order."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._writers: set[asyncio.StreamWriter] = set()

    async def close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0)

    async def handle(self, client: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        self._writers.add(client_out)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await _read_head(client)
                if head is None:
                    return
                method, target, headers = _parse_request(head)
                if not a_sandbox_serves(target):
                    await _skip_body(client, headers)
                    client_out.write(_not_found(headers))
                    await client_out.drain()
                    if _wants_close(headers) or "upgrade" in headers.get("connection", ""):
                        return
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection(self._host, self._port, limit=MAX_HEAD)
                    self._writers.add(upstream[1])
                upstream[1].write(head)
                if await self._exchange(method, headers, client, client_out, *upstream):
                    return
        except (_BadMessage, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            for writer in (client_out, upstream[1] if upstream else None):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()

    async def _exchange(self, method: str, request_headers: dict[str, str], client: asyncio.StreamReader,
                        client_out: asyncio.StreamWriter, up: asyncio.StreamReader,
                        up_out: asyncio.StreamWriter) -> bool:
        """Relay one request's body and its answer (interim 1xx answers too, so `Expect: 100-continue` works).
        True when the connection ends here: an upgrade that was spliced, or an answer that closes."""
        body = asyncio.ensure_future(_copy_body(client, up_out, request_headers))
        try:
            while True:
                head = await _read_head(up)
                if head is None:
                    return True
                status, headers = _parse_response(head)
                client_out.write(head)
                if status == 101:
                    await body
                    await _splice(client, client_out, up, up_out)
                    return True
                if 100 <= status < 200:
                    await client_out.drain()
                    continue
                if method == "HEAD" or status in (204, 304):
                    await client_out.drain()
                elif not await _copy_body(up, client_out, headers, until_close=True):
                    return True
                await body
                return _wants_close(headers) or _wants_close(request_headers)
        finally:
            if not body.done():
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await body


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadMessage("truncated head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadMessage("head too large") from None


def _headers(lines: list[bytes]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _BadMessage(f"bad header line {line!r}")
        key = name.strip().lower()
        found[key] = f"{found[key]}, {value.strip()}" if key in found else value.strip()
    return found


def _parse_request(head: bytes) -> tuple[str, str, dict[str, str]]:
    first, *lines = head[:-4].split(b"\r\n")
    parts = first.decode("latin-1").split(" ")
    if len(parts) != 3:
        raise _BadMessage(f"bad request line {first!r}")
    return parts[0], parts[1], _headers(lines)


def _parse_response(head: bytes) -> tuple[int, dict[str, str]]:
    first, *lines = head[:-4].split(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _BadMessage(f"bad status line {first!r}")
    return int(parts[1]), _headers(lines)


def _wants_close(headers: dict[str, str]) -> bool:
    return "close" in headers.get("connection", "").lower()


def _chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


async def _copy_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, headers: dict[str, str],
                     *, until_close: bool = False) -> bool:
    """Copy one message body as it is framed (chunked, Content-Length, or — for answers — up to EOF), raw.
    Without a writer the body is read and dropped. False when the body ran to EOF (the connection is done)."""
    def put(data: bytes) -> None:
        if writer is not None:
            writer.write(data)

    if _chunked(headers):
        while True:
            line = await reader.readuntil(b"\r\n")
            put(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    put(trailer)
                put(trailer)
                break
            put(await reader.readexactly(size + 2))
            if writer is not None:
                await writer.drain()
    elif "content-length" in headers:
        left = int(headers["content-length"].split(",")[0])
        while left:
            data = await reader.read(min(left, COPY_CHUNK))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            put(data)
            left -= len(data)
            if writer is not None:
                await writer.drain()
    elif until_close:
        while data := await reader.read(COPY_CHUNK):
            put(data)
            if writer is not None:
                await writer.drain()
        return False
    if writer is not None:
        await writer.drain()
    return True


async def _skip_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    await _copy_body(reader, None, headers)


async def _splice(client: asyncio.StreamReader, client_out: asyncio.StreamWriter, up: asyncio.StreamReader,
                  up_out: asyncio.StreamWriter) -> None:
    """An upgraded connection (the market-data websocket): raw bytes both ways until either side closes."""
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(COPY_CHUNK):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()

    tasks = [asyncio.ensure_future(pump(client, up_out)), asyncio.ensure_future(pump(up, client_out))]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        _, pending = await asyncio.wait(pending, timeout=5)
    for task in pending:
        task.cancel()


def _not_found(request_headers: dict[str, str]) -> bytes:
    """The answer an unknown route gets from the emulator: 404 with the error envelope and a request id."""
    body = json.dumps({"error": error_body(ApiError(ErrorCode.NOT_FOUND, "No such route"))}).encode()
    lines = ["HTTP/1.1 404 Not Found", "Content-Type: application/json", f"Content-Length: {len(body)}",
             f"X-Request-Id: req_{secrets.token_hex(8)}"]
    if _wants_close(request_headers) or "upgrade" in request_headers.get("connection", "").lower():
        lines.append("Connection: close")
    return "\r\n".join([*lines, "", ""]).encode("latin-1") + body


def main() -> None:
    parser = argparse.ArgumentParser(description="An emulator behind a sandbox face, until Ctrl-C.")
    parser.add_argument("--market", default="open", choices=[mode.value for mode in MarketMode])
    parser.add_argument("--port", type=int, default=0, help="the face's port (default: a free one)")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    app = create_app(Config(seed=options.seed, market_mode=MarketMode(options.market)))
    try:
        with serve(app) as behind, proxy(behind, options.port) as url:
            print(f"sandbox face on {url} (no /_mock, default rate limit); the emulator behind it: {behind}",
                  flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["tradefence"].close()


if __name__ == "__main__":
    main()
