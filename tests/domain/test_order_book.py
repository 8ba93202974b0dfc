"""The order book against a brute-force scan: the same orders due at every step, the same evaluation steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.book import OrderBook
from mock_server.domain.trading.matching import execution, stop_crossed
from mock_server.domain.trading.models import OrderSide, OrderStatus, OrderType, Strategy, TimeInForce
from mock_server.domain.trading.state import OrderState

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC")
prices = st.integers(9_990, 10_010).map(lambda cents: Decimal(cents) / 100)  # near 100.00: ties are common


def changes(order: OrderState, quote: Quote) -> bool:
    """Whether evaluating ``order`` against ``quote`` would change it: the engine's rules, as ``matching`` says."""
    if order.is_stop and not order.triggered:
        return stop_crossed(order, quote)
    return execution(order, quote) is not None


@st.composite
def orders(draw: st.DrawFn, number: int) -> OrderState:
    kind = draw(st.sampled_from(list(OrderType)))
    limit = draw(prices) if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = draw(prices) if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    expiry = draw(st.none() | st.integers(0, 40).map(lambda seconds: T0 + timedelta(seconds=seconds)))
    order = OrderState(id=f"ord_{number:026d}", client_order_id=None, symbol=draw(st.sampled_from(SYMBOLS)),
                       type=kind, side=draw(st.sampled_from(list(OrderSide))), quantity=draw(st.integers(1, 5000)),
                       limit_price=limit, stop_price=stop, time_in_force=TimeInForce.GTC, strategy=Strategy.MANUAL,
                       created_at=T0, reserve_price=Decimal("0.00"), last_step=draw(st.integers(0, 6)),
                       expires_at=expiry)
    order.triggered = kind is OrderType.MARKET or (order.is_stop and draw(st.booleans()))
    return order


@st.composite
def quotes(draw: st.DrawFn) -> dict[str, Quote]:
    found = {}
    for symbol in SYMBOLS:
        ask = draw(prices)  # bid and ask both among the orders' prices
        found[symbol] = Quote(symbol, ask - draw(st.integers(1, 3)) * Decimal("0.01"), ask,
                              draw(st.integers(1, 50)) * 100, draw(st.integers(1, 50)) * 100, T0)
    return found


class BookAgainstAScan(RuleBasedStateMachine):
    """Drives the book as the engine does (due, remove-change-add, advance, expire) next to a dict of every
    order's last evaluated step, and checks every answer against a scan of that dict."""

    @initialize()
    def start(self) -> None:
        self.book = OrderBook()
        self.steps: dict[str, int] = {}  # the model: each resting order's last evaluated step
        self.orders: dict[str, OrderState] = {}
        self.numbers = 0

    @rule(data=st.data(), count=st.integers(1, 8))
    def add(self, data: st.DataObject, count: int) -> None:
        for _ in range(count):
            self.numbers += 1
            order = data.draw(orders(self.numbers))
            self.book.add(order)
            self.orders[order.id] = order
            self.steps[order.id] = order.last_step

    @rule(step=st.integers(0, 12), seconds=st.integers(0, 45), quote=quotes(), data=st.data())
    def step(self, step: int, seconds: int, quote: dict[str, Quote], data: st.DataObject) -> None:
        at = T0 + timedelta(seconds=seconds)
        eligible = sorted(order_id for order_id, last in self.steps.items() if last < step)
        never = datetime.max.replace(tzinfo=UTC)
        expected = [order_id for order_id in eligible if changes(order := self.orders[order_id], quote[order.symbol])
                    or (order.expires_at or never) <= at]
        asked: list[str] = []

        def quoted(symbol: str) -> Quote:
            asked.append(symbol)
            return quote[symbol]

        due = self.book.due(step, at, quoted)
        assert [order.id for order in due] == expected
        assert len(asked) == len(set(asked))  # each symbol quoted once per step
        for order_id in eligible:
            self.steps[order_id] = step
        for order in due:  # what the engine does with each: take it out, change it, put it back unless it ended
            self.book.remove(order)
            assert order.last_step == step
            if data.draw(st.booleans()):
                order.status = OrderStatus.FILLED
                del self.orders[order.id], self.steps[order.id]
                continue
            if order.is_stop and not order.triggered:
                order.triggered = True
            self.book.add(order)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        order = self.orders.pop(order_id)
        self.book.remove(order)
        assert order.last_step == self.steps.pop(order_id)

    @rule(step=st.integers(0, 12))
    def advance(self, step: int) -> None:
        self.book.advance(step)
        for order_id, last in self.steps.items():
            self.steps[order_id] = max(last, step)

    @rule(seconds=st.integers(0, 45))
    def expired(self, seconds: int) -> None:
        at = T0 + timedelta(seconds=seconds)
        expected = sorted(order_id for order_id, order in self.orders.items()
                          if order.expires_at is not None and order.expires_at <= at)
        assert [order.id for order in self.book.expired(at)] == expected

    @invariant()
    def agrees(self) -> None:
        assert len(self.book) == len(self.orders)
        assert sorted(order.id for order in self.book) == sorted(self.orders)
        assert self.book.oldest_step() == min(self.steps.values(), default=None)
        for order_id, order in self.orders.items():
            assert order in self.book and self.book.last_step(order) == self.steps[order_id]


BookAgainstAScan.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None,
                                              suppress_health_check=[HealthCheck.too_slow])
test_the_book_agrees_with_a_scan = BookAgainstAScan.TestCase


def test_a_step_visits_only_what_it_crosses_among_many_resting_orders() -> None:
    """Ten thousand buy limits below the market: a step that crosses none visits none, and one that crosses
    the top ten visits those ten."""
    book = OrderBook()
    for number in range(10_000):
        price = Decimal(5_000 + number) / 100
        book.add(OrderState(id=f"ord_{number:026d}", client_order_id=None, symbol="AAA", type=OrderType.LIMIT,
                            side=OrderSide.BUY, quantity=1, limit_price=price, stop_price=None,
                            time_in_force=TimeInForce.GTC, strategy=Strategy.MANUAL, created_at=T0,
                            reserve_price=price, last_step=0))
    top = Decimal(5_000 + 9_999) / 100

    def at(ask: Decimal) -> dict[str, Quote]:
        return {"AAA": Quote("AAA", ask - Decimal("0.01"), ask, 100, 100, T0)}

    assert book.due(1, T0, at(top + Decimal("0.01")).__getitem__) == []
    crossed = book.due(2, T0, at(top - Decimal("0.09")).__getitem__)
    assert [order.limit_price for order in crossed] == [top - Decimal("0.09") + k * Decimal("0.01") for k in range(10)]
    assert book.oldest_step() == 2
