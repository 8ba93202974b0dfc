"""The state file: one SQLite database, written through on every accepted change (see the package docstring)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mock_server.domain.idempotency import StoredResponse
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.oauth.clients import OAuthClient
from mock_server.domain.oauth.server import Grant
from mock_server.domain.persistence import codec
from mock_server.domain.trading.account import AccountState
from mock_server.domain.trading.state import OrderState
from mock_server.domain.webhooks.alerts import AlertKey
from mock_server.domain.webhooks.dispatcher import StoredDelivery
from mock_server.domain.webhooks.endpoints import Endpoint
from mock_server.domain.webhooks.events import EventType, WebhookEvent

SCHEMA_VERSION = "2"  # 2: accounts.evaluated_to (a file of schema 1 is migrated when opened)
_BUSY_SECONDS = 2.0  # how long opening waits for another process's lock before saying the file is in use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    subject TEXT PRIMARY KEY, created_at TEXT NOT NULL, starting_cash TEXT NOT NULL, cash TEXT NOT NULL,
    realized_pl TEXT NOT NULL, positions TEXT NOT NULL, evaluated_to INTEGER);
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, subject TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_by_subject ON orders (subject);
CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants (grant_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_endpoints (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_events (
    id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, type TEXT NOT NULL, created_at TEXT NOT NULL,
    account_id TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (event_id, endpoint_id));
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, expires_at TEXT NOT NULL,
    status INTEGER NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL, PRIMARY KEY (scope, key));
"""
_TABLES = ("accounts", "orders", "oauth_clients", "grants", "webhook_endpoints", "webhook_events",
           "webhook_deliveries", "idempotency", "meta")


class StateError(Exception):
    """The state file cannot be used: another seed or signing key, another schema, or another emulator has it."""


@dataclass(frozen=True)
class SavedAccount:
    subject: str
    created_at: datetime
    state: AccountState


@dataclass(frozen=True)
class SavedClock:
    frozen: bool
    at: datetime  # the reading when saved (what a frozen clock shows again)
    offset: float  # seconds a running clock was ahead of real time


@dataclass(frozen=True)
class SavedResponse:
    scope: str
    key: str
    fingerprint: str
    expires_at: datetime
    response: StoredResponse


@dataclass(frozen=True)
class SavedEvent:
    event: WebhookEvent
    sequence: int
    deliveries: tuple[StoredDelivery, ...]


@dataclass(frozen=True)
class Snapshot:
    """Everything a state file held when the emulator started. ``epoch`` counts the earlier starts on this file."""

    epoch: int
    accounts: tuple[SavedAccount, ...] = ()
    grants: tuple[tuple[str, Grant], ...] = ()
    clients: tuple[OAuthClient, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    events: tuple[SavedEvent, ...] = ()
    responses: tuple[SavedResponse, ...] = ()
    alerts: frozenset[AlertKey] = frozenset()
    clock: SavedClock | None = None
    market_mode: MarketMode | None = None

    def describe(self) -> str:
        orders = sum(len(account.state.orders) for account in self.accounts)
        pending = sum(1 for saved in self.events for d in saved.deliveries if d.status == "pending")
        return (f"{len(self.accounts)} accounts, {orders} orders, {len(self.grants)} grants, "
                f"{pending} pending webhook deliveries")


class StateStore:
    """One SQLite file, one connection guarded by a lock (requests, webhook lanes and the alert loop all write).

    - WAL journal with ``synchronous=FULL``: a commit is on disk when it returns, so a change acknowledged to a
      client survives ``kill -9`` and a power cut alike.
    - ``locking_mode=EXCLUSIVE``: the file is locked while the emulator runs, so a second emulator on the same
      file fails at start ("in use") instead of both writing it. The OS drops the lock when the process dies.
    - Every change is its own transaction, made by the domain object that changed, under its own lock, before
      the caller is answered (write-through: there is no flush that a kill could miss).
    """

    def __init__(self, path: str | Path, *, loads: Callable[[str], Any] = json.loads) -> None:
        """``loads`` parses the orders' JSON at start-up (the composition root hands in a faster parser)."""
        self.path = Path(path)
        self._loads = loads
        self._lock = threading.Lock()
        self._generation = 0
        self.restored: Snapshot | None = None
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state file {self.path}: {exc}") from None
        try:
            self._conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            with self._transaction() as conn:  # the first write takes the exclusive lock and keeps it
                for statement in _SCHEMA.strip().split(";"):
                    if statement.strip():
                        conn.execute(statement)
                version = self._meta(conn, "schema")
                if version is None:
                    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif version == "1":
                    # Accounts read back without it have their orders evaluated again from each order's own step.
                    conn.execute("ALTER TABLE accounts ADD COLUMN evaluated_to INTEGER")
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (SCHEMA_VERSION,))
                elif version != SCHEMA_VERSION:
                    raise StateError(f"{self.path} has state schema {version}; this emulator reads {SCHEMA_VERSION}")
            # Every page, once, before anything is read or written: a damaged one fails the start here, rather than
            # a request later (an index page is read only when a write needs it).
            problem = str(self._conn.execute("PRAGMA quick_check(1)").fetchone()[0])
            if problem != "ok":  # e.g. "*** in database main ***\nOn tree page 6 cell 0: invalid page number ..."
                raise StateError(f"the state file {self.path} is damaged ({problem.splitlines()[-1]}): restore it "
                                 f"from a copy, or use another --state file")
        except sqlite3.OperationalError as exc:
            self.close()
            if "locked" in str(exc):
                raise StateError(f"the state file {self.path} is in use by another emulator") from None
            raise StateError(f"cannot use the state file {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self.close()
            if exc.sqlite_errorname == "SQLITE_CORRUPT":
                raise StateError(f"the state file {self.path} is damaged ({exc}): restore it from a copy, or use "
                                 f"another --state file") from None
            raise StateError(f"{self.path} is not a state file: {exc}") from None
        except StateError:
            self.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def open(self, seed: int, key_id: str) -> Snapshot:
        """Check the file belongs to this seed and signing key, count this start, and read everything back.

        A file written with another seed or signing key is refused rather than adopted: its prices, ids and
        tokens only make sense with what made them, and silently switching would surprise whoever passed the
        flags. The message says which setting to change.
        """
        with self._lock, self._transaction() as conn:
            stored_seed = self._meta(conn, "seed")
            if stored_seed is not None and stored_seed != str(seed):
                raise StateError(f"the state file {self.path} was written with seed {stored_seed}, not {seed}: "
                                 f"start with --seed {stored_seed} (config key seed), or use another --state file")
            stored_key = self._meta(conn, "key_id")
            if stored_key is not None and stored_key != key_id:
                raise StateError(f"the state file {self.path} was written with another signing key: start with "
                                 f"the signing_key it was written with (or without one, if it had none), or use "
                                 f"another --state file")
            with self._reading("meta"):
                epoch = int(self._meta(conn, "starts") or 0)
            for key, value in (("seed", str(seed)), ("key_id", key_id), ("starts", str(epoch + 1))):
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
            try:
                self.restored = self._read(conn, epoch)
            except sqlite3.DatabaseError as exc:  # a page quick_check passed but reading did not
                raise StateError(f"the state file {self.path} is damaged ({exc}): restore it from a copy, or use "
                                 f"another --state file") from None
            return self.restored

    def start_over(self) -> None:
        """Empty the file for a reseed (``POST /_mock/seed``), and silence the writers of the services it
        replaces: a request still running on them must not write into the new state."""
        with self._lock, self._transaction() as conn:
            self._generation += 1
            for table in _TABLES:
                if table != "meta":
                    conn.execute(f"DELETE FROM {table}")  # the names are constants
            conn.execute("DELETE FROM meta WHERE key != 'schema'")

    def writer(self) -> StateWriter:
        """The write-through side for one set of services (until the next ``start_over``)."""
        with self._lock:
            return StateWriter(self, self._generation)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals ----------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        if conn is None:
            raise StateError(f"the state file {self.path} is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def writing(self, generation: int) -> Iterator[sqlite3.Connection | None]:
        """One write transaction for a writer of ``generation``; None (write nothing) when the writer is stale (a
        reseed happened) or the file is closed (shutdown: a request thread may finish after the services closed)."""
        with self._lock:
            if generation != self._generation or self._conn is None:
                yield None
                return
            with self._transaction() as conn:
                yield conn

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _read(self, conn: sqlite3.Connection, epoch: int) -> Snapshot:
        orders: dict[str, list[OrderState]] = {}
        decode = codec.OrderDecoder(self._loads)
        with self._reading("orders"):
            for subject, data in conn.execute("SELECT subject, data FROM orders ORDER BY id"):
                orders.setdefault(subject, []).append(decode(data))
        accounts = []
        with self._reading("accounts"):
            for subject, created_at, starting_cash, cash, realized_pl, positions, evaluated_to in conn.execute(
                    "SELECT subject, created_at, starting_cash, cash, realized_pl, positions, evaluated_to "
                    "FROM accounts"):
                mine = orders.get(subject, [])
                if evaluated_to is not None:
                    # An order written before its account was evaluated further has an older last_step: every
                    # resting order was evaluated through evaluated_to when the account was last written.
                    for order in mine:
                        if not order.status.is_final and not order.pinned:
                            order.last_step = max(order.last_step, int(evaluated_to))
                state = AccountState(codec.amount(starting_cash), codec.amount(cash),
                                     realized_pl=codec.amount(realized_pl), positions=codec.load_positions(positions),
                                     orders=mine)
                accounts.append(SavedAccount(subject, datetime.fromisoformat(created_at), state))
        deliveries: dict[str, list[StoredDelivery]] = {}
        with self._reading("webhook_deliveries"):
            for event_id, data in conn.execute("SELECT event_id, data FROM webhook_deliveries ORDER BY rowid"):
                deliveries.setdefault(event_id, []).append(codec.load_delivery(data))
        events = []
        with self._reading("webhook_events"):
            for event_id, sequence, kind, created_at, account_id, body in conn.execute(
                    "SELECT id, sequence, type, created_at, account_id, body FROM webhook_events ORDER BY sequence"):
                event = WebhookEvent(event_id, EventType(kind), datetime.fromisoformat(created_at), account_id,
                                     bytes(body))
                events.append(SavedEvent(event, int(sequence), tuple(deliveries.get(event_id, ()))))
        with self._reading("idempotency"):
            responses = tuple(
                SavedResponse(scope, key, fingerprint, datetime.fromisoformat(expires_at),
                              StoredResponse(int(status), bytes(body), tuple(tuple(h) for h in json.loads(headers))))
                for scope, key, fingerprint, expires_at, status, body, headers in conn.execute(
                    "SELECT scope, key, fingerprint, expires_at, status, body, headers FROM idempotency"))
        with self._reading("meta"):
            clock = self._meta(conn, "clock")
            saved_clock = None
            if clock is not None:
                data = json.loads(clock)
                saved_clock = SavedClock(bool(data["frozen"]), datetime.fromisoformat(data["at"]),
                                         float(data["offset"]))
            alerts_text = self._meta(conn, "alerts")
            alerts = codec.load_alerts(alerts_text) if alerts_text else frozenset()
            mode = self._meta(conn, "market_mode")
            market_mode = None if mode is None else MarketMode(mode)
        with self._reading("grants"):
            grants = tuple((grant_id, codec.load_grant(data))
                           for grant_id, data in conn.execute("SELECT grant_id, data FROM grants ORDER BY grant_id"))
        with self._reading("oauth_clients"):
            clients = tuple(codec.load_client(data)
                            for (data,) in conn.execute("SELECT data FROM oauth_clients ORDER BY rowid"))
        with self._reading("webhook_endpoints"):
            endpoints = tuple(codec.load_endpoint(data)
                              for (data,) in conn.execute("SELECT data FROM webhook_endpoints ORDER BY rowid"))
        return Snapshot(epoch=epoch, accounts=tuple(accounts), grants=grants, clients=clients, endpoints=endpoints,
                        events=tuple(events), responses=responses, alerts=alerts, clock=saved_clock,
                        market_mode=market_mode)

    @contextmanager
    def _reading(self, table: str) -> Iterator[None]:
        """A row of `table` that does not decode (edited by hand, written by another program) fails the start with
        one line naming the file and the table, as the other state errors do, instead of a traceback."""
        try:
            yield
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
            reason = str(exc) if not isinstance(exc, ArithmeticError) else "not a number"
            raise StateError(f"the state file {self.path} has a row in {table} that cannot be read "
                             f"({type(exc).__name__}: {reason}): fix or remove it, or use another --state file"
                             ) from None


class StateWriter:
    """Write-through for one set of services: implements every ``persist_with`` protocol of the domain
    (``AccountStore``, ``GrantStore``, ``EndpointStore``, ``DeliveryStore``, ``IdempotencyRecords``,
    ``AlertStore``) plus the clock. Each call is one committed transaction."""

    def __init__(self, store: StateStore, generation: int) -> None:
        self._store = store
        self._generation = generation

    def _writing(self) -> contextlib.AbstractContextManager[sqlite3.Connection | None]:
        return self._store.writing(self._generation)

    # -- trading ----------------------------------------------------------------------------------------------

    def save_account(self, subject: str, created_at: datetime, state: AccountState, orders: Sequence[OrderState],
                     *, replace: bool) -> None:
        with self._writing() as conn:
            if conn is None:
                return
            conn.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (subject, codec.instant(created_at), str(state.starting_cash), str(state.cash),
                          str(state.realized_pl), codec.dump_positions(state.positions), state.evaluated_through()))
            if replace:
                conn.execute("DELETE FROM orders WHERE subject = ?", (subject,))
            conn.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)",
                             [(order.id, subject, codec.dump_order(order)) for order in orders])

    def drop_accounts(self, subject: str | None = None) -> None:
        """Every account, or one subject's."""
        with self._writing() as conn:
            if conn is None:
                return
            if subject is None:
                conn.execute("DELETE FROM orders")
                conn.execute("DELETE FROM accounts")
            else:
                conn.execute("DELETE FROM orders WHERE subject = ?", (subject,))
                conn.execute("DELETE FROM accounts WHERE subject = ?", (subject,))

    def save_market_mode(self, mode: MarketMode) -> None:
        self._set_meta("market_mode", str(mode))

    # -- OAuth ------------------------------------------------------------------------------------------------

    def save_grant(self, grant_id: str, grant: Grant) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO grants VALUES (?, ?)", (grant_id, codec.dump_grant(grant)))

    def drop_grants(self) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("DELETE FROM grants")

    def save_client(self, client: OAuthClient) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO oauth_clients VALUES (?, ?)",
                             (client.client_id, codec.dump_client(client)))

    # -- webhooks ---------------------------------------------------------------------------------------------

    def save_endpoint(self, endpoint: Endpoint) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO webhook_endpoints VALUES (?, ?)",
                             (endpoint.id, codec.dump_endpoint(endpoint)))

    def drop_endpoint(self, endpoint_id: str) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))

    def replace_endpoints(self, endpoints: Sequence[Endpoint]) -> None:
        """The registry as it stands after a restore (configured endpoints may have come or gone)."""
        with self._writing() as conn:
            if conn is not None:
                conn.execute("DELETE FROM webhook_endpoints")
                conn.executemany("INSERT INTO webhook_endpoints VALUES (?, ?)",
                                 [(e.id, codec.dump_endpoint(e)) for e in endpoints])

    def save_event(self, event: WebhookEvent, sequence: int, deliveries: Sequence[StoredDelivery]) -> None:
        with self._writing() as conn:
            if conn is None:
                return
            conn.execute("INSERT OR REPLACE INTO webhook_events VALUES (?, ?, ?, ?, ?, ?)",
                         (event.id, sequence, str(event.type), codec.instant(event.created_at), event.account_id,
                          event.body))
            conn.executemany("INSERT OR REPLACE INTO webhook_deliveries VALUES (?, ?, ?)",
                             [(event.id, d.endpoint_id, codec.dump_delivery(d)) for d in deliveries])

    def save_delivery(self, event_id: str, delivery: StoredDelivery) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO webhook_deliveries VALUES (?, ?, ?)",
                             (event_id, delivery.endpoint_id, codec.dump_delivery(delivery)))

    def drop_events(self, event_ids: Sequence[str] | None) -> None:
        with self._writing() as conn:
            if conn is None:
                return
            if event_ids is None:
                conn.execute("DELETE FROM webhook_deliveries")
                conn.execute("DELETE FROM webhook_events")
                return
            conn.executemany("DELETE FROM webhook_deliveries WHERE event_id = ?", [(e,) for e in event_ids])
            conn.executemany("DELETE FROM webhook_events WHERE id = ?", [(e,) for e in event_ids])

    def save_alerts(self, active: frozenset[AlertKey]) -> None:
        self._set_meta("alerts", codec.dump_alerts(active))

    # -- idempotency ------------------------------------------------------------------------------------------

    def save_idempotent(self, scope: str, key: str, fingerprint: str, expires_at: datetime,
                        response: StoredResponse) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (scope, key, fingerprint, codec.instant(expires_at), response.status, response.body,
                              codec.dumps([list(h) for h in response.headers])))

    def drop_idempotent(self, keys: Sequence[tuple[str, str]] | None) -> None:
        with self._writing() as conn:
            if conn is None:
                return
            if keys is None:
                conn.execute("DELETE FROM idempotency")
            else:
                conn.executemany("DELETE FROM idempotency WHERE scope = ? AND key = ?", list(keys))

    # -- clock ------------------------------------------------------------------------------------------------

    def save_clock(self, frozen: bool, at: datetime, offset: float) -> None:
        self._set_meta("clock", codec.dumps({"frozen": frozen, "at": codec.instant(at), "offset": offset}))

    def _set_meta(self, key: str, value: str) -> None:
        with self._writing() as conn:
            if conn is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

