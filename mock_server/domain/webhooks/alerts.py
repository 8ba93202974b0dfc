"""Alerts raised by conditions the emulator watches on open positions (and forced ones from the control plane).

- ``POSITION_LOSS``: an open position's unrealized loss (valued at the bid) reaches ``loss_percent`` of its cost
  basis.
- ``PRICE_MOVE``: a held symbol's price moved ``move_percent`` or more, up or down, since the position opened
  (the simulator's price at ``opened_at`` against its price now).

Each condition fires once, then stays quiet until it clears (the loss or move falls back under the threshold) or
the position closes; a position opened again later is a new position. Conditions are checked on a background
loop and after every clock jump, so advancing a frozen clock past a threshold raises the alert at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from mock_server.domain.clock import Clock
from mock_server.domain.ids import IdGenerator
from mock_server.domain.trading.models import CENT, PositionView


class AlertKind(StrEnum):
    POSITION_LOSS = "POSITION_LOSS"
    PRICE_MOVE = "PRICE_MOVE"
    MANUAL = "MANUAL"


@dataclass(frozen=True)
class Alert:
    id: str
    kind: AlertKind
    symbol: str | None
    message: str
    threshold_percent: Decimal | None
    observed_percent: Decimal | None


@dataclass(frozen=True)
class AlertSettings:
    loss_percent: Decimal = Decimal(5)
    move_percent: Decimal = Decimal(3)
    interval: float = 1.0  # real seconds between background checks

    def __post_init__(self) -> None:
        if self.loss_percent <= 0 or self.move_percent <= 0:
            raise ValueError("alert thresholds must be positive percentages")
        if self.interval <= 0:
            raise ValueError("the alert check interval must be positive")


def loss_message(symbol: str, loss_percent: Decimal) -> str:
    """``loss_percent`` is negative: the unrealized P/L in percent of the cost basis."""
    return f"{symbol} position is down {-loss_percent:.1f}% from its cost basis"


def move_message(symbol: str, move_percent: Decimal) -> str:
    return f"{symbol} moved {move_percent:+.1f}% since the position opened"


OpenPositions = Callable[[], list[tuple[str, PositionView]]]  # (account id, position) for every open position
PriceAt = Callable[[str, datetime], Decimal]
AlertSink = Callable[[str, Alert, datetime], None]  # (account id, alert, when)
AlertKey = tuple[str, str, datetime, AlertKind]  # account, symbol, position opened_at, kind
_Key = AlertKey


class AlertStore(Protocol):
    """Where the conditions that have fired (and not cleared) are written with ``--state``, so a restart does not
    raise the same alert again."""

    def save_alerts(self, active: frozenset[AlertKey]) -> None: ...


class AlertWatcher:
    """Checks every open position against the thresholds; ``sink`` receives each alert as it fires."""

    def __init__(self, positions: OpenPositions, price: PriceAt, clock: Clock, ids: IdGenerator,
                 settings: AlertSettings, sink: AlertSink) -> None:
        self._positions = positions
        self._price = price
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._sink = sink
        self._lock = threading.Lock()  # one check at a time, so a condition cannot fire twice
        self._start_lock = threading.Lock()  # separate: a check's own fills may ask for the loop to start
        self._active: set[_Key] = set()
        self._store: AlertStore | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = logging.getLogger(__name__)
        clock.on_change(self._on_clock)

    @property
    def settings(self) -> AlertSettings:
        return self._settings

    def persist_with(self, store: AlertStore) -> None:
        with self._lock:
            self._store = store

    def restore(self, active: frozenset[AlertKey]) -> None:
        """Take back the conditions that had fired before a restart (they fire again only after clearing)."""
        with self._lock:
            self._active = set(active)

    def check(self) -> list[Alert]:
        """Evaluate every open position now; fire the conditions that have just become true."""
        with self._lock:
            if self._halt.is_set():
                return []
            now = self._clock.now()
            held = set()
            fired: list[tuple[str, Alert]] = []
            for account_id, position in self._positions():
                for kind, observed, threshold, message in self._conditions(position, now):
                    key = (account_id, position.symbol, position.opened_at, kind)
                    held.add(key)
                    if key not in self._active:
                        fired.append((account_id, Alert(self._ids.new("alt"), kind, position.symbol, message,
                                                        threshold, observed)))
            if held != self._active and self._store is not None:
                self._store.save_alerts(frozenset(held))
            self._active = held
            for account_id, alert in fired:  # under the lock, so alerts leave in the order they fired
                self._sink(account_id, alert, now)
            return [alert for _, alert in fired]

    def ensure_running(self) -> None:
        """Start the background loop if it is not running (it starts with the first fill: no positions, no loop)."""
        thread = self._thread
        if thread is not None and thread.is_alive():  # every fill asks: answer the common case without the lock
            return
        with self._start_lock:
            if self._halt.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
            self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            if self._store is not None:
                self._store.save_alerts(frozenset())

    def stop(self, timeout: float = 5.0) -> None:
        with self._start_lock:
            self._halt.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._halt.wait(self._settings.interval):
            self._safe_check()

    def _on_clock(self) -> None:
        self._safe_check()

    def _safe_check(self) -> None:
        try:
            self.check()
        except Exception:  # a watcher bug must not break the clock move or kill the loop
            self._log.exception("alert check failed")

    def _conditions(self, position: PositionView,
                    now: datetime) -> list[tuple[AlertKind, Decimal, Decimal, str]]:
        found = []
        loss = position.unrealized_pl_percent
        if -loss >= self._settings.loss_percent:
            found.append((AlertKind.POSITION_LOSS, loss, self._settings.loss_percent,
                          loss_message(position.symbol, loss)))
        opened = self._price(position.symbol, position.opened_at)
        if opened > 0:
            move = ((self._price(position.symbol, now) - opened) * 100 / opened).quantize(CENT)
            if abs(move) >= self._settings.move_percent:
                found.append((AlertKind.PRICE_MOVE, move, self._settings.move_percent,
                              move_message(position.symbol, move)))
        return found
