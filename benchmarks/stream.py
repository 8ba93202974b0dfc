"""Market-data fan-out: aggregate ticks/s delivered to N websocket clients, delivery lag, server memory.

Each client is a raw asyncio Protocol speaking just enough RFC 6455 (the handshake, masked client frames,
unmasked server frames, pong): a general websocket library costs more per message than the server does, and
client and server share this machine's two cores. Every client subscribes to the same 10 symbols.

A tick is one `quote` or one `trade` message (openapi.yaml `StreamQuote`, `StreamTrade`); each step of the
simulator (`tick_seconds`) publishes one of each per subscribed symbol, so the most a client can receive is
20 / tick_seconds ticks/s. Lag is receipt time minus the message's `timestamp` (the step's start on the
emulator's clock, which runs in real time unless frozen). `seq` gaps count messages the server dropped for a
client that fell behind (its bounded queue drops the oldest).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from benchmarks.procs import HOST, Server, group_pids, machine_busy_seconds

PATH = "/market-data"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "V", "JNJ")
_HEAD = re.compile(rb'\{"type":"(\w+)","seq":(\d+),"timestamp":"([^"]+)"')
_HANDSHAKE_PARALLEL = 25
ACK_SECONDS = 5.0


class StreamUnavailable(Exception):
    """The server has no /market-data websocket (yet)."""


@dataclass
class StreamResult:
    clients: int
    connected: int  # upgraded
    subscribed: int  # whose subscription was acknowledged within the time allowed
    starved: int  # connected clients that received no tick in the measured window
    seconds: float
    ticks: int
    ticks_per_s: float
    ceiling_per_s: float  # what the tick interval allows: clients x 10 symbols x 2 / tick_seconds
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    dropped: int  # seq gaps: messages the server dropped because a client fell behind
    errors: int  # error messages received
    rss_mib: float
    server_cpu: float  # cores the server used during the window (1.0 = one full core)
    client_cpu: float  # cores this harness used during the window
    foreign_cores: float  # cores other work on the machine used meanwhile: high means noisy figures

    def as_dict(self) -> dict[str, object]:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}


class Stats:
    def __init__(self) -> None:
        self.measuring = False
        self.ticks = 0
        self.lags: list[float] = []
        self.dropped = 0
        self.errors = 0
        self.acked = 0
        self._epochs: dict[bytes, float] = {}

    def epoch(self, stamp: bytes) -> float:
        value = self._epochs.get(stamp)
        if value is None:
            if len(self._epochs) > 4096:
                self._epochs.clear()
            value = datetime.fromisoformat(stamp.decode()).timestamp()
            self._epochs[stamp] = value
        return value


def _frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (clients must mask, RFC 6455 5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + mask + masked


class Client(asyncio.Protocol):
    def __init__(self, stats: Stats, port: int, symbols: tuple[str, ...]) -> None:
        self.stats = stats
        self.port = port
        self.symbols = symbols
        self.buffer = bytearray()
        self.open = False
        self.seq = 0
        self.ticks = 0  # in the measured window
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.acked: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(  # type: ignore[union-attr]
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        lost = ConnectionError("the server closed the connection")
        if not self.upgraded.done():
            self.upgraded.set_exception(lost)
        elif self.open and not self.acked.done():
            self.acked.set_exception(lost)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(buffer[:buffer.find(b"\r\n")])
            del buffer[:end + 4]
            if b" 101 " not in status_line + b" ":
                self.upgraded.set_exception(StreamUnavailable(status_line.decode(errors="replace")))
                return
            self.open = True
            self.upgraded.set_result(None)
        self._frames(now)

    def subscribe(self) -> None:
        subscribe = json.dumps({"action": "subscribe", "symbols": list(self.symbols)}).encode()
        self.transport.write(_frame(subscribe))  # type: ignore[union-attr]

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        size = len(buffer)
        position = 0
        stats = self.stats
        while size - position >= 2:
            opcode = buffer[position] & 0x0F
            length = buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2:position + 4], "big")
                start = position + 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2:position + 10], "big")
                start = position + 10
            end = start + length
            if end > size:
                break
            position = end
            if opcode == 1:
                found = _HEAD.match(buffer, start, end)
                if found is None:
                    stats.errors += 1
                    continue
                kind, seq, stamp = found.groups()
                number = int(seq)
                if number != self.seq + 1:
                    stats.dropped += number - self.seq - 1
                self.seq = number
                if kind in (b"quote", b"trade"):
                    if stats.measuring:
                        self.ticks += 1
                        stats.ticks += 1
                        stats.lags.append(now - stats.epoch(stamp))
                elif kind == b"subscription":
                    if not self.acked.done():
                        self.acked.set_result(None)
                elif kind == b"error":
                    stats.errors += 1
            elif opcode == 9 and self.transport is not None:
                self.transport.write(_frame(bytes(buffer[start:end]), opcode=10))
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
        if position:
            del buffer[:position]


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def _connect(loop: asyncio.AbstractEventLoop, port: int, stats: Stats, gate: asyncio.Semaphore,
                   timeout: float) -> Client | None:
    async with gate:
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(lambda: Client(stats, port, SYMBOLS), HOST, port), timeout)
            await asyncio.wait_for(client.upgraded, timeout)
        except StreamUnavailable:
            raise
        except (OSError, TimeoutError, ConnectionError):
            return None
        return client


async def _measure(server: Server, clients: int, seconds: float, warmup: float,
                   tick_seconds: float) -> StreamResult:
    loop = asyncio.get_running_loop()
    stats = Stats()
    gate = asyncio.Semaphore(_HANDSHAKE_PARALLEL)
    port = server.port or 0
    connected: list[Client] = []
    subscribed = 0
    try:
        results = await asyncio.gather(*(_connect(loop, port, stats, gate, 30.0) for _ in range(clients)),
                                       return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, StreamUnavailable):
                raise outcome
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                connected.append(outcome)
        # Everyone subscribes only once all are connected: handshakes then do not compete with ticks already
        # flowing to the first clients (and the figure is about delivery, not about connecting).
        for client in connected:
            client.subscribe()
        # A server that cannot keep up may leave some clients without even the acknowledgement: they stay
        # in the run (and count as starved if they get no tick), so the aggregate is over every client.
        acks = await asyncio.gather(*(asyncio.wait_for(client.acked, ACK_SECONDS) for client in connected),
                                    return_exceptions=True)
        subscribed = sum(1 for ack in acks if ack is None)
        await asyncio.sleep(warmup)
        pids = group_pids(server.pid)
        server_cpu, client_cpu, machine = _cpu_seconds(pids), time.process_time(), machine_busy_seconds()
        stats.ticks, stats.lags, stats.dropped = 0, [], 0
        stats.measuring = True
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        stats.measuring = False
        elapsed = time.perf_counter() - started
        server_cpu = (_cpu_seconds(pids) - server_cpu) / elapsed
        client_cpu = (time.process_time() - client_cpu) / elapsed
        foreign = max(0.0, (machine_busy_seconds() - machine) / elapsed - server_cpu - client_cpu)
        rss = server.rss_bytes() / 2**20
    finally:
        for client in connected:
            if client.transport is not None:
                client.transport.abort()
    lags = sorted(stats.lags)

    def pick(q: float) -> float:
        return lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else 0.0

    starved = sum(1 for client in connected if client.ticks == 0)
    return StreamResult(clients, len(connected), subscribed, starved, elapsed, stats.ticks, stats.ticks / elapsed,
                        clients * len(SYMBOLS) * 2 / tick_seconds, pick(0.5), pick(0.99),
                        lags[-1] * 1000 if lags else 0.0, stats.dropped, stats.errors, rss, server_cpu,
                        client_cpu, foreign)


def measure(server: Server, clients: int, seconds: float, warmup: float, tick_seconds: float) -> StreamResult:
    """Raises StreamUnavailable when the server does not upgrade /market-data."""
    return asyncio.run(_measure(server, clients, seconds, warmup, tick_seconds))
