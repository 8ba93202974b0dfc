"""Realistic made-up subjects for events forced from the control plane (`stripe trigger`, for Tradefence).

A sample order or closed position is priced from the simulator at the current clock, but it belongs to no account:
it exists only inside the event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.models import (
    ClosedPosition,
    Fill,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    Strategy,
    TimeInForce,
    cents,
    four_places,
)
from mock_server.domain.webhooks.alerts import Alert, AlertKind

DEFAULT_SYMBOL = "AAPL"
QUANTITY = 10
HOLDING = timedelta(hours=1)

QuoteAt = Callable[[str, datetime], Quote]  # raises KeyError for an unknown symbol


class Samples:
    def __init__(self, quote: QuoteAt, clock: Clock, ids: IdGenerator) -> None:
        self._quote_at = quote
        self._clock = clock
        self._ids = ids

    def _quote(self, symbol: str, at: datetime) -> Quote:
        try:
            return self._quote_at(symbol, at)
        except KeyError:
            raise ApiError(ErrorCode.INVALID_SYMBOL, f"Unknown symbol {symbol}", field="symbol") from None

    def order(self, symbol: str = DEFAULT_SYMBOL) -> OrderView:
        """A MARKET buy of 10 shares filled at once at the current ask."""
        now = self._clock.now()
        price = self._quote(symbol, now).ask
        return OrderView(
            id=self._ids.new("ord"), client_order_id=None, symbol=symbol, type=OrderType.MARKET, side=OrderSide.BUY,
            quantity=QUANTITY, limit_price=None, stop_price=None, time_in_force=TimeInForce.DAY,
            strategy=Strategy.MANUAL, status=OrderStatus.FILLED, filled_quantity=QUANTITY, remaining_quantity=0,
            average_fill_price=four_places(price), fills=(Fill(QUANTITY, price, now),), reject_reason=None,
            created_at=now, updated_at=now, filled_at=now, cancelled_at=None, expired_at=None,
        )

    def closed_position(self, symbol: str = DEFAULT_SYMBOL) -> ClosedPosition:
        """10 shares bought at the ask an hour ago and sold at the bid now."""
        now = self._clock.now()
        entry = self._quote(symbol, now - HOLDING).ask
        exit_price = self._quote(symbol, now).bid
        return ClosedPosition(symbol=symbol, quantity_closed=QUANTITY, average_entry_price=four_places(entry),
                              exit_price=four_places(exit_price), realized_pl=cents((exit_price - entry) * QUANTITY),
                              opened_at=now - HOLDING, closed_at=now)

    def alert(self, symbol: str | None = None) -> Alert:
        """A ``MANUAL`` alert: no threshold, nothing observed."""
        subject = f" for {symbol}" if symbol else ""
        return Alert(self._ids.new("alt"), AlertKind.MANUAL, symbol,
                     f"Alert{subject} triggered from the emulator's control plane", None, None)
