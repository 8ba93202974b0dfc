"""The engine's mutable records of orders and positions (an account's are gathered in ``account.py``).

Plain dataclasses without locks (the account's lock guards them); callers only ever see the frozen views built by
the ``view`` methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from mock_server.domain.trading.models import (
    ClosedPosition,
    Fill,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    PositionView,
    Strategy,
    TimeInForce,
    cents,
    four_places,
)

ZERO = Decimal("0.00")


@dataclass(slots=True)
class OrderState:
    """One order. ``reserve_price`` is the per-share cash an open BUY holds back; ``last_step`` is the last
    simulator step it was evaluated at, so catch-up never looks at a step twice (while the order rests in a book,
    the book knows it: see ``OrderBook.remove``)."""

    id: str
    client_order_id: str | None
    symbol: str
    type: OrderType
    side: OrderSide
    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    strategy: Strategy
    created_at: datetime
    reserve_price: Decimal
    last_step: int
    expires_at: datetime | None = None
    status: OrderStatus = OrderStatus.OPEN
    fills: list[Fill] = field(default_factory=list)
    filled_quantity: int = 0
    filled_value: Decimal = ZERO
    triggered: bool = False
    pinned: bool = False
    reject_reason: str | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    _final_view: OrderView | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_stop(self) -> bool:
        return self.type in (OrderType.STOP, OrderType.STOP_LIMIT)

    @property
    def acts_as_market(self) -> bool:
        """MARKET, or a STOP whose stop price was crossed: takes whatever the quote offers."""
        return self.type is OrderType.MARKET or (self.type is OrderType.STOP and self.triggered)

    def reserved_cash(self) -> Decimal:
        if self.side is OrderSide.SELL or self.status.is_final:
            return ZERO
        return self.reserve_price * self.remaining

    def reserved_shares(self) -> int:
        if self.side is OrderSide.BUY or self.status.is_final:
            return 0
        return self.remaining

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.filled_quantity += fill.quantity
        self.filled_value += fill.price * fill.quantity
        self.updated_at = fill.timestamp
        if self.remaining == 0:
            self.status = OrderStatus.FILLED
            self.filled_at = fill.timestamp
        else:
            self.status = OrderStatus.PARTIALLY_FILLED

    def finish(self, status: OrderStatus, at: datetime, reason: str | None = None) -> None:
        """End a working order without a fill: CANCELLED, EXPIRED or REJECTED."""
        self.status = status
        self.updated_at = at
        if status is OrderStatus.CANCELLED:
            self.cancelled_at = at
        elif status is OrderStatus.EXPIRED:
            self.expired_at = at
        if reason is not None:
            self.reject_reason = reason

    def view(self) -> OrderView:
        """A snapshot. A final order never changes again, so its snapshot is taken once: a fill's webhook event and
        the answer to the POST share it, and every later read of the order reuses it."""
        if self._final_view is not None:
            return self._final_view
        average = four_places(self.filled_value / self.filled_quantity) if self.filled_quantity else None
        view = OrderView(
            id=self.id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            type=self.type,
            side=self.side,
            quantity=self.quantity,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            strategy=self.strategy,
            status=self.status,
            filled_quantity=self.filled_quantity,
            remaining_quantity=0 if self.status.is_final else self.remaining,
            average_fill_price=average,
            fills=tuple(self.fills),
            reject_reason=self.reject_reason,
            created_at=self.created_at,
            updated_at=self.updated_at or self.created_at,
            filled_at=self.filled_at,
            cancelled_at=self.cancelled_at,
            expired_at=self.expired_at,
        )
        if self.status.is_final:
            self._final_view = view
        return view


@dataclass(slots=True)
class PositionState:
    """A long position at average cost; ``cost`` is the cost basis of the shares held, always whole cents.

    The lifetime totals (bought/sold shares and values) feed ``ClosedPosition`` when the position goes to zero.
    """

    symbol: str
    opened_at: datetime
    updated_at: datetime
    quantity: int = 0
    cost: Decimal = ZERO
    bought_quantity: int = 0
    bought_value: Decimal = ZERO
    sold_quantity: int = 0
    sold_value: Decimal = ZERO
    realized_pl: Decimal = ZERO

    def buy(self, quantity: int, value: Decimal, at: datetime) -> None:
        self.quantity += quantity
        self.cost += value
        self.bought_quantity += quantity
        self.bought_value += value
        self.updated_at = at

    def sell(self, quantity: int, value: Decimal, at: datetime) -> Decimal:
        """Remove shares at average cost and return the realized P/L.

        The cost removed is the held cost in proportion to the shares sold, rounded to the cent, so the cost basis
        and every P/L figure stay in whole cents and selling the last share removes exactly what is left.
        """
        removed = self.cost if quantity == self.quantity else cents(self.cost * quantity / self.quantity)
        self.quantity -= quantity
        self.cost -= removed
        self.sold_quantity += quantity
        self.sold_value += value
        realized = value - removed
        self.realized_pl += realized
        self.updated_at = at
        return realized

    def average_entry_price(self) -> Decimal:
        return four_places(self.cost / self.quantity) if self.quantity else ZERO

    def view(self, bid: Decimal, available: int) -> PositionView:
        value = bid * self.quantity
        unrealized = value - self.cost
        percent = cents(unrealized * 100 / self.cost) if self.cost else ZERO
        return PositionView(
            symbol=self.symbol,
            quantity=self.quantity,
            available_quantity=available,
            average_entry_price=self.average_entry_price(),
            cost_basis=cents(self.cost),
            market_price=bid,
            market_value=cents(value),
            unrealized_pl=cents(unrealized),
            unrealized_pl_percent=percent,
            opened_at=self.opened_at,
            updated_at=self.updated_at,
        )

    def closed(self, at: datetime) -> ClosedPosition:
        return ClosedPosition(
            symbol=self.symbol,
            quantity_closed=self.sold_quantity,
            average_entry_price=four_places(self.bought_value / self.bought_quantity),
            exit_price=four_places(self.sold_value / self.sold_quantity),
            realized_pl=cents(self.realized_pl),
            opened_at=self.opened_at,
            closed_at=at,
        )
