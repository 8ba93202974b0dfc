"""Order placement and matching: each type and time in force, refusals, magic values, reservations and listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.market.simulator import MarketSimulator, Quote
from mock_server.domain.market.universe import Instrument, Universe
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.magic import REJECT_REASON, magic_instruments
from mock_server.domain.trading.models import (
    OrderFilled,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Strategy,
    TimeInForce,
    TradingEvent,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York: inside the NYSE session
SECOND = timedelta(seconds=1)
BUY, SELL = OrderSide.BUY, OrderSide.SELL
CASH = Decimal("10000000.00")


@dataclass
class Rig:
    engine: TradingEngine
    clock: Clock
    simulator: MarketSimulator
    events: list[TradingEvent] = field(default_factory=list)

    def ahead(self, symbol: str, steps: int) -> list[Quote]:
        """Quotes of the next ``steps`` steps, so a test can aim prices at a known future."""
        now = self.clock.now()
        return [self.simulator.quote(symbol, now + SECOND * k) for k in range(1, steps + 1)]


def make_rig(*, seed: int = 7, mode: MarketMode = MarketMode.OPEN) -> Rig:
    universe = Universe([
        Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0),
        Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 2.0),
    ]).with_instruments(magic_instruments())
    clock = Clock(start=T0, frozen=True)
    simulator = MarketSimulator(universe, seed)
    events: list[TradingEvent] = []
    engine = TradingEngine(simulator, clock, IdGenerator(seed, clock), market_mode=mode, starting_cash=CASH,
                           on_event=events.append)
    return Rig(engine=engine, clock=clock, simulator=simulator, events=events)


def order(symbol: str, kind: OrderType, side: OrderSide, quantity: int, **extra: object) -> OrderRequest:
    return OrderRequest(symbol=symbol, type=kind, side=side, quantity=quantity, **extra)  # type: ignore[arg-type]


def refused(code: ErrorCode, call: object, *args: object) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.code is code, caught.value.message
    return caught.value


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def test_market_orders_fill_whole_at_the_quote(rig: Rig) -> None:
    quote = rig.engine.quote("FLAT")
    bought = rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, BUY, 10 * quote.ask_size))
    assert bought.status is OrderStatus.FILLED and bought.filled_quantity == 10 * quote.ask_size
    assert [f.price for f in bought.fills] == [quote.ask]
    assert bought.average_fill_price == quote.ask.quantize(Decimal("0.0001"))
    assert bought.remaining_quantity == 0 and bought.filled_at == T0
    account = rig.engine.account("u1")
    assert account.cash == CASH - quote.ask * bought.quantity
    sold = rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, SELL, 5))
    assert sold.fills[0].price == quote.bid
    assert rig.engine.position("u1", "FLAT").quantity == bought.quantity - 5
    assert [type(e) for e in rig.events] == [OrderFilled, OrderFilled]
    assert rig.events[0].order == bought and rig.events[0].account_id == "acc_u1"


def test_limit_buy_rests_reserves_cash_and_fills_when_the_ask_comes_down() -> None:
    rig = make_rig()
    start_ask = rig.engine.quote("WILD").ask
    future = rig.ahead("WILD", 300)
    target = min(q.ask for q in future)
    assert target < start_ask
    hit = next(k for k, q in enumerate(future, 1) if q.ask <= target)
    placed = rig.engine.place_order("u1", order("WILD", OrderType.LIMIT, BUY, 50, limit_price=target))
    assert placed.status is OrderStatus.OPEN and placed.fills == ()
    assert rig.engine.account("u1").reserved_cash == target * 50
    assert rig.engine.account("u1").buying_power == CASH - target * 50
    rig.clock.advance(SECOND * (hit - 1))
    assert rig.engine.get_order("u1", placed.id).status is OrderStatus.OPEN
    rig.clock.advance(SECOND)
    filled = rig.engine.get_order("u1", placed.id)
    assert filled.status is OrderStatus.FILLED
    assert filled.fills[0].price == target and filled.fills[0].timestamp == T0 + SECOND * hit
    assert rig.engine.account("u1").reserved_cash == 0
    assert rig.engine.account("u1").cash == CASH - target * 50


def test_limit_sell_fills_when_the_bid_reaches_the_limit(rig: Rig) -> None:
    rig.engine.place_order("u1", order("WILD", OrderType.MARKET, BUY, 40))
    future = rig.ahead("WILD", 300)
    target = max(q.bid for q in future)
    hit = next(k for k, q in enumerate(future, 1) if q.bid >= target)
    placed = rig.engine.place_order("u1", order("WILD", OrderType.LIMIT, SELL, 40, limit_price=target))
    assert placed.status is OrderStatus.OPEN
    assert rig.engine.position("u1", "WILD").available_quantity == 0
    rig.clock.advance(SECOND * hit)
    filled = rig.engine.get_order("u1", placed.id)
    assert filled.status is OrderStatus.FILLED and filled.fills[0].price == target
    refused(ErrorCode.NOT_FOUND, rig.engine.position, "u1", "WILD")


def test_large_limit_order_fills_in_parts_across_steps(rig: Rig) -> None:
    sizes = [rig.engine.quote("FLAT").ask_size] + [q.ask_size for q in rig.ahead("FLAT", 3)]
    quantity = sizes[0] + sizes[1] + 7
    placed = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, quantity, limit_price=Decimal("101")))
    assert placed.status is OrderStatus.PARTIALLY_FILLED
    assert placed.filled_quantity == sizes[0] and placed.remaining_quantity == quantity - sizes[0]
    assert rig.engine.account("u1").reserved_cash == Decimal("101") * (quantity - sizes[0])
    rig.clock.advance(SECOND)
    assert rig.engine.get_order("u1", placed.id).filled_quantity == sizes[0] + sizes[1]
    rig.clock.advance(SECOND)
    done = rig.engine.get_order("u1", placed.id)
    assert done.status is OrderStatus.FILLED
    assert [f.quantity for f in done.fills] == [sizes[0], sizes[1], 7]
    assert [f.timestamp for f in done.fills] == [T0, T0 + SECOND, T0 + 2 * SECOND]
    assert len([e for e in rig.events if isinstance(e, OrderFilled)]) == 1


def test_stop_buy_triggers_when_the_ask_reaches_the_stop(rig: Rig) -> None:
    future = rig.ahead("WILD", 300)
    stop = max(q.ask for q in future)
    assert stop > rig.engine.quote("WILD").ask
    hit = next(k for k, q in enumerate(future, 1) if q.ask >= stop)
    placed = rig.engine.place_order("u1", order("WILD", OrderType.STOP, BUY, 30, stop_price=stop))
    assert placed.status is OrderStatus.OPEN
    assert rig.engine.account("u1").reserved_cash == stop * 30
    rig.clock.advance(SECOND * hit)
    filled = rig.engine.get_order("u1", placed.id)
    assert filled.status is OrderStatus.FILLED and filled.fills[0].price == future[hit - 1].ask
    assert filled.fills[0].timestamp == T0 + SECOND * hit


def test_stop_sell_triggers_when_the_bid_falls_to_the_stop(rig: Rig) -> None:
    rig.engine.place_order("u1", order("WILD", OrderType.MARKET, BUY, 30))
    future = rig.ahead("WILD", 300)
    stop = min(q.bid for q in future)
    hit = next(k for k, q in enumerate(future, 1) if q.bid <= stop)
    placed = rig.engine.place_order("u1", order("WILD", OrderType.STOP, SELL, 30, stop_price=stop))
    assert placed.status is OrderStatus.OPEN
    rig.clock.advance(SECOND * (hit - 1))
    assert rig.engine.get_order("u1", placed.id).status is OrderStatus.OPEN
    rig.clock.advance(SECOND)
    assert rig.engine.get_order("u1", placed.id).fills[0].price == stop


def test_stop_limit_becomes_a_limit_once_triggered(rig: Rig) -> None:
    future = rig.ahead("WILD", 300)
    stop = max(q.ask for q in future)
    hit = next(k for k, q in enumerate(future, 1) if q.ask >= stop)
    crossing = rig.engine.place_order("u1", order("WILD", OrderType.STOP_LIMIT, BUY, 10, stop_price=stop,
                                                  limit_price=stop))
    below = rig.engine.place_order("u1", order("WILD", OrderType.STOP_LIMIT, BUY, 10, stop_price=stop,
                                               limit_price=stop - Decimal("5.00")))
    assert rig.engine.account("u1").reserved_cash == stop * 10 + (stop - 5) * 10
    rig.clock.advance(SECOND * hit)
    assert rig.engine.get_order("u1", crossing.id).status is OrderStatus.FILLED
    assert rig.engine.get_order("u1", crossing.id).fills[0].price == stop
    assert rig.engine.get_order("u1", below.id).status is OrderStatus.OPEN


def test_ioc_keeps_what_fills_now_and_cancels_the_rest(rig: Rig) -> None:
    size = rig.engine.quote("FLAT").ask_size
    ioc = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, size + 100, limit_price=Decimal("101"),
                                             time_in_force=TimeInForce.IOC))
    assert ioc.status is OrderStatus.CANCELLED
    assert ioc.filled_quantity == size and ioc.remaining_quantity == 0 and ioc.cancelled_at == T0
    nothing = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, 5, limit_price=Decimal("90"),
                                                 time_in_force=TimeInForce.IOC))
    assert nothing.status is OrderStatus.CANCELLED and nothing.filled_quantity == 0
    assert rig.engine.account("u1").reserved_cash == 0


def test_fok_fills_whole_or_nothing(rig: Rig) -> None:
    size = rig.engine.quote("FLAT").ask_size
    too_big = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, size + 1, limit_price=Decimal("101"),
                                                 time_in_force=TimeInForce.FOK))
    assert too_big.status is OrderStatus.CANCELLED and too_big.fills == ()
    whole = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, size, limit_price=Decimal("101"),
                                               time_in_force=TimeInForce.FOK))
    assert whole.status is OrderStatus.FILLED and whole.filled_quantity == size
    market = rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, BUY, 3, time_in_force=TimeInForce.FOK))
    assert market.status is OrderStatus.FILLED


def test_funds_are_checked_against_buying_power(rig: Rig) -> None:
    rig.engine.open_account("poor", Decimal("1000.00"))
    ask = rig.engine.quote("FLAT").ask
    error = refused(ErrorCode.INSUFFICIENT_FUNDS, rig.engine.place_order, "poor",
                    order("FLAT", OrderType.MARKET, BUY, 10))
    assert error.message == f"Order cost {ask * 10:.2f} exceeds buying power 1000.00"
    rig.engine.place_order("poor", order("FLAT", OrderType.LIMIT, BUY, 9, limit_price=Decimal("90.00")))
    assert rig.engine.account("poor").buying_power == Decimal("190.00")
    refused(ErrorCode.INSUFFICIENT_FUNDS, rig.engine.place_order, "poor",
            order("FLAT", OrderType.LIMIT, BUY, 3, limit_price=Decimal("90.00")))
    refused(ErrorCode.INSUFFICIENT_FUNDS, rig.engine.place_order, "poor",
            order("FLAT", OrderType.STOP, BUY, 2, stop_price=Decimal("150.00")))
    assert len(rig.engine.list_orders("poor")[0]) == 1


def test_cancel_releases_the_reservation_and_cannot_repeat(rig: Rig) -> None:
    placed = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, 100, limit_price=Decimal("50.00")))
    assert rig.engine.account("u1").reserved_cash == Decimal("5000.00")
    rig.clock.advance(SECOND * 3)
    cancelled = rig.engine.cancel_order("u1", placed.id)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.cancelled_at == T0 + 3 * SECOND
    assert cancelled.remaining_quantity == 0
    assert rig.engine.account("u1").reserved_cash == 0
    assert rig.engine.account("u1").buying_power == CASH
    error = refused(ErrorCode.ORDER_NOT_CANCELLABLE, rig.engine.cancel_order, "u1", placed.id)
    assert "CANCELLED" in error.message
    filled = rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, BUY, 1))
    assert "FILLED" in refused(ErrorCode.ORDER_NOT_CANCELLABLE, rig.engine.cancel_order, "u1", filled.id).message


def test_selling_more_than_the_unreserved_shares_is_refused(rig: Rig) -> None:
    error = refused(ErrorCode.INSUFFICIENT_POSITION, rig.engine.place_order, "u1",
                    order("FLAT", OrderType.MARKET, SELL, 1))
    assert error.field == "quantity"
    rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, BUY, 10))
    rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, SELL, 6, limit_price=Decimal("200.00")))
    assert rig.engine.position("u1", "FLAT").available_quantity == 4
    refused(ErrorCode.INSUFFICIENT_POSITION, rig.engine.place_order, "u1", order("FLAT", OrderType.MARKET, SELL, 5))
    assert rig.engine.place_order("u1", order("FLAT", OrderType.MARKET, SELL, 4)).status is OrderStatus.FILLED


def test_unknown_symbols_closed_markets_and_other_accounts(rig: Rig) -> None:
    error = refused(ErrorCode.INVALID_SYMBOL, rig.engine.place_order, "u1", order("ZZZZ", OrderType.MARKET, BUY, 1))
    assert error.field == "symbol" and error.code.status == 422
    refused(ErrorCode.INVALID_SYMBOL, rig.engine.quote, "aapl")
    mine = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, 1, limit_price=Decimal("1.00")))
    refused(ErrorCode.NOT_FOUND, rig.engine.get_order, "u2", mine.id)
    refused(ErrorCode.NOT_FOUND, rig.engine.cancel_order, "u2", mine.id)
    refused(ErrorCode.NOT_FOUND, rig.engine.get_order, "u1", "ord_00000000000000000000000000")
    rig.engine.market_mode = MarketMode.CLOSED
    assert rig.engine.market_status().is_open is False
    refused(ErrorCode.MARKET_CLOSED, rig.engine.place_order, "u1", order("FLAT", OrderType.MARKET, BUY, 1))
    refused(ErrorCode.MARKET_CLOSED, rig.engine.update_position, "u1", "FLAT", 5)
    assert rig.engine.cancel_order("u1", mine.id).status is OrderStatus.CANCELLED


def test_magic_symbols_and_client_order_ids(rig: Rig) -> None:
    error = refused(ErrorCode.MARKET_CLOSED, rig.engine.place_order, "u1", order("HALT", OrderType.MARKET, BUY, 1))
    assert error.message == "HALT is halted"
    rejected = rig.engine.place_order("u1", order("REJECT", OrderType.MARKET, BUY, 5))
    assert rejected.status is OrderStatus.REJECTED and rejected.reject_reason == REJECT_REASON
    assert rejected.fills == ()
    refused(ErrorCode.INSUFFICIENT_FUNDS, rig.engine.place_order, "u1",
            order("FLAT", OrderType.MARKET, BUY, 1, client_order_id="nsf-123"))
    partial = rig.engine.place_order("u1", order("PARTL", OrderType.LIMIT, BUY, 11, limit_price=Decimal("1.00")))
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled_quantity == 5
    assert partial.fills[0].price == rig.engine.quote("PARTL").ask
    rig.clock.advance(timedelta(hours=1))
    assert rig.engine.get_order("u1", partial.id).filled_quantity == 5
    assert rig.engine.position("u1", "PARTL").quantity == 5
    assert rig.engine.cancel_order("u1", partial.id).status is OrderStatus.CANCELLED
    single = rig.engine.place_order("u1", order("PARTL", OrderType.MARKET, BUY, 1))
    assert single.status is OrderStatus.OPEN and single.filled_quantity == 0
    assert rig.engine.account("u1").cash == CASH - partial.fills[0].price * 5


def test_day_orders_never_expire_in_open_mode_and_gtc_never_does(rig: Rig) -> None:
    day = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, 1, limit_price=Decimal("1.00")))
    gtc = rig.engine.place_order("u1", order("FLAT", OrderType.LIMIT, BUY, 1, limit_price=Decimal("1.00"),
                                             time_in_force=TimeInForce.GTC))
    rig.clock.advance(timedelta(days=3))
    assert rig.engine.get_order("u1", day.id).status is OrderStatus.OPEN
    assert rig.engine.get_order("u1", gtc.id).status is OrderStatus.OPEN


def test_listing_filters_and_cursor_pagination(rig: Rig) -> None:
    placed = []
    for index in range(7):
        side_symbol = ("FLAT", BUY) if index % 2 == 0 else ("WILD", BUY)
        placed.append(rig.engine.place_order("u1", order(side_symbol[0], OrderType.LIMIT, side_symbol[1], 1,
                                                         limit_price=Decimal("1.00"))).id)
        rig.clock.advance(SECOND)
    rig.engine.cancel_order("u1", placed[0])
    newest_first = list(reversed(placed))
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = rig.engine.list_orders("u1", limit=3, cursor=cursor)
        seen += [view.id for view in page]
        if cursor is None:
            break
    assert seen == newest_first
    assert [v.id for v in rig.engine.list_orders("u1", status="closed")[0]] == [placed[0]]
    assert [v.id for v in rig.engine.list_orders("u1", status="cancelled")[0]] == [placed[0]]
    assert len(rig.engine.list_orders("u1", status="open")[0]) == 6
    assert [v.id for v in rig.engine.list_orders("u1", symbol="WILD")[0]] == [placed[5], placed[3], placed[1]]
    assert rig.engine.list_orders("u1", side=SELL) == ([], None)
    page, cursor = rig.engine.list_orders("u1", symbol="FLAT", limit=2)
    assert [v.id for v in page] == [placed[6], placed[4]] and cursor is not None
    page, cursor = rig.engine.list_orders("u1", symbol="FLAT", limit=2, cursor=cursor)
    assert [v.id for v in page] == [placed[2], placed[0]] and cursor is None
    for bad in ("!!!", "b3JkXw", "ord_short"):
        with pytest.raises(ApiError) as caught:
            rig.engine.list_orders("u1", cursor=bad)
        assert caught.value.code is ErrorCode.INVALID_REQUEST and caught.value.field == "cursor"
    # A cursor is a position in id (= time) order, not a reference: another account's id only says "older than".
    _, other_cursor = rig.engine.list_orders("u1", limit=1)
    assert rig.engine.list_orders("u2", cursor=other_cursor) == ([], None)


def test_request_from_payload_keeps_cents_exact() -> None:
    request = OrderRequest.from_payload({"symbol": "AAPL", "type": "STOP_LIMIT", "side": "SELL", "quantity": 3,
                                         "price": 150.1, "stop_price": 151, "time_in_force": "GTC",
                                         "strategy": "MOMENTUM", "client_order_id": "abc"})
    assert request.limit_price == Decimal("150.10") and str(request.stop_price) == "151.00"
    assert request.type is OrderType.STOP_LIMIT and request.time_in_force is TimeInForce.GTC
    assert request.strategy is Strategy.MOMENTUM and request.client_order_id == "abc"
    plain = OrderRequest.from_payload({"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1})
    assert plain.limit_price is None and plain.time_in_force is TimeInForce.DAY and plain.strategy is Strategy.MANUAL
    assert OrderStatus.EXPIRED.is_final and not OrderStatus.PARTIALLY_FILLED.is_final
