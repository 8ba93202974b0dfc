"""Load generation: wrk (Debian's `wrk`, with a generated Lua script for method, body and headers), or, where
wrk is missing, a small asyncio HTTP/1.1 client from the standard library (slower: it may become the ceiling).

Both keep ``connections`` keep-alive connections busy for ``seconds`` after a discarded warm-up of ``warmup``
seconds, and report requests/s, p50/p99/max latency, socket errors and non-2xx answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field

from benchmarks import OUT_DIR, HarnessError
from benchmarks.procs import HOST


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def raw(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class LoadResult:
    tool: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # connect/read/write errors and timeouts
    non_2xx: int
    server_cores: float = 0.0  # CPU the server used during the run (warm-up included), in cores
    foreign_cores: float = 0.0  # CPU used by other work on the machine meanwhile: high means noisy figures
    rounds: list[float] = field(default_factory=list)  # requests/s of every round this figure is the median of

    def as_dict(self) -> dict[str, object]:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run(port: int, request: Request, connections: int, seconds: float, warmup: float,
        scheme: str = "http") -> LoadResult:
    if scheme == "https" and not wrk_available():
        raise HarnessError("load over TLS needs wrk (the asyncio load generator speaks plain HTTP only)")
    generate = _wrk if wrk_available() else _asyncio_load
    if warmup > 0:
        generate(port, request, connections, warmup, scheme)
    return generate(port, request, connections, seconds, scheme)


# -- wrk ------------------------------------------------------------------------------------------------------

_RESULT = re.compile(r"^BENCH-RESULT (.*)$", re.MULTILINE)


def _lua_string(text: str) -> str:
    level = "=" * 4
    if f"]{level}]" in text:
        raise HarnessError("request text collides with the Lua long-bracket delimiter")
    return f"[{level}[{text}]{level}]"


def _lua_script(request: Request) -> str:
    lines = [f"wrk.method = {_lua_string(request.method)}"]
    if request.body:
        lines.append(f"wrk.body = {_lua_string(request.body.decode())}")
    for name, value in request.headers.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    lines.append("""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.1f %.1f %.1f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
""")
    return "\n".join(lines)


def _wrk(port: int, request: Request, connections: int, seconds: float, scheme: str = "http") -> LoadResult:
    text = _lua_script(request)
    script = OUT_DIR / "lua" / f"{request.method.lower()}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.lua"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text)
    threads = max(1, min(connections, 2))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), f"{scheme}://{HOST}:{port}{request.path}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    found = _RESULT.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise HarnessError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    values = [float(word) for word in found.group(1).split()]
    requests, duration_us, connect, read, write, status, timeouts, p50, p99, worst = values
    duration = duration_us / 1e6
    return LoadResult("wrk", connections, duration, int(requests), requests / duration if duration else 0.0,
                      p50 / 1000, p99 / 1000, worst / 1000, int(connect + read + write + timeouts), int(status))


# -- asyncio fallback -----------------------------------------------------------------------------------------

def _asyncio_load(port: int, request: Request, connections: int, seconds: float, scheme: str = "http") -> LoadResult:
    return asyncio.run(_asyncio_main(port, request, connections, seconds))


async def _asyncio_main(port: int, request: Request, connections: int, seconds: float) -> LoadResult:
    raw = request.raw(port)
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0}
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_asyncio_worker(port, raw, stop_at, latencies, counts) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    return LoadResult("asyncio", connections, elapsed, len(latencies), len(latencies) / elapsed, pick(0.5),
                      pick(0.99), latencies[-1] * 1000 if latencies else 0.0, counts["errors"], counts["non_2xx"])


async def _asyncio_worker(port: int, raw: bytes, stop_at: float, latencies: list[float],
                          counts: dict[str, int]) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        counts["errors"] += 1
        return
    try:
        while (sent := time.perf_counter()) < stop_at:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if found is None:
                raise HarnessError("the asyncio load generator needs Content-Length in every response")
            await reader.readexactly(int(found.group(1)))
            latencies.append(time.perf_counter() - sent)
            if not 200 <= status < 300:
                counts["non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["errors"] += 1
    finally:
        writer.close()
