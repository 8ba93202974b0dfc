"""Isolation: does a slow request slow only its own client? (issue 16)

Four clients loop on one heavy request each (wrk, 4 connections): a 100-operation batch, a 500-entry journal page
or a 50-symbol AI recommendation. Meanwhile another client sends a cheap `GET /v1/orders/{id}`, one at a time on
one keep-alive connection, for the same seconds; its latencies are the figure (the target: p99 < 50 ms). The same
probe alone, before the heavy load, gives the quiet baseline.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import asdict, dataclass

from benchmarks import HarnessError, report
from benchmarks.load import LoadResult, Request, run
from benchmarks.procs import HOST, Server, call
from benchmarks.rest import UNLIMITED, unknown_order_id

HEAVY_CLIENTS = 4
JOURNAL_ENTRIES = 500
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AVGO", "ORCL", "CRM", "ADBE", "AMD", "CSCO", "ACN", "IBM", "INTU", "TXN", "QCOM",
           "NOW", "AMAT", "MU", "LRCX", "KLAC", "ADI", "PANW", "SNPS", "CDNS", "ANET", "APH", "MSI", "FTNT", "ADSK",
           "WDAY", "MCHP", "NXPI", "ON", "TEL", "GLW", "HPQ", "HPE", "DELL", "CTSH", "MPWR", "FICO", "TER", "STX",
           "WDC", "NTAP", "SMCI", "ENPH", "FSLR", "PLTR", "CRWD", "DDOG")  # the first 50 of the emulator's tickers
SCENARIOS = ("batch", "journal", "ai")
LABELS = report.ISOLATION_LABELS


@dataclass
class IsolationResult:
    scenario: str
    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    heavy_rps: float  # what the four heavy clients got done meanwhile

    def as_dict(self) -> dict[str, object]:
        return {key: round(value, 2) if isinstance(value, float) else value for key, value in asdict(self).items()}


def _heavy(scenario: str, token: str) -> Request:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    body: dict[str, object]
    if scenario == "batch":
        body = {"operations": [{"action": "CANCEL_ORDER", "data": {"order_id": unknown_order_id(i)}}
                               for i in range(100)]}
        return Request("POST", "/v1/batch", json.dumps(body).encode(), headers)
    if scenario == "journal":
        return Request("GET", f"/_mock/journal?limit={JOURNAL_ENTRIES}", headers={"Accept": "application/json"})
    recommend = {"portfolio": list(SYMBOLS), "risk_tolerance": "MODERATE", "time_horizon": "30_DAYS"}
    return Request("POST", "/v1/ai/recommendations", json.dumps(recommend).encode(), headers)


def _prepare(server: Server) -> tuple[str, str]:
    port = server.port or 0
    for method, path, body in (("POST", "/_mock/reset", {}), ("PUT", "/_mock/rate-limit", UNLIMITED)):
        status, answer = call(port, method, path, body)
        if status != 200:
            raise HarnessError(f"{server.name}: {method} {path} answered {status}: {answer}")
    status, answer = call(port, "POST", "/_mock/tokens", {"subject": "bench"})
    if status != 201 or not isinstance(answer, dict):
        raise HarnessError(f"{server.name}: POST /_mock/tokens answered {status}: {answer}")
    token = answer["access_token"]
    status, answer = call(port, "POST", "/v1/orders", {"symbol": "AAPL", "type": "MARKET", "side": "BUY",
                                                       "quantity": 1}, token)
    if status != 201 or not isinstance(answer, dict):
        raise HarnessError(f"{server.name}: POST /v1/orders answered {status}: {answer}")
    return token, answer["id"]


def _probe(port: int, request: bytes, seconds: float) -> list[float]:
    """One cheap request at a time on one keep-alive connection: each one's latency, in ms."""
    latencies: list[float] = []
    with socket.create_connection((HOST, port), timeout=30) as sock:
        stop_at = time.perf_counter() + seconds
        buffer = b""
        while (sent := time.perf_counter()) < stop_at:
            sock.sendall(request)
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise HarnessError(f"the probe was answered {head[:40]!r}")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            while len(buffer) < length:
                buffer += sock.recv(65536)
            buffer = buffer[length:]
            latencies.append((time.perf_counter() - sent) * 1000)
    return latencies


def measure(server: Server, scenario: str, seconds: float, warmup: float) -> IsolationResult:
    token, order_id = _prepare(server)
    port = server.port or 0
    probe = (f"GET /v1/orders/{order_id} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n"
             f"Accept: application/json\r\n\r\n").encode()
    if scenario == "quiet":
        latencies, heavy_rps = _probe(port, probe, seconds), 0.0
    else:
        if scenario == "journal":  # a full journal: each listing renders 500 entries
            for _ in range(JOURNAL_ENTRIES):
                call(port, "GET", f"/v1/orders/{order_id}", token=token)
        request = _heavy(scenario, token)
        status, answer = call(port, request.method, request.path,
                              json.loads(request.body) if request.body else None, token)
        if status != 200:
            raise HarnessError(f"{server.name}: {request.method} {request.path} answered {status}: "
                               f"{json.dumps(answer)[:300]}")
        heavy: list[LoadResult] = []
        loader = threading.Thread(target=lambda: heavy.append(run(port, request, HEAVY_CLIENTS, seconds + 1,
                                                                  warmup)))
        loader.start()
        time.sleep(warmup + 0.5)  # the heavy clients are at it before the probe starts, and until after it ends
        latencies = _probe(port, probe, seconds)
        loader.join()
        if not heavy or heavy[0].non_2xx or heavy[0].errors:
            raise HarnessError(f"{server.name}: the heavy clients failed: {heavy and heavy[0]}")
        heavy_rps = heavy[0].rps
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return IsolationResult(scenario, len(latencies), pick(0.5), pick(0.99), latencies[-1], heavy_rps)
