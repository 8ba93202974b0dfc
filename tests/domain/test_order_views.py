"""Order snapshots: a working order's reflects its latest change; a final order's is taken once and reused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mock_server.domain.trading.models import Fill, OrderSide, OrderStatus, OrderType, Strategy, TimeInForce
from mock_server.domain.trading.state import OrderState

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def order(quantity: int = 3) -> OrderState:
    return OrderState(id="ord_1", client_order_id=None, symbol="AAPL", type=OrderType.LIMIT, side=OrderSide.BUY,
                      quantity=quantity, limit_price=Decimal("190.00"), stop_price=None,
                      time_in_force=TimeInForce.GTC, strategy=Strategy.MANUAL, created_at=T0,
                      reserve_price=Decimal("190.00"), last_step=0)


def fresh_view(state: OrderState) -> object:
    """What the view would be if nothing had been kept: the same fields in a new OrderState."""
    copied = dataclasses.replace(state, fills=list(state.fills))  # init fields only: nothing kept comes along
    return copied.view()


def test_a_working_orders_view_follows_every_change() -> None:
    state = order()
    first = state.view()
    state.add_fill(Fill(quantity=1, price=Decimal("189.50"), timestamp=T0 + timedelta(seconds=1)))
    second = state.view()
    assert first.status is OrderStatus.OPEN and first.filled_quantity == 0
    assert second.status is OrderStatus.PARTIALLY_FILLED and second.filled_quantity == 1
    assert second is not state.view() and second == state.view()  # not kept while working


def test_a_final_orders_view_is_taken_once_and_is_what_it_would_be_anew() -> None:
    state = order(quantity=2)
    state.add_fill(Fill(quantity=2, price=Decimal("189.50"), timestamp=T0 + timedelta(seconds=1)))
    kept = state.view()
    assert kept.status is OrderStatus.FILLED
    assert state.view() is kept
    assert kept == fresh_view(state)
    assert kept.average_fill_price == Decimal("189.5000") and kept.remaining_quantity == 0


def test_a_cancelled_orders_view_is_kept_too() -> None:
    state = order()
    state.finish(OrderStatus.CANCELLED, T0 + timedelta(minutes=1))
    assert state.view() is state.view()
    assert state.view().cancelled_at == T0 + timedelta(minutes=1)
