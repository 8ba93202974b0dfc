"""Booking one execution: the order, cash, the position and realized P/L change together, then events are noted.

Callers hold the account's lock, so the four changes are seen together or not at all, and the order is out of
the account's working set while it trades (new, or inside ``AccountState.changing``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from mock_server.domain.trading.account import AccountState
from mock_server.domain.trading.models import Fill, OrderFilled, OrderSide, PositionClosed, TradingEvent
from mock_server.domain.trading.state import OrderState, PositionState


def record_fill(state: AccountState, account_id: str, order: OrderState, quantity: int, price: Decimal,
                at: datetime, events: list[TradingEvent]) -> None:
    """Apply ``quantity`` shares at ``price``; append OrderFilled when the order completes, PositionClosed at zero.

    The caller has already capped ``quantity`` to what cash (buys) or the position (sells) covers.
    """
    value = price * quantity
    order.add_fill(Fill(quantity=quantity, price=price, timestamp=at))
    position = state.positions.get(order.symbol)
    if order.side is OrderSide.BUY:
        state.cash -= value
        if position is None:
            position = PositionState(symbol=order.symbol, opened_at=at, updated_at=at)
            state.positions[order.symbol] = position
        position.buy(quantity, value, at)
    else:
        if position is None or position.quantity < quantity:
            raise AssertionError(f"sell of {quantity} {order.symbol} exceeds the position")  # never: callers cap
        state.cash += value
        state.realized_pl += position.sell(quantity, value, at)
    if order.status.is_final:
        events.append(OrderFilled(account_id=account_id, order=order.view(), at=at))
    if position.quantity == 0:
        del state.positions[order.symbol]
        events.append(PositionClosed(account_id=account_id, position=position.closed(at), at=at))


def affordable(state: AccountState, order: OrderState, price: Decimal) -> int:
    """Most shares ``order`` may take at ``price`` without overdrawing: sells are bounded by the position, buys
    by cash less what the account's *other* open buys hold back (the order's own reservation is spendable: it is
    out of the working set, so not in ``reserved_cash``)."""
    if order.side is OrderSide.SELL:
        return state.held(order.symbol)
    spendable = state.cash - state.reserved_cash()
    if spendable <= 0:
        return 0
    return int(spendable // price)
