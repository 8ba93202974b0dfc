"""The ceiling: the least an HTTP/1.1 server can do in Python on this machine, as a reference point.

An asyncio Protocol that reads each request (headers, then `Content-Length` bytes of body, keep-alive) and
answers it with one fixed JSON body, parsing nothing else. `python -m benchmarks.bare [PORT]` prints its URL
on its first stdout line, like the emulator. What the emulator adds on top of this is Flask, the spec-driven
request pipeline and the domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

BODY = b'{"id":"ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA","status":"FILLED"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Responder(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        replies = 0
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            length = 0
            marker = buffer.find(b"ontent-Length:", 0, end)
            if marker < 0:
                marker = buffer.find(b"ontent-length:", 0, end)
            if marker >= 0:
                stop = buffer.find(b"\r\n", marker)
                length = int(buffer[marker + 14:stop])
            total = end + 4 + length
            if len(buffer) < total:
                break
            del buffer[:total]
            replies += 1
        if replies and self.transport is not None:
            self.transport.write(RESPONSE * replies)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Responder, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"bare responder on http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port))


if __name__ == "__main__":
    main()
