"""`scale`: what an account's resting orders and the emulator's history cost per call.

In memory, two emulators run at once and are measured in turns (as `rest.side_by_side` does: this machine's
speed drifts over minutes, so only figures taken seconds apart compare):

- `empty`: `tradefence-mock`, its bench account reset before each run and given 100 filled orders and, from the
  10,000 level on, 100 resting ones after them: a page of its listings shows the kind of orders the loaded
  account's shows (a working order's snapshot is built per read; a final one's is kept).
- `loaded`: the same emulator given 1,000,000 filled orders on the bench account through the domain before it
  serves (`scale_server.py`), to which the bench then adds resting orders, 0, then 10,000, then 100,000: buy
  limits far below the market on ten symbols, 100 per atomic `POST /v1/batch`. Before each run the orders a
  limit-order run added are cancelled, so every run starts at its level.

At each level: `POST /v1/orders` (a market order; a limit order that rests), `GET /v1/orders?limit=50`,
`GET /v1/orders?status=filled&limit=50` (a page below every resting order) and `POST /v1/batch` with 100 atomic
operations (99 resting limits, then a cancel of an unknown order: the batch is rolled back, so it changes
nothing). Each figure is the median of the rounds.

With `--state`: a state file holding 1,000,000 filled orders, written through the domain's `StateStore`; the time
`tradefence-mock --state` takes from launch to its URL line, and its memory; then the market and limit orders and
the batch at 0 and 100,000 resting orders, beside an emulator on an empty state file, in turns (every change is a
committed, synced SQLite transaction there).

Memory: the RSS of `loaded` less `empty`'s after start, per filled order; what a top-up adds to `loaded`'s RSS,
per resting order it adds (RSS only grows, so a figure is an upper bound).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import OUT_DIR, HarnessError
from benchmarks.load import LoadResult, Request, run
from benchmarks.procs import CpuMeter, Server, call

FILLED = 1_000_000
LEVELS = (0, 10_000, 100_000)
STATE_LEVELS = (0, 100_000)
CONNECTIONS = 4
SUBJECT = "bench"
TARGET_RATIO = 1.25  # each figure within this factor of the empty account's
RESTART_TARGET_S = 15.0
UNLIMITED = {"capacity": 1_000_000, "refill_per_second": 1_000_000}
RESTING_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "V", "XOM")
ENDPOINTS = ("market", "limit", "list", "list_filled", "batch")
STATE_ENDPOINTS = ("market", "limit", "batch")
MEASURED_IN_ORDER = ("list", "list_filled", "market", "batch", "limit")
LABELS = {"market": "POST /v1/orders (market)", "limit": "POST /v1/orders (limit, rests)",
          "list": "GET /v1/orders?limit=50", "list_filled": "GET /v1/orders?status=filled&limit=50",
          "batch": "POST /v1/batch (100 ops, atomic, rolled back)"}


def resting_order(index: int) -> dict[str, Any]:
    """A buy limit no price path of a run reaches: 1.00 to 10.99 on stocks that trade in the hundreds."""
    return {"symbol": RESTING_SYMBOLS[index % len(RESTING_SYMBOLS)], "type": "LIMIT", "side": "BUY", "quantity": 1,
            "price": 1 + (index % 1000) / 100, "time_in_force": "GTC"}


MARKET = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
SMALL_HISTORY = {"operations": [{"action": "CREATE_ORDER", "data": MARKET} for _ in range(100)]}
BATCH = {"atomic": True, "operations": [{"action": "CREATE_ORDER", "data": resting_order(i)} for i in range(99)]
         + [{"action": "CANCEL_ORDER", "data": {"order_id": "ord_00000000000000000000000000"}}]}


@dataclass
class Contender:
    """One emulator of a side-by-side comparison, with its bench token. ``baseline``: the empty account, reset
    before each run; otherwise the loaded one, trimmed back to ``level`` resting orders before each run."""

    name: str
    server: Server
    token: str
    baseline: bool
    level: int = 0

    def requests(self) -> dict[str, Request]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        posting = {**headers, "Content-Type": "application/json"}
        return {"market": Request("POST", "/v1/orders", json.dumps(MARKET).encode(), posting),
                "limit": Request("POST", "/v1/orders", json.dumps(resting_order(7)).encode(), posting),
                "list": Request("GET", "/v1/orders?limit=50", headers=headers),
                "list_filled": Request("GET", "/v1/orders?status=filled&limit=50", headers=headers),
                "batch": Request("POST", "/v1/batch", json.dumps(BATCH).encode(), posting)}

    def before_run(self) -> None:
        """The empty account: reset, then 100 filled orders and, from level 10,000 on, 100 resting ones after
        them, so a page of its listings shows the kind of orders the loaded account's shows. The loaded one:
        what a limit-order run added, cancelled, so each run starts at its level."""
        if not self.baseline:
            trim(self, self.level)
            return
        _call(self.server, "POST", "/_mock/reset", {"account_id": f"acc_{SUBJECT}"})
        place(self, [MARKET] * 100)
        if self.level:
            place(self, [resting_order(index) for index in range(100)])


def _call(server: Server, method: str, path: str, body: object = None, token: str | None = None,
          expected: int = 200) -> Any:
    status, answer = call(server.port or 0, method, path, body, token, timeout=120.0)
    if status != expected:
        raise HarnessError(f"{server.name}: {method} {path} answered {status}: {json.dumps(answer)[:300]}")
    return answer


def contender(name: str, server: Server, *, baseline: bool) -> Contender:
    """Lift the rate limit and mint a long-lived bench token."""
    _call(server, "PUT", "/_mock/rate-limit", UNLIMITED)
    token = _call(server, "POST", "/_mock/tokens", {"subject": SUBJECT, "expires_in": 86_400},
                  expected=201)["access_token"]
    return Contender(name, server, token, baseline)


def place(target: Contender, orders: Sequence[dict[str, Any]]) -> None:
    """Place orders through atomic batches of 100 (with --state, one commit per batch)."""
    for start in range(0, len(orders), 100):
        chunk = orders[start:start + 100]
        answer = _call(target.server, "POST", "/v1/batch",
                       {"atomic": True, "operations": [{"action": "CREATE_ORDER", "data": order} for order in chunk]},
                       target.token)
        if answer["succeeded"] != len(chunk):
            raise HarnessError(f"{target.name}: a batch placed {answer['succeeded']} of {len(chunk)} orders")


def trim(target: Contender, level: int) -> None:
    """Cancel the newest resting orders beyond ``level``."""
    while (excess := resting(target.server) - level) > 0:
        page = _call(target.server, "GET", f"/v1/orders?status=open&limit={min(excess, 500)}", token=target.token)
        ids = [order["id"] for order in page["data"]]
        for start in range(0, len(ids), 100):
            _call(target.server, "POST", "/v1/batch",
                  {"atomic": True, "operations": [{"action": "CANCEL_ORDER", "data": {"order_id": order_id}}
                                                  for order_id in ids[start:start + 100]]}, target.token)


def resting(server: Server) -> int:
    return int(_call(server, "GET", "/_mock/state")["open_orders"])


def top_up(target: Contender, count: int) -> tuple[int, float]:
    """Add resting orders until the account has ``count``; returns how many were added and how long it took."""
    have = resting(target.server)
    started = time.perf_counter()
    place(target, [resting_order(have + index) for index in range(max(0, count - have))])
    return max(0, count - have), time.perf_counter() - started


def in_turns(contenders: Sequence[Contender], endpoint: str, seconds: float, warmup: float, rounds: int,
             progress: Callable[[str], None], note: str) -> dict[str, LoadResult]:
    """Each contender once per round, who goes first rotating; each figure is the round with the median rate."""
    runs: dict[str, list[LoadResult]] = {target.name: [] for target in contenders}
    for index in range(rounds):
        turn = index % len(contenders)
        for target in [*contenders[turn:], *contenders[:turn]]:
            target.before_run()
            request = target.requests()[endpoint]
            if warmup > 0:
                run(target.server.port or 0, request, CONNECTIONS, warmup, 0)
            with CpuMeter(target.server) as meter:  # the measured part only: the server's CPU per request
                result = run(target.server.port or 0, request, CONNECTIONS, seconds, 0)
            result.server_cores, result.foreign_cores = meter.server_cores, meter.foreign_cores
            if result.non_2xx or result.errors or not result.requests:
                raise HarnessError(f"{target.name} {LABELS[endpoint]}: {result.requests} requests, "
                                   f"{result.non_2xx} non-2xx, {result.errors} socket errors")
            runs[target.name].append(result)
            progress(f"  {target.name:<7} {note:<14} {LABELS[endpoint]:<46} {result.rps:>8,.0f} req/s  p50 "
                     f"{result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  server {cpu_us(result.as_dict()):,.0f} "
                     f"us CPU/req  others {meter.foreign_cores:.2f} cores  (round {index + 1} of {rounds})")
    figures = {}
    for name, results in runs.items():
        middle = sorted(results, key=lambda result: result.rps)[len(results) // 2]
        middle.rounds = [round(result.rps, 1) for result in results]
        figures[name] = middle
    return figures


def cpu_us(run: dict[str, Any]) -> float:
    """The server's CPU time per request in microseconds: steadier than req/s when other work shares the machine
    (it still pays for shared caches, but not for waiting to be scheduled)."""
    return run["server_cores"] * run["seconds"] / run["requests"] * 1e6 if run["requests"] else 0.0


def measure_levels(empty: Contender, loaded: Contender, levels: Sequence[int], endpoints: Sequence[str],
                   seconds: float, warmup: float, rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Both contenders at every level of resting orders on ``loaded``'s account."""
    figures: dict[str, Any] = {}
    for level in levels:
        empty.level = loaded.level = level
        rss_before = loaded.server.rss_bytes()
        added, took = top_up(loaded, level)
        grown = loaded.server.rss_bytes() - rss_before
        progress(f"  {loaded.name}: {resting(loaded.server):,} resting orders (added {added:,} in {took:.1f} s)")
        entry: dict[str, Any] = {"resting_before": resting(loaded.server), "added": added,
                                 "added_seconds": round(took, 1),
                                 "rss_growth_per_added_order": round(grown / added) if added else None,
                                 "runs": {}}
        for endpoint in [name for name in MEASURED_IN_ORDER if name in endpoints]:
            pair = in_turns([empty, loaded], endpoint, seconds, warmup, rounds, progress, f"{level:,} resting")
            entry["runs"][endpoint] = {name: result.as_dict() for name, result in pair.items()}
        entry["resting_after_limit_runs"] = resting(loaded.server)
        figures[str(level)] = entry
    return figures


def in_memory(make_empty: Callable[[], Server], make_loaded: Callable[[], Server], seconds: float, warmup: float,
              rounds: int, progress: Callable[[str], None]) -> dict[str, Any]:
    with make_empty() as empty_server, make_loaded() as loaded_server:
        seeded = loaded_server.first_line.split(" ", 1)[-1]
        empty_rss, loaded_rss = empty_server.rss_bytes(), loaded_server.rss_bytes()
        progress(f"  loaded: {seeded}; RSS {loaded_rss / 2**20:,.0f} MiB against {empty_rss / 2**20:,.0f} MiB empty")
        empty = contender("empty", empty_server, baseline=True)
        loaded = contender("loaded", loaded_server, baseline=False)
        levels = measure_levels(empty, loaded, LEVELS, ENDPOINTS, seconds, warmup, rounds, progress)
        return {"filled": FILLED, "seeded": seeded, "connections": CONNECTIONS,
                "rss_mib": {"empty": round(empty_rss / 2**20), "loaded": round(loaded_rss / 2**20)},
                "bytes_per_filled_order": round((loaded_rss - empty_rss) / FILLED), "levels": levels}


def build_state_file(path: Path, config: Path) -> float:
    """A state file for ``config``'s seed and signing key holding ``FILLED`` filled orders of the bench account,
    written through the domain's ``StateStore`` (10,000 orders per transaction). Returns the seconds it took."""
    from benchmarks.scale_server import filled_orders, history
    from mock_server.config import load_config
    from mock_server.domain.persistence import StateStore
    from mock_server.domain.persistence.resume import key_id

    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    settings = load_config(config, {})
    started = time.perf_counter()
    store = StateStore(path)
    try:
        store.open(settings.seed, key_id(settings.token_key))
        writer = store.writer()
        now = datetime.now(UTC)
        start = now - timedelta(days=1)
        state = history(FILLED, start, settings.starting_cash, with_orders=False)
        chunk = []
        for order in filled_orders(FILLED, start):
            chunk.append(order)
            if len(chunk) == 10_000:
                writer.save_account(SUBJECT, now, state, chunk, replace=False)
                chunk = []
        writer.save_account(SUBJECT, now, state, chunk, replace=False)
    finally:
        store.close()
    return time.perf_counter() - started


def with_state(make: Callable[[str, Path], Server], config: Path, seconds: float, warmup: float, rounds: int,
               progress: Callable[[str], None]) -> dict[str, Any]:
    full, empty_file = OUT_DIR / "scale-state.db", OUT_DIR / "scale-empty.db"
    built = build_state_file(full, config)
    size = sum(part.stat().st_size for part in full.parent.glob(full.name + "*"))
    progress(f"  state file: {FILLED:,} filled orders written through StateStore in {built:.1f} s "
             f"({size / 2**20:,.0f} MiB)")
    for stale in empty_file.parent.glob(empty_file.name + "*"):
        stale.unlink()
    with make("state-empty", empty_file) as empty_server:
        started = time.perf_counter()
        with make("state-full", full) as full_server:
            restart = time.perf_counter() - started
            empty_rss, full_rss = empty_server.rss_bytes(), full_server.rss_bytes()
            progress(f"  tradefence-mock --state on it: its URL line after {restart:.1f} s; RSS "
                     f"{full_rss / 2**20:,.0f} MiB against {empty_rss / 2**20:,.0f} MiB on an empty file")
            empty = contender("empty", empty_server, baseline=True)
            loaded = contender("loaded", full_server, baseline=False)
            levels = measure_levels(empty, loaded, STATE_LEVELS, STATE_ENDPOINTS, seconds, warmup, rounds, progress)
    return {"filled": FILLED, "build_seconds": round(built, 1), "file_mib": round(size / 2**20),
            "restart_seconds": round(restart, 2),
            "rss_mib": {"empty": round(empty_rss / 2**20), "loaded": round(full_rss / 2**20)},
            "bytes_per_stored_order": round((full_rss - empty_rss) / FILLED), "levels": levels}


def ratios(levels: dict[str, Any], endpoint: str) -> list[tuple[str, float, float, float]]:
    """(level, empty req/s / loaded req/s, loaded p50 / empty p50, loaded CPU per request / empty's) for each
    level measured: above 1, the loaded account is that much slower."""
    found = []
    for level, entry in levels.items():
        pair = entry["runs"].get(endpoint)
        if pair and pair["loaded"]["rps"] and pair["empty"]["p50_ms"]:
            empty, loaded = pair["empty"], pair["loaded"]
            cpu = cpu_us(loaded) / cpu_us(empty) if cpu_us(empty) else 0.0
            found.append((level, empty["rps"] / loaded["rps"], loaded["p50_ms"] / empty["p50_ms"], cpu))
    return found


# -- report -----------------------------------------------------------------------------------------------------

PARTS = {"memory": "in memory", "state": "with --state"}


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the figures the issue sets or asks to report."""
    scale = results.get("scale", {})
    found: list[tuple[str, str, bool | None]] = []
    for part, title in PARTS.items():
        section = scale.get(part)
        if not section:
            continue
        for endpoint in ENDPOINTS:
            measured = ratios(section["levels"], endpoint)
            if not measured:
                continue
            text = (", ".join(f"{int(level):,}: {slower:.2f}x / {later:.2f}x / {cpu:.2f}x"
                              for level, slower, later, cpu in measured)
                    + " (req/s / p50 / server CPU per request, by resting orders)")
            worst = max(max(slower, later) for _, slower, later, _ in measured)
            found.append((f"{LABELS[endpoint]} within {TARGET_RATIO:g}x of an empty account, {title}, "
                          f"{section['filled']:,} filled", text, worst <= TARGET_RATIO))
    memory, state = scale.get("memory"), scale.get("state")
    if state:
        found.append((f"restart on a state file of {state['filled']:,} orders < {RESTART_TARGET_S:g} s",
                      f"{state['restart_seconds']:.1f} s", state["restart_seconds"] < RESTART_TARGET_S))
        found.append(("memory per stored order (restored from the state file)",
                      f"{state['bytes_per_stored_order']:,} bytes", None))
    if memory:
        found.append(("memory per filled order (in memory)", f"{memory['bytes_per_filled_order']:,} bytes", None))
        grown = [entry["rss_growth_per_added_order"] for entry in memory["levels"].values()
                 if entry.get("rss_growth_per_added_order")]
        if grown:
            found.append(("memory per resting order (RSS growth over the top-ups)",
                          " / ".join(f"{value:,}" for value in grown) + " bytes", None))
    return found


def rows(results: dict[str, Any]) -> list[list[str]]:
    out = []
    for part, title in PARTS.items():
        section = results.get("scale", {}).get(part)
        if not section:
            continue
        for level, entry in section["levels"].items():
            for endpoint, pair in entry["runs"].items():
                empty, loaded = pair["empty"], pair["loaded"]
                out.append([title, f"{int(level):,}", LABELS[endpoint],
                            f"{empty['rps']:,.0f} ({empty['p50_ms']:.2f} / {empty['p99_ms']:.2f})",
                            f"{loaded['rps']:,.0f} ({loaded['p50_ms']:.2f} / {loaded['p99_ms']:.2f})",
                            f"{empty['rps'] / loaded['rps']:.2f}x" if loaded["rps"] else "-",
                            f"{cpu_us(empty):,.0f} / {cpu_us(loaded):,.0f}",
                            f"{max(empty.get('foreign_cores', 0.0), loaded.get('foreign_cores', 0.0)):.2f}"])
    return out


def header(results: dict[str, Any]) -> list[str]:
    filled = next((part["filled"] for part in results.get("scale", {}).values()), FILLED)
    return ["emulator", "resting", "operation", "empty account req/s (p50 / p99 ms)",
            f"{filled:,} filled + resting req/s (p50 / p99 ms)", "empty / loaded", "server CPU us/req empty / loaded",
            "others' cores"]


def notes(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale", {})
    filled = next((part["filled"] for part in scale.values()), FILLED)
    found = [f"{CONNECTIONS} connections; the empty account holds 100 filled orders; the loaded account's "
             f"{filled:,} filled orders: "
             + "; ".join(filter(None, [
                 f"in memory, {scale['memory']['seeded']}" if "memory" in scale else "",
                 f"with --state, written to the file in {scale['state']['build_seconds']} s "
                 f"({scale['state']['file_mib']:,} MiB)" if "state" in scale else ""]))]
    for part, title in PARTS.items():
        section = scale.get(part)
        if section:
            grown = max(entry["resting_after_limit_runs"] - int(level) for level, entry in section["levels"].items())
            found.append(f"{title}: each run starts at its level (what a limit-order run added is cancelled "
                         f"before the next); a limit-order run added up to {grown:,} resting orders")
    return found
