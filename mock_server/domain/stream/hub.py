"""The market-data hub: who is subscribed to what, and one publisher thread that feeds every connection.

Ticks follow the emulator's clock. Each step of the simulator (`tick_seconds`) is published once, as one
quote and one trade per subscribed symbol, priced by the simulator for that step; a market order filled
during the step fills at that very quote. When the clock is frozen no new step begins, so no new ticks are
published; setting or advancing the clock publishes the new step at once, from the thread that moved it
(a jump over many steps publishes only the step it lands in). Heartbeats and the authentication timeout run
on wall-clock time instead, because they are about the connection, not the market: a frozen market still
has a live server.

One thread serves the whole hub, not one per client: publishing only queues into each connection's bounded
outbox, and each connection's own sender does the writing, so a client that stops reading delays nobody.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.oauth.tokens import Principal
from mock_server.domain.stream.connection import Connection
from mock_server.domain.stream.messages import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    Authenticated,
    Heartbeat,
    StreamFault,
    Subscribed,
)

_STEP_SLACK = 0.001  # wake just after a step boundary, never just before it
_MIN_WAIT = 0.001
_REQUIRED = "Authentication required"
_MAX_CATCH_UP = 50  # steps; more than that behind is a clock jump, not a late wake-up


@dataclass(frozen=True)
class StreamSettings:
    heartbeat_seconds: float = 15.0
    queue_size: int = 1000
    require_auth: bool = False
    auth_timeout_seconds: float = 10.0
    close_grace_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be positive")
        if self.queue_size < 1:
            raise ValueError("stream_queue_size must be at least 1")
        if self.auth_timeout_seconds <= 0:
            raise ValueError("stream_auth_timeout must be positive")


class StreamHub:
    """Connections, subscriptions and the publisher. Thread-safe; the publisher starts with the first client.

    ``verify`` turns a bearer token into a Principal or raises ApiError 1001. ``monotonic`` is the wall clock
    for heartbeats and timeouts. With ``publisher=False`` no thread runs and the caller drives ``tick()``.
    """

    def __init__(self, simulator: MarketSimulator, clock: Clock, verify: Callable[[str], Principal],
                 settings: StreamSettings | None = None, *, monotonic: Callable[[], float] = time.monotonic,
                 publisher: bool = True) -> None:
        self._simulator = simulator
        self._clock = clock
        self._verify = verify
        self.settings = settings or StreamSettings()
        self._monotonic = monotonic
        self._publisher = publisher
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._wakeup = threading.Event()
        self._numbers = itertools.count(1)
        self._connections: dict[Connection, None] = {}
        self._subscribers: dict[str, dict[Connection, None]] = {}
        self._last_step: int | None = None
        self._next_heartbeat = monotonic() + self.settings.heartbeat_seconds
        self._thread: threading.Thread | None = None
        self._closed = False
        clock.on_change(self._clock_moved)

    # -- connections ----------------------------------------------------------------------------------------

    def connect(self, wake: Callable[[], None], abort: Callable[[], None], *, token: str | None = None) -> Connection:
        """Register a client. A token from the handshake authenticates it at once (a bad one refuses it)."""
        with self._lock:
            connection = Connection(next(self._numbers), self.settings.queue_size, wake, abort)
            if self._closed:
                connection.close(CLOSE_GOING_AWAY, "The server is shutting down")
                return connection
            self._connections[connection] = None
            if self.settings.require_auth:
                connection.auth_deadline = self._monotonic() + self.settings.auth_timeout_seconds
            self._start_publisher()
        self._wakeup.set()  # the publisher may need an earlier wake-up for the new auth deadline
        if token is not None:
            self.authenticate(connection, token)
        return connection

    def disconnect(self, connection: Connection) -> None:
        with self._lock:
            self._unsubscribe(connection, list(connection.symbols))
            self._connections.pop(connection, None)
            self._changed.notify_all()

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    # -- what clients ask -----------------------------------------------------------------------------------

    def authenticate(self, connection: Connection, token: str) -> None:
        try:
            principal = self._verify(token)
        except ApiError as exc:
            self.refuse(connection, exc.message)
            return
        with self._lock:
            connection.principal = principal
            connection.auth_deadline = None
            connection.push(Authenticated(principal.subject, self._clock.now()))

    def subscribe(self, connection: Connection, symbols: Iterable[str]) -> None:
        """Add the known symbols; acknowledge with the whole list, name the unknown ones (1004), and send the
        current step's quote and trade for each new symbol at once, so an order placed right after subscribing
        never fills at a price the client has not seen."""
        if not self._admitted(connection):
            return
        wanted = list(dict.fromkeys(symbols))
        universe = self._simulator.universe
        unknown = tuple(symbol for symbol in wanted if symbol not in universe)
        with self._lock:
            self._publish_step(self._clock.now())  # so the snapshot below is of the step the others last saw
            added = [symbol for symbol in wanted if symbol in universe and symbol not in connection.symbols]
            if connection not in self._connections:
                return
            for symbol in added:
                connection.symbols[symbol] = None
                self._subscribers.setdefault(symbol, {})[connection] = None
            now = self._clock.now()
            connection.push(Subscribed(tuple(connection.symbols), now))
            if unknown:
                names = ", ".join(unknown)
                connection.push(StreamFault(ErrorCode.INVALID_SYMBOL, f"Unknown symbol{'s' * (len(unknown) > 1)} "
                                            f"{names}", now, unknown))
            if self._last_step is not None:
                at = self._simulator.step_start(self._last_step)
                for symbol in added:
                    connection.push(self._simulator.quote(symbol, at))
                    connection.push(self._simulator.trade(symbol, at))

    def unsubscribe(self, connection: Connection, symbols: Iterable[str]) -> None:
        """Remove symbols (ones not subscribed are ignored) and acknowledge with the whole remaining list."""
        if not self._admitted(connection):
            return
        with self._lock:
            self._unsubscribe(connection, symbols)
            connection.push(Subscribed(tuple(connection.symbols), self._clock.now()))

    def report(self, connection: Connection, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        """An error about what the client sent (4000, 4001); the connection stays open."""
        connection.push(StreamFault(code, message, self._clock.now(), field=field))

    def refuse(self, connection: Connection, message: str, *, reason: str = "Authentication failed") -> None:
        """Authentication required or failed: say why (1001), then close with 4401 and ``reason``."""
        with self._lock:
            connection.push(StreamFault(ErrorCode.INVALID_CREDENTIALS, message, self._clock.now()))
            connection.close(CLOSE_UNAUTHORIZED, reason)
            self._unsubscribe(connection, list(connection.symbols))

    # -- the publisher --------------------------------------------------------------------------------------

    def tick(self) -> float:
        """One round of the publisher: publish a new step if one began, heartbeats and auth timeouts if due.

        Returns how long (wall-clock seconds) until something may next be due.
        """
        now = self._clock.now()
        self._publish_step(now)
        moment = self._monotonic()
        with self._lock:
            if self._closed:
                return self.settings.heartbeat_seconds
            if moment >= self._next_heartbeat:
                beat = Heartbeat(now)
                for connection in self._connections:
                    connection.push(beat)
                self._next_heartbeat = moment + self.settings.heartbeat_seconds
            deadlines = []
            for connection in self._connections:
                if connection.auth_deadline is None:
                    continue
                if connection.auth_deadline > moment:
                    deadlines.append(connection.auth_deadline)
                    continue
                connection.auth_deadline = None
                self.refuse(connection, f"Authentication required: no credentials within "
                                        f"{self.settings.auth_timeout_seconds:g} s", reason=_REQUIRED)
            step = self._last_step
        waits = [self._next_heartbeat - moment, *(deadline - moment for deadline in deadlines)]
        if not self._clock.frozen and step is not None:
            until_step = (self._simulator.step_start(step + 1) - now).total_seconds()
            waits.append(until_step + _STEP_SLACK)
        return max(min(waits), _MIN_WAIT)

    def close(self, grace: float | None = None) -> None:
        """Close every connection with 1001 and stop the publisher.

        Senders get ``grace`` seconds to flush and send their close frame; a sender still stuck writing to a
        client that stopped reading is then aborted (its socket shut down), so shutdown never hangs.
        """
        grace = self.settings.close_grace_seconds if grace is None else grace
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
            connections = list(self._connections)
        self._wakeup.set()
        if thread is not None:
            thread.join(timeout=5)
        for connection in connections:
            connection.close(CLOSE_GOING_AWAY, "The server is shutting down")
        deadline = self._monotonic() + grace
        with self._changed:
            while self._connections and (remaining := deadline - self._monotonic()) > 0:
                self._changed.wait(remaining)
            stuck = list(self._connections)
        for connection in stuck:
            connection.abort()
        with self._changed:  # an aborted sender fails its write at once and leaves
            self._changed.wait_for(lambda: not self._connections, timeout=1.0)

    # -- internals ------------------------------------------------------------------------------------------

    def _admitted(self, connection: Connection) -> bool:
        if self.settings.require_auth and connection.principal is None:
            self.refuse(connection, 'Authentication required: connect with a bearer token or send '
                                    '{"action": "auth", "token": "..."} first', reason=_REQUIRED)
            return False
        return True

    def _unsubscribe(self, connection: Connection, symbols: Iterable[str]) -> None:
        for symbol in list(symbols):
            if symbol in connection.symbols:
                del connection.symbols[symbol]
                subscribers = self._subscribers.get(symbol, {})
                subscribers.pop(connection, None)
                if not subscribers:
                    self._subscribers.pop(symbol, None)

    def _publish_step(self, now: datetime, *, catch_up: bool = True) -> None:
        """Publish the step containing ``now`` unless it is the one last published (or the hub is closed).

        With ``catch_up``, steps the publisher overslept are published first, in order, so no step a market order
        could have filled in goes unshown. A jump of the clock publishes only where it lands (an hour of 1-second
        steps is not news), and so does any gap over ``_MAX_CATCH_UP`` steps.
        """
        step = self._simulator.step_index(now)
        with self._lock:
            if self._closed or step == self._last_step:
                return
            first = step
            if catch_up and self._last_step is not None and 0 < step - self._last_step <= _MAX_CATCH_UP:
                first = self._last_step + 1
            self._last_step = step
            for index in range(first, step + 1):
                at = self._simulator.step_start(index)
                ticks = {symbol: (self._simulator.quote(symbol, at), self._simulator.trade(symbol, at))
                         for symbol in self._subscribers}
                for connection in self._connections:
                    if connection.symbols:  # each client's ticks in its own subscription order, queued at once
                        connection.push_all([tick for symbol in connection.symbols for tick in ticks[symbol]])

    def _clock_moved(self) -> None:
        self._publish_step(self._clock.now(), catch_up=False)
        self._wakeup.set()

    def _start_publisher(self) -> None:
        if self._publisher and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="market-data-publisher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            delay = self.tick()
            self._wakeup.wait(delay)
            self._wakeup.clear()
