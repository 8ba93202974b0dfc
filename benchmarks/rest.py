"""REST throughput and latency: three operations, several connection counts, one server at a time.

- `GET /v1/orders/{id}`: an order the bench placed, read back (auth, scope, rate limit, lookup, render).
- `POST /v1/orders`: a 1-share MARKET buy of AAPL with a bearer token: auth, JSON body, full validation
  against the spec, rate limit, a fill at the simulated quote. The bench account starts with a very large
  cash balance (config `starting_cash`) so that buying power never runs out mid-run.
- `POST /v1/batch`: 50 `CANCEL_ORDER` operations of unknown (well-formed) order ids: 50 lookups, 50 error
  results, one 200 response; every operation counts against the rate limit. Unknown ids keep the state the
  same from the first request to the last (50 resting limit orders per request would pile up thousands of
  open orders, each re-evaluated as the clock moves, and the run would measure that growth instead).

Before each run one request checks the answer (status and shape); afterwards a run with non-2xx answers or
socket errors is a harness error, not a figure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks import HarnessError
from benchmarks.load import LoadResult, Request, run
from benchmarks.procs import CpuMeter, Server, call

ENDPOINTS = ("get_order", "create_order", "batch")
LABELS = {"get_order": "GET /v1/orders/{id}", "create_order": "POST /v1/orders",
          "batch": "POST /v1/batch (50 ops)"}
BATCH_SIZE = 50
MARKET_ORDER = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
UNLIMITED = {"capacity": 1_000_000, "refill_per_second": 1_000_000}


def unknown_order_id(index: int) -> str:
    return f"ord_{index:026d}"


BATCH = {"operations": [{"action": "CANCEL_ORDER", "data": {"order_id": unknown_order_id(i)}}
                        for i in range(BATCH_SIZE)]}


@dataclass(frozen=True)
class Flavour:
    """How a kind of server is addressed: its path prefix and how it answers the checks."""

    kind: str  # "emulator", "prism" or "bare"
    prefix: str  # Prism serves the spec's paths without the servers' /v1


EMULATOR = Flavour("emulator", "/v1")
PRISM = Flavour("prism", "")
BARE = Flavour("bare", "/v1")


def prepare(server: Server, flavour: Flavour) -> dict[str, Request]:
    """Mint a token, lift the rate limit, place one order to read back; check one answer per endpoint."""
    port, scheme = server.port or 0, server.scheme
    token, order_id = "bench", "ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"
    if flavour.kind in {"emulator", "prism"}:
        status, body = call(port, "POST", "/_mock/tokens", {"subject": "bench"}, scheme=scheme)
        if status != 201 or not isinstance(body, dict) or "access_token" not in body:
            raise HarnessError(f"{server.name}: POST /_mock/tokens answered {status}: {body}")
        token = body["access_token"]
    if flavour.kind == "emulator":
        status, body = call(port, "PUT", "/_mock/rate-limit", UNLIMITED, scheme=scheme)
        if status != 200:
            raise HarnessError(f"{server.name}: PUT /_mock/rate-limit answered {status}: {body}")
    if flavour.kind in {"emulator", "prism"}:
        status, body = call(port, "POST", f"{flavour.prefix}/orders", MARKET_ORDER, token, scheme=scheme)
        if status != 201 or not isinstance(body, dict):
            raise HarnessError(f"{server.name}: POST {flavour.prefix}/orders answered {status}: {body}")
        order_id = body["id"]

    json_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                    "Accept": "application/json"}
    requests = {
        "get_order": Request("GET", f"{flavour.prefix}/orders/{order_id}",
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}),
        "create_order": Request("POST", f"{flavour.prefix}/orders", json.dumps(MARKET_ORDER).encode(),
                                json_headers),
        "batch": Request("POST", f"{flavour.prefix}/batch", json.dumps(BATCH).encode(), json_headers),
    }
    for endpoint, request in requests.items():
        _check(server, flavour, endpoint, request, token, order_id)
    return requests


def _check(server: Server, flavour: Flavour, endpoint: str, request: Request, token: str, order_id: str) -> None:
    body = json.loads(request.body) if request.body else None
    status, answer = call(server.port or 0, request.method, request.path, body, token, scheme=server.scheme)
    expected = 201 if endpoint == "create_order" and flavour.kind != "bare" else 200
    problem = status != expected or not isinstance(answer, dict)
    if not problem and flavour.kind == "emulator":
        assert isinstance(answer, dict)
        if endpoint == "get_order":
            problem = answer.get("id") != order_id
        elif endpoint == "create_order":
            problem = answer.get("status") != "FILLED"
        else:
            results = answer.get("results") or [{}]
            problem = answer.get("failed") != BATCH_SIZE or results[0].get("status") != 404
    if problem:
        raise HarnessError(f"{server.name}: {request.method} {request.path} answered {status}: "
                           f"{json.dumps(answer)[:300]}")


def one_run(server: Server, flavour: Flavour, endpoint: str, connections: int, seconds: float,
            warmup: float) -> LoadResult:
    """One load run from a known state: the emulator is reset first (what a run leaves behind, thousands of
    filled orders and their webhook event records, must not slow down the next), then each endpoint's answer is
    checked once. A run with non-2xx answers or socket errors is a harness error, not a figure."""
    if flavour.kind == "emulator":
        status, body = call(server.port or 0, "POST", "/_mock/reset", {}, scheme=server.scheme)
        if status != 200:
            raise HarnessError(f"{server.name}: POST /_mock/reset answered {status}: {body}")
    requests = prepare(server, flavour)
    with CpuMeter(server) as meter:
        result = run(server.port or 0, requests[endpoint], connections, seconds, warmup, server.scheme)
    result.server_cores, result.foreign_cores = meter.server_cores, meter.foreign_cores
    if result.non_2xx or result.errors or not result.requests:
        raise HarnessError(f"{server.name} {LABELS[endpoint]} at {connections} connections: "
                           f"{result.requests} requests, {result.non_2xx} non-2xx, "
                           f"{result.errors} socket errors")
    return result


def _report(name: str, endpoint: str, result: LoadResult, progress: object, note: str = "") -> None:
    progress(f"  {name:<10} {LABELS[endpoint]:<24} c={result.connections:<3} "  # type: ignore[operator]
             f"{result.rps:>9.0f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
             f"server {result.server_cores:.2f} cores, others {result.foreign_cores:.2f}{note}")


def measure(server: Server, flavour: Flavour, endpoints: Sequence[str], connection_counts: Sequence[int],
            seconds: float, warmup: float, progress: object = print,
            figures: dict[str, dict[int, LoadResult]] | None = None) -> dict[str, dict[int, LoadResult]]:
    """One server alone, each run once. Fills ``figures`` (endpoint -> connections -> result) as it goes, so a
    failure keeps what was measured."""
    figures = {} if figures is None else figures
    for endpoint in endpoints:
        figures[endpoint] = {}
        for connections in connection_counts:
            result = one_run(server, flavour, endpoint, connections, seconds, warmup)
            figures[endpoint][connections] = result
            _report(server.name, endpoint, result, progress)
    return figures


@dataclass(frozen=True)
class Contender:
    """One server of a side-by-side comparison: the connection counts it runs at, and how many rounds."""

    server: Server
    flavour: Flavour
    connections: Sequence[int]
    rounds: int


def side_by_side(contenders: Sequence[Contender], endpoints: Sequence[str], seconds: float, warmup: float,
                 progress: object = print,
                 figures: dict[str, dict[str, dict[int, LoadResult]]] | None = None,
                 ) -> dict[str, dict[str, dict[int, LoadResult]]]:
    """Every contender on the same endpoint and connection count one right after another, round after round,
    who goes first rotating. This machine's speed drifts by up to half over minutes (and the drift does not show
    as other processes' CPU), so figures taken minutes apart do not compare; taken seconds apart, they do. Each
    figure is the round with the median rate, and keeps every round's rate (`rounds`).

    Fills ``figures`` (server name -> endpoint -> connections -> result) as it goes."""
    figures = {} if figures is None else figures
    for endpoint in endpoints:
        for connections in sorted({count for contender in contenders for count in contender.connections}):
            present = [contender for contender in contenders if connections in contender.connections]
            runs: dict[str, list[LoadResult]] = {contender.server.name: [] for contender in present}
            for index in range(max(contender.rounds for contender in present)):
                turn = index % len(present)
                for contender in present[turn:] + present[:turn]:
                    if index >= contender.rounds:
                        continue
                    result = one_run(contender.server, contender.flavour, endpoint, connections, seconds, warmup)
                    runs[contender.server.name].append(result)
                    _report(contender.server.name, endpoint, result, progress,
                            f"  (round {index + 1} of {contender.rounds})")
            for name, results in runs.items():
                middle = sorted(results, key=lambda result: result.rps)[len(results) // 2]
                middle.rounds = [round(result.rps, 1) for result in results]
                figures.setdefault(name, {}).setdefault(endpoint, {})[connections] = middle
    return figures


SOAK_ORDERS = 10_500  # just past 10,000: the webhook dispatcher keeps at most 10,000 event records
SOAK_CONNECTIONS = 16


def soak(server: Server, seconds: float, warmup: float, budget: float = 30.0,
         progress: object = print) -> dict[str, object]:
    """`POST /v1/orders` fresh, then again after ``SOAK_ORDERS`` filled orders (or ``budget`` seconds of them).

    Every fill leaves records behind (the order, its webhook event); a cost that grows with them shows here
    and nowhere else, since the other runs start from a fresh server.
    """
    request = prepare(server, EMULATOR)["create_order"]
    port = server.port or 0
    placed = 2  # prepare's order and check
    if warmup > 0:
        placed += run(port, request, SOAK_CONNECTIONS, warmup, 0).requests
    fresh = run(port, request, SOAK_CONNECTIONS, seconds, 0)
    placed += fresh.requests
    deadline = time.monotonic() + budget
    while placed < SOAK_ORDERS and time.monotonic() < deadline:
        placed += run(port, request, SOAK_CONNECTIONS, min(5.0, max(1.0, deadline - time.monotonic())), 0).requests
    after = run(port, request, SOAK_CONNECTIONS, seconds, 0)
    for result in (fresh, after):
        if result.non_2xx or result.errors:
            raise HarnessError(f"{server.name} soak: {result.non_2xx} non-2xx, {result.errors} socket errors")
    progress(f"  {server.name:<10} POST /v1/orders c={SOAK_CONNECTIONS}: fresh {fresh.rps:.0f} req/s, "  # type: ignore[operator]
             f"after {placed:,} orders {after.rps:.0f} req/s (p99 {fresh.p99_ms:.1f} -> {after.p99_ms:.1f} ms)")
    return {"connections": SOAK_CONNECTIONS, "fresh": fresh.as_dict(), "orders_before": placed,
            "after": after.as_dict()}
