"""The order history's listing index against a brute-force filter of every order: the same pages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mock_server.domain.trading.history import OrderHistory
from mock_server.domain.trading.models import OrderSide, OrderStatus, OrderType, Strategy, TimeInForce
from mock_server.domain.trading.state import OrderState

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC")
statuses = st.sampled_from(list(OrderStatus))


def order(number: int, symbol: str, side: OrderSide, status: OrderStatus) -> OrderState:
    made = OrderState(id=f"ord_{number:026d}", client_order_id=None, symbol=symbol, type=OrderType.MARKET,
                      side=side, quantity=1, limit_price=None, stop_price=None, time_in_force=TimeInForce.DAY,
                      strategy=Strategy.MANUAL, created_at=T0, reserve_price=Decimal("0.00"), last_step=0)
    made.status = status
    return made


class HistoryAgainstAFilter(RuleBasedStateMachine):
    @initialize(restored=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(list(OrderSide)), statuses),
                                  max_size=30))
    def start(self, restored: list[tuple[str, OrderSide, OrderStatus]]) -> None:
        self.orders = [order(number, *fields) for number, fields in enumerate(restored)]
        self.history = OrderHistory(self.orders)  # as a state file gives them back: indexed in one pass

    @rule(symbol=st.sampled_from(SYMBOLS), side=st.sampled_from(list(OrderSide)), status=statuses)
    def add(self, symbol: str, side: OrderSide, status: OrderStatus) -> None:
        self.orders.append(order(len(self.orders) + 1000, symbol, side, status))
        self.history.add(self.orders[-1])

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 10_000), status=statuses)
    def change(self, pick: int, status: OrderStatus) -> None:
        changed = self.orders[pick % len(self.orders)]
        was, changed.status = changed.status, status
        self.history.changed(changed, was)

    @precondition(lambda self: self.orders)
    @rule()
    def discard_newest(self) -> None:
        self.history.discard(self.orders.pop())

    @rule(wanted=st.lists(statuses, min_size=1, max_size=6, unique=True),
          symbol=st.none() | st.sampled_from(SYMBOLS), side=st.none() | st.sampled_from(list(OrderSide)),
          before=st.none() | st.integers(0, 1100), count=st.integers(1, 12))
    def page(self, wanted: list[OrderStatus], symbol: str | None, side: OrderSide | None, before: int | None,
             count: int) -> None:
        cursor = None if before is None else f"ord_{before:026d}"
        expected = [o for o in reversed(self.orders) if o.status in wanted and symbol in (None, o.symbol)
                    and side in (None, o.side) and (cursor is None or o.id < cursor)][:count]
        assert self.history.page(wanted, symbol, side, cursor, count) == expected

    @invariant()
    def agrees(self) -> None:
        assert list(self.history) == self.orders and len(self.history) == len(self.orders)
        assert self.history.newest() is (self.orders[-1] if self.orders else None)
        for each in self.orders[-3:]:
            assert self.history.get(each.id) is each


HistoryAgainstAFilter.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                                   suppress_health_check=[HealthCheck.too_slow])
test_the_listing_index_agrees_with_a_filter = HistoryAgainstAFilter.TestCase


def test_a_page_reads_one_page_whatever_the_history() -> None:
    """Many filled orders and the newest open one: each filter finds its page (the index, not a scan, does)."""
    filled = [order(number, "AAA", OrderSide.BUY, OrderStatus.FILLED) for number in range(200_000)]
    history = OrderHistory(filled)
    opened = order(300_000, "AAA", OrderSide.BUY, OrderStatus.OPEN)
    history.add(opened)
    assert history.page([OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED], None, None, None, 50) == [opened]
    assert history.page([OrderStatus.FILLED], "AAA", OrderSide.BUY, filled[100].id, 2) == [filled[99], filled[98]]
    assert history.page(list(OrderStatus), "BBB", None, None, 50) == []
