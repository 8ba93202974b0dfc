"""``--state PATH``: what the emulator accepted survives a restart, a ``kill -9`` included.

The store's round trip is checked directly; the rest runs the real console script in a subprocess (so a kill is a
real kill) or, where a restart is all that matters, two apps one after the other on the same file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.app import create_app
from mock_server.config import Config
from mock_server.domain.idempotency import StoredResponse
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.oauth.server import Grant
from mock_server.domain.persistence import StateError, StateStore, codec
from mock_server.domain.trading.account import AccountState
from mock_server.domain.trading.models import (
    Fill,
    OrderSide,
    OrderStatus,
    OrderType,
    Strategy,
    TimeInForce,
)
from mock_server.domain.trading.state import OrderState, PositionState
from mock_server.domain.webhooks.alerts import AlertKind
from mock_server.domain.webhooks.dispatcher import Attempt, DeliveryStatus, StoredDelivery
from mock_server.domain.webhooks.endpoints import Endpoint, EndpointSource
from mock_server.domain.webhooks.events import EventType, WebhookEvent
from tests.support.live import serve
from tests.support.receiver import eventually, receiver, signature_ok

AT = datetime(2026, 3, 2, 15, 30, 0, 123456, tzinfo=UTC)
CASH = Decimal("10000000.00")


# -- the store ----------------------------------------------------------------------------------------------------

def _order(order_id: str, status: OrderStatus, *, filled: int = 0) -> OrderState:
    order = OrderState(id=order_id, client_order_id="mine-1", symbol="AAPL", type=OrderType.LIMIT,
                       side=OrderSide.BUY, quantity=10, limit_price=Decimal("150.10"), stop_price=None,
                       time_in_force=TimeInForce.GTC, strategy=Strategy.MOMENTUM, created_at=AT,
                       reserve_price=Decimal("150.10"), last_step=4242, expires_at=AT + timedelta(hours=6))
    for _ in range(filled):
        order.add_fill(Fill(1, Decimal("150.0475"), AT + timedelta(seconds=1)))
    if status is OrderStatus.CANCELLED:
        order.finish(status, AT + timedelta(seconds=2))
    return order


def test_the_store_gives_back_exactly_what_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    assert store.open(7, "key-a").epoch == 0
    writer = store.writer()

    working, done = _order("ord_01JD6Q9S0000000000000000A1", OrderStatus.PARTIALLY_FILLED, filled=3), \
        _order("ord_01JD6Q9S0000000000000000A2", OrderStatus.CANCELLED)
    position = PositionState("AAPL", AT, AT + timedelta(seconds=1))
    position.buy(3, Decimal("450.1425"), AT)
    state = AccountState(Decimal("1000.00"), Decimal("549.8575"), realized_pl=Decimal("-1.25"),
                         positions={"AAPL": position}, orders=[working, done])
    writer.save_account("ann", AT, state, [working, done], replace=True)
    grant = Grant("sandbox-client", "ann", ("trading:read",), "rt_current", retired_refresh_tokens={"rt_old"})
    writer.save_grant("grt_1", grant)
    client = OAuthClient("mine", "s3cret", ("http://127.0.0.1:5000/cb",), ("trading:read",))
    writer.save_client(client)
    endpoint = Endpoint("we_1", "http://127.0.0.1:9/hooks", "whsec_AAAA", frozenset({EventType.ORDER_FILLED}), AT,
                        EndpointSource.CONTROL)
    writer.save_endpoint(endpoint)
    body = b'{"id":"evt_1","type":"order.filled"}'
    event = WebhookEvent("evt_1", EventType.ORDER_FILLED, AT, "acc_ann", body)
    delivery = StoredDelivery("we_1", endpoint.url, DeliveryStatus.PENDING,
                              (Attempt(1, AT, None, 3, "connection refused"), Attempt(2, AT, 503, 9, None)), 2,
                              AT + timedelta(seconds=5), None)
    writer.save_event(event, 3, [delivery])
    response = StoredResponse(201, b'{"id":"ord_1"}', (("Content-Type", "application/json"),))
    writer.save_idempotent("ann", "key-1", "fingerprint", AT + timedelta(days=1), response)
    alerts = frozenset({("acc_ann", "AAPL", AT, AlertKind.PRICE_MOVE)})
    writer.save_alerts(alerts)
    writer.save_clock(True, AT, 12.5)
    writer.save_market_mode(MarketMode.NYSE)
    store.close()

    again = StateStore(path)
    try:
        snapshot = again.open(7, "key-a")
        assert snapshot.epoch == 1
        (saved,) = snapshot.accounts
        assert (saved.subject, saved.created_at) == ("ann", AT)
        restored = saved.state  # orders (fills, Decimals, instants), working set, positions, cash, P/L
        assert list(restored.orders) == [working, done] and list(restored.working) == [working.id]
        assert (restored.starting_cash, restored.cash, restored.realized_pl, restored.positions) == (
            state.starting_cash, state.cash, state.realized_pl, state.positions)
        assert restored.reserved_cash() == working.reserved_cash() and restored.evaluated_through() == 4242
        assert snapshot.grants == (("grt_1", grant),)
        assert snapshot.clients == (client,)
        assert snapshot.endpoints == (endpoint,)
        (saved_event,) = snapshot.events
        assert (saved_event.event, saved_event.sequence, saved_event.deliveries) == (event, 3, (delivery,))
        (saved_response,) = snapshot.responses
        assert (saved_response.scope, saved_response.key, saved_response.response) == ("ann", "key-1", response)
        assert snapshot.alerts == alerts
        assert snapshot.clock is not None and (snapshot.clock.frozen, snapshot.clock.at) == (True, AT)
        assert snapshot.market_mode is MarketMode.NYSE
    finally:
        again.close()


def test_a_closed_account_leaves_the_file_with_its_orders(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.open(7, "key-a")
    writer = store.writer()
    for subject, order_id in (("ann", "ord_01JD6Q9S0000000000000000A1"), ("bob", "ord_01JD6Q9S0000000000000000B1")):
        state = AccountState.fresh(Decimal("1000.00"))
        order = _order(order_id, OrderStatus.CANCELLED)
        state.add_order(order)
        writer.save_account(subject, AT, state, [order], replace=True)
    writer.drop_accounts("ann")
    store.close()
    again = StateStore(tmp_path / "state.db")
    try:
        (kept,) = again.open(7, "key-a").accounts
        assert kept.subject == "bob" and [order.id for order in kept.state.orders] == ["ord_01JD6Q9S0000000000000000B1"]
    finally:
        again.close()


def test_the_store_refuses_another_seed_another_key_and_a_second_emulator(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.open(7, "key-a")
    with pytest.raises(StateError, match="in use"):
        StateStore(path)
    store.close()
    for seed, key, match in ((8, "key-a", "seed 7"), (7, "key-b", "signing key")):
        other = StateStore(path)
        try:
            with pytest.raises(StateError, match=match):
                other.open(seed, key)
        finally:
            other.close()
    (tmp_path / "junk.db").write_text("not a database, just text long enough to not look like an empty file" * 20)
    with pytest.raises(StateError, match="not a state file"):
        StateStore(tmp_path / "junk.db")


def test_a_file_of_the_first_schema_is_migrated_and_read(tmp_path: Path) -> None:
    """Schema 1 had no ``evaluated_to``: its accounts come back with each order evaluated from its own step."""
    path = tmp_path / "old.db"
    resting = _order("ord_01JD6Q9S0000000000000000A1", OrderStatus.OPEN)
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE accounts (subject TEXT PRIMARY KEY, created_at TEXT NOT NULL, starting_cash TEXT NOT NULL,
                                   cash TEXT NOT NULL, realized_pl TEXT NOT NULL, positions TEXT NOT NULL);
            CREATE TABLE orders (id TEXT PRIMARY KEY, subject TEXT NOT NULL, data TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema', '1'), ('seed', '7'), ('key_id', 'key-a'), ('starts', '1');
        """)
        conn.execute("INSERT INTO accounts VALUES ('ann', ?, '1000.00', '1000.00', '0.00', '[]')", (AT.isoformat(),))
        conn.execute("INSERT INTO orders VALUES (?, 'ann', ?)", (resting.id, codec.dump_order(resting)))
    store = StateStore(path)
    try:
        (saved,) = store.open(7, "key-a").accounts
        assert list(saved.state.orders) == [resting] and saved.state.evaluated_through() == resting.last_step
        store.writer().save_account("ann", AT, saved.state, [], replace=False)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)
        assert conn.execute("SELECT evaluated_to FROM accounts").fetchone() == (resting.last_step,)


def test_starting_over_silences_the_writers_of_replaced_services(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    try:
        store.open(7, "key-a")
        old = store.writer()
        store.start_over()
        old.save_grant("grt_late", Grant("sandbox-client", "ann", ("trading:read",), "rt_late"))
        assert store.open(9, "key-b").grants == ()  # a new seed is accepted after starting over
    finally:
        store.close()


# -- a real process, killed ---------------------------------------------------------------------------------------

@dataclass
class Running:
    process: subprocess.Popen[str]
    url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is flushed."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=10, **kwargs)


@contextmanager
def emulator(state: Path, *args: str) -> Iterator[Running]:
    """The console script on a free port with ``--state``; always stopped (Ctrl-C, else killed)."""
    log = (state.parent / "emulator.log").open("a")
    process = subprocess.Popen([sys.executable, "-m", "mock_server", "--port", "0", "--quiet", "--state", str(state),
                                *args], stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line + (state.parent / "emulator.log").read_text()
        running = Running(process, f"http://127.0.0.1:{match.group(1)}")
        # Rate-limit settings are not kept across restarts (see the README); these tests place orders fast.
        assert running.call("PUT", "/_mock/rate-limit", json={"capacity": 100000, "refill_per_second": 100000.0}).ok
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def _decimal_json(response: requests.Response) -> Any:
    assert response.ok, f"{response.status_code} {response.text}"
    return json.loads(response.text, parse_float=Decimal)


def picture(server: Running, token: str) -> dict[str, Any]:
    """Everything a client can see of its account: balances, positions and every order (all pages)."""
    orders: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _decimal_json(server.call("GET", "/v1/orders", token,
                                         params={"limit": 500, **({"cursor": cursor} if cursor else {})}))
        orders += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return {"account": _decimal_json(server.call("GET", "/v1/account", token)),
            "positions": _decimal_json(server.call("GET", "/v1/positions", token))["data"], "orders": orders}


def _place(server: Running, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = server.call("POST", "/v1/orders", token, json=body)
    assert response.status_code == 201, response.text
    return _decimal_json(response)


def _refresh(server: Running, refresh_token: str) -> requests.Response:
    return server.call("POST", "/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                               "client_id": "sandbox-client", "client_secret": "sandbox-secret"})


def test_a_server_killed_mid_run_keeps_everything_it_accepted(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    accepted: list[dict[str, Any]] = []
    refused: list[str] = []
    with emulator(state) as first:
        # A frozen clock keeps resting orders where they were, so what a client was told can be compared exactly
        # (and it checks that the clock itself comes back).
        clock = first.call("POST", "/_mock/clock", json={"action": "freeze"}).json()
        assert first.call("POST", "/_mock/accounts", json={"subject": "kill", "cash": float(CASH)}).ok
        tokens = first.call("POST", "/_mock/tokens", json={"subject": "kill"}).json()
        access = tokens["access_token"]
        _place(first, access, {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 10})
        _place(first, access, {"symbol": "MSFT", "type": "MARKET", "side": "BUY", "quantity": 5})
        _place(first, access, {"symbol": "AAPL", "type": "LIMIT", "side": "BUY", "quantity": 3, "price": 1.00})
        doomed = _place(first, access, {"symbol": "MSFT", "type": "LIMIT", "side": "BUY", "quantity": 2, "price": 1})
        assert first.call("DELETE", f"/v1/orders/{doomed['id']}", access).json()["status"] == "CANCELLED"
        _place(first, access, {"symbol": "AAPL", "type": "MARKET", "side": "SELL", "quantity": 4})
        rotated = _refresh(first, tokens["refresh_token"]).json()
        before = picture(first, rotated["access_token"])

        def keep_placing(worker: int) -> None:
            session = requests.Session()
            count = 0
            while True:
                count += 1
                body: dict[str, Any] = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "type": "MARKET"}
                if count % 3 == 0:
                    body.update(type="LIMIT", price=1.00, client_order_id=f"w{worker}-{count}")
                try:
                    response = session.post(f"{first.url}/v1/orders", json=body, timeout=10,
                                            headers={"Authorization": f"Bearer {access}"})
                except requests.RequestException:
                    return  # the server is gone
                if response.status_code == 201:
                    accepted.append(_decimal_json(response))
                else:
                    refused.append(f"{response.status_code} {response.text}")

        workers = [threading.Thread(target=keep_placing, args=(n,), daemon=True) for n in range(3)]
        for worker in workers:
            worker.start()
        eventually(lambda: len(accepted) >= 30, 30, "30 accepted orders")
        first.kill()  # while the workers are still placing orders
        for worker in workers:
            worker.join(timeout=15)
    assert not refused, refused[:3]
    assert len(accepted) >= 30

    with emulator(state) as second:
        assert second.call("GET", "/_mock/clock").json() == clock  # still frozen, at the same instant
        after = picture(second, rotated["access_token"])  # the access token still verifies: its grant was kept
        found = {order["id"]: order for order in after["orders"]}
        for order in before["orders"] + accepted:  # nothing the client was told about is lost or different
            assert found.get(order["id"]) == order
        # Orders committed in the instant before the kill (never answered) may exist too; the books must balance.
        cash, held = CASH, {"AAPL": 0, "MSFT": 0}
        for order in after["orders"]:
            for fill in order["fills"]:
                sign = 1 if order["side"] == "BUY" else -1
                cash -= sign * fill["price"] * fill["quantity"]
                held[order["symbol"]] += sign * fill["quantity"]
        assert after["account"]["cash"] == cash
        assert {p["symbol"]: p["quantity"] for p in after["positions"]} == {s: q for s, q in held.items() if q}
        assert after["account"]["reserved_cash"] == sum(
            o["price"] * o["remaining_quantity"] for o in after["orders"] if o["status"] == "OPEN")
        # The first access token (same grant) works; the rotated refresh token refreshes; the retired one is
        # recognised as a replay, which revokes the grant, exactly as before the restart.
        assert second.call("GET", "/v1/account", access).status_code == 200
        assert _refresh(second, rotated["refresh_token"]).status_code == 200
        replay = _refresh(second, tokens["refresh_token"])
        assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
        assert second.call("GET", "/v1/account", access).status_code == 401
        fresh = second.call("POST", "/_mock/tokens", json={"subject": "kill"}).json()["access_token"]
        quiet = picture(second, fresh)
        second.kill()

    with emulator(state) as third:  # a kill at rest: the account reads back identical, to the cent
        assert picture(third, fresh) == quiet
        assert third.call("GET", "/v1/account", access).status_code == 401  # the revocation was kept too
        new = _place(third, fresh, {"symbol": "AAPL", "type": "LIMIT", "side": "BUY", "quantity": 1, "price": 1})
        assert new["id"] > max(order["id"] for order in quiet["orders"])  # ids keep sorting, clock frozen or not


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_pending_webhook_survives_a_kill_and_is_delivered_once_the_receiver_is_up(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    config = tmp_path / "tradefence.toml"
    config.write_text("webhook_retry_schedule = [" + ", ".join(["0.3"] * 60) + "]\nwebhook_retry_jitter = 0\n")
    port = _free_port()  # nothing listens there yet: the receiver is down
    with emulator(state, "--config", str(config)) as first:
        endpoint = first.call("POST", "/_mock/webhooks", json={"url": f"http://127.0.0.1:{port}/hooks",
                                                               "events": ["order.filled"]}).json()
        token = first.call("POST", "/_mock/tokens", json={"subject": "hooked"}).json()["access_token"]
        order = _place(first, token, {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 2})

        def failing() -> dict[str, Any] | None:
            events = first.call("GET", "/_mock/webhooks/deliveries").json()["data"]
            attempts = events[0]["deliveries"][0]["attempts"] if events else []
            return events[0] if len(attempts) >= 2 else None

        event = eventually(failing, 15, "two failed attempts")
        assert event["status"] == "pending"
        first.kill()

    with receiver(port) as hooks, emulator(state, "--config", str(config)) as second:
        (got,) = hooks.wait_for(1, "/hooks", timeout=15)
        assert got.id == event["id"]  # the same event, same webhook-id, so a receiver can de-duplicate
        assert got.json["data"]["order"]["id"] == order["id"]
        assert signature_ok(endpoint["secret"], got.headers, got.body)  # the endpoint and its secret were kept

        def delivered() -> dict[str, Any] | None:
            record = second.call("GET", f"/_mock/webhooks/deliveries/{event['id']}").json()
            return record if record["status"] == "succeeded" else None

        record = eventually(delivered, 10, "the delivery to succeed")
        attempts = record["deliveries"][0]["attempts"]
        assert [a["succeeded"] for a in attempts][-1] and len(attempts) >= 3  # the failed ones are still listed
        assert [e["id"] for e in second.call("GET", "/_mock/webhooks").json()["data"]] == [endpoint["id"]]


# -- restarts in process --------------------------------------------------------------------------------------

def test_idempotent_replays_survive_a_restart_and_a_reseed_starts_the_file_over(tmp_path: Path) -> None:
    config = Config(seed=5, state=str(tmp_path / "state.db"))
    body = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}
    app = create_app(config)
    try:
        with serve(app) as url:
            token = requests.post(f"{url}/_mock/tokens", json={"subject": "idem"}, timeout=5).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "once"}
            first = requests.post(f"{url}/v1/orders", json=body, headers=headers, timeout=5)
            assert first.status_code == 201
    finally:
        app.extensions["tradefence"].close()
    app = create_app(config)
    try:
        with serve(app) as url:
            replay = requests.post(f"{url}/v1/orders", json=body, headers=headers, timeout=5)
            assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (201, "true")
            assert replay.json() == first.json()
            orders = requests.get(f"{url}/v1/orders", headers={"Authorization": headers["Authorization"]},
                                  timeout=5).json()["data"]
            assert [order["id"] for order in orders] == [first.json()["id"]]
            assert requests.post(f"{url}/_mock/seed", json={"seed": 6}, timeout=5).ok
    finally:
        app.extensions["tradefence"].close()
    with pytest.raises(StateError, match="seed 6"):  # the file now belongs to seed 6
        create_app(config)
    app = create_app(Config(seed=6, state=config.state))
    try:
        assert app.extensions["tradefence"].engine.summary().orders == 0
    finally:
        app.extensions["tradefence"].close()
