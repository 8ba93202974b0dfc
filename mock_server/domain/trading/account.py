"""One account: its money, positions and orders, with the indexes that keep every call's cost flat.

An ``AccountState`` owns its orders three ways: the history (every order, listed a page at a time), the working
set (the orders not final, with running totals of the cash and shares they hold back) and the order book (the
working orders that still trade, by what would make them trade). An order's fields decide where it is indexed,
so a working order changes only inside ``changing``, which takes it out of the working set and the book and puts
it back (or leaves it out, once final) afterwards. The account notes every order it saw change, for the state
file, and an atomic batch can undo its changes through a ``Savepoint``, without copying the account.

The lock lives on ``Account``: every method here expects its caller to hold it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from mock_server.domain.trading.book import OrderBook
from mock_server.domain.trading.history import OrderHistory
from mock_server.domain.trading.models import AccountView, cents
from mock_server.domain.trading.state import ZERO, OrderState, PositionState


@dataclass(slots=True)
class Savepoint:
    """What an atomic batch undoes on failure: the money and positions as they were, the orders placed since (ids
    after ``newest_id``), and a copy of each older order taken before the batch first changed it."""

    cash: Decimal
    realized_pl: Decimal
    positions: dict[str, PositionState]
    newest_id: str
    changed: dict[str, OrderState]
    originals: dict[str, OrderState] = field(default_factory=dict)


class AccountState:
    """Everything an account owns. ``positions`` is keyed by symbol; a position at zero shares is removed."""

    __slots__ = ("_changed", "_reserved_cash", "_reserved_shares", "_savepoint", "book", "cash", "orders",
                 "positions", "realized_pl", "starting_cash", "working")

    def __init__(self, starting_cash: Decimal, cash: Decimal, *, realized_pl: Decimal = ZERO,
                 positions: dict[str, PositionState] | None = None, orders: Iterable[OrderState] = ()) -> None:
        """``orders`` in creation order, as a state file gives them back (their ``last_step`` as restored)."""
        self.starting_cash = starting_cash
        self.cash = cash
        self.realized_pl = realized_pl
        self.positions: dict[str, PositionState] = {} if positions is None else positions
        self.orders = OrderHistory(orders)
        self.working: dict[str, OrderState] = {}  # creation order; pinned ones too
        self.book = OrderBook()
        self._reserved_cash = ZERO
        self._reserved_shares: dict[str, int] = {}
        self._changed: dict[str, OrderState] = {}
        self._savepoint: Savepoint | None = None
        for order in self.orders:
            if not order.status.is_final:
                self._put(order)

    @classmethod
    def fresh(cls, cash: Decimal) -> AccountState:
        return cls(starting_cash=cash, cash=cash)

    # -- orders ---------------------------------------------------------------------------------------------------

    def add_order(self, order: OrderState) -> None:
        """A new order as placement left it (possibly filled, or final already)."""
        self.orders.add(order)
        if not order.status.is_final:
            self._put(order)
        self._changed[order.id] = order

    @contextmanager
    def changing(self, order: OrderState) -> Iterator[OrderState]:
        """Change a working order: out of the working set and the book while the block runs, back in after it
        unless it ended. Reservations while it is out are the *other* orders' (what ``affordable`` needs)."""
        was = order.status
        self._take(order)
        try:
            yield order
        finally:
            if not order.status.is_final:
                self._put(order)
            self.orders.changed(order, was)

    def take_changes(self) -> list[OrderState]:
        """The orders added or changed since the last call, each with ``last_step`` up to date."""
        changed = list(self._changed.values())
        self._changed.clear()
        for order in changed:
            if order in self.book:
                order.last_step = self.book.last_step(order)
        return changed

    def evaluated_through(self) -> int | None:
        """The step every resting order has been evaluated through, at least (None: nothing rests)."""
        return self.book.oldest_step()

    # -- atomic batches -------------------------------------------------------------------------------------------

    def savepoint(self) -> Savepoint:
        newest = self.orders.newest()
        self._savepoint = Savepoint(self.cash, self.realized_pl, copy.deepcopy(self.positions),
                                    "" if newest is None else newest.id, dict(self._changed))
        return self._savepoint

    def release(self, savepoint: Savepoint) -> None:
        """Keep what happened since ``savepoint``."""
        assert self._savepoint is savepoint
        self._savepoint = None

    def rollback(self, savepoint: Savepoint) -> None:
        """Undo everything since ``savepoint``: new orders go, changed ones are as they were."""
        assert self._savepoint is savepoint
        self._savepoint = None
        while (newest := self.orders.newest()) is not None and newest.id > savepoint.newest_id:
            if newest.id in self.working:
                self._take(newest)
            self.orders.discard(newest)
        for order_id, original in savepoint.originals.items():
            order = self.orders.get(order_id)
            assert order is not None
            was = order.status
            if order.id in self.working:
                self._take(order)
            for each in dataclasses.fields(OrderState):
                setattr(order, each.name, getattr(original, each.name))
            self.orders.changed(order, was)
            if not order.status.is_final:
                self._put(order)
        self.cash, self.realized_pl, self.positions = savepoint.cash, savepoint.realized_pl, savepoint.positions
        self._changed = savepoint.changed

    # -- money and shares -----------------------------------------------------------------------------------------

    def reserved_cash(self) -> Decimal:
        return self._reserved_cash

    def reserved_shares(self, symbol: str) -> int:
        return self._reserved_shares.get(symbol, 0)

    def buying_power(self) -> Decimal:
        return self.cash - self._reserved_cash

    def held(self, symbol: str) -> int:
        position = self.positions.get(symbol)
        return position.quantity if position is not None else 0

    def available_shares(self, symbol: str) -> int:
        """Shares that a new sell may still take: held minus those promised to open sells."""
        return self.held(symbol) - self.reserved_shares(symbol)

    # -- internals ------------------------------------------------------------------------------------------------

    def _put(self, order: OrderState) -> None:
        self.working[order.id] = order
        if not order.pinned:
            self.book.add(order)
        self._reserved_cash += order.reserved_cash()
        shares = order.reserved_shares()
        if shares:
            self._reserved_shares[order.symbol] = self._reserved_shares.get(order.symbol, 0) + shares

    def _take(self, order: OrderState) -> None:
        del self.working[order.id]
        if order in self.book:
            self.book.remove(order)
        self._reserved_cash -= order.reserved_cash()
        shares = order.reserved_shares()
        if shares:
            left = self._reserved_shares[order.symbol] - shares
            if left:
                self._reserved_shares[order.symbol] = left
            else:
                del self._reserved_shares[order.symbol]
        savepoint = self._savepoint
        if savepoint is not None and order.id <= savepoint.newest_id and order.id not in savepoint.originals:
            savepoint.originals[order.id] = copy.deepcopy(order)
        self._changed[order.id] = order


class Account:
    """An account's identity, its lock and its current state; ``state`` is replaced whole by a reset."""

    __slots__ = ("created_at", "id", "lock", "state", "subject")

    def __init__(self, subject: str, state: AccountState, created_at: datetime) -> None:
        self.subject = subject
        self.id = f"acc_{subject}"
        self.created_at = created_at
        self.lock = threading.RLock()
        self.state = state

    def view(self, positions_value: Decimal) -> AccountView:
        state = self.state
        reserved = state.reserved_cash()
        return AccountView(
            id=self.id,
            subject=self.subject,
            cash=cents(state.cash),
            buying_power=cents(state.cash - reserved),
            reserved_cash=cents(reserved),
            positions_value=cents(positions_value),
            equity=cents(state.cash + positions_value),
            realized_pl=cents(state.realized_pl),
            created_at=self.created_at,
        )

