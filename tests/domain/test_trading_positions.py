"""Positions at average cost, account balances, update_position, reset, and batches (plain and atomic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Instrument, Universe
from mock_server.domain.trading.batch import BatchOperation
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.magic import magic_instruments
from mock_server.domain.trading.models import (
    OrderFilled,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    PositionClosed,
    PositionUpdateResult,
    TradingEvent,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
CASH = Decimal("100000.00")


def make_engine(events: list[TradingEvent]) -> tuple[TradingEngine, Clock]:
    universe = Universe([
        Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0),
        Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 2.0),
    ]).with_instruments(magic_instruments())
    clock = Clock(start=T0, frozen=True)
    engine = TradingEngine(MarketSimulator(universe, 11), clock, IdGenerator(11, clock), on_event=events.append)
    return engine, clock


@pytest.fixture
def events() -> list[TradingEvent]:
    return []


@pytest.fixture
def engine(events: list[TradingEvent]) -> TradingEngine:
    return make_engine(events)[0]


def market(symbol: str, side: OrderSide, quantity: int) -> OrderRequest:
    return OrderRequest(symbol=symbol, type=OrderType.MARKET, side=side, quantity=quantity)


def test_average_cost_realized_pl_and_the_closed_position_event(events: list[TradingEvent]) -> None:
    engine, clock = make_engine(events)
    prices = []
    for side, quantity in ((OrderSide.BUY, 100), (OrderSide.SELL, 50), (OrderSide.BUY, 50), (OrderSide.SELL, 100)):
        view = engine.place_order("u1", market("WILD", side, quantity))
        prices.append(view.fills[0].price)
        clock.advance(timedelta(minutes=30))
    bought = prices[0] * 100 + prices[2] * 50
    sold = prices[1] * 50 + prices[3] * 100
    account = engine.account("u1")
    assert account.cash == CASH - bought + sold
    assert account.realized_pl == sold - bought and account.positions_value == 0 and account.equity == account.cash
    closed = [e for e in events if isinstance(e, PositionClosed)]
    assert len(closed) == 1 and closed[0].account_id == "acc_u1"
    position = closed[0].position
    assert position.quantity_closed == 150 and position.realized_pl == sold - bought
    assert position.average_entry_price == (bought / 150).quantize(Decimal("0.0001"))
    assert position.exit_price == (sold / 150).quantize(Decimal("0.0001"))
    assert position.opened_at == T0 and position.closed_at == T0 + timedelta(minutes=90)
    assert isinstance(events[-2], OrderFilled) and events[-1] is closed[0]
    with pytest.raises(ApiError) as caught:
        engine.position("u1", "WILD")
    assert caught.value.code is ErrorCode.NOT_FOUND


def test_position_and_account_valuation_at_the_bid(engine: TradingEngine) -> None:
    fill = engine.place_order("u1", market("FLAT", OrderSide.BUY, 30)).fills[0]
    engine.place_order("u1", market("WILD", OrderSide.BUY, 10))
    positions = engine.positions("u1")
    assert [p.symbol for p in positions] == ["FLAT", "WILD"]
    flat = positions[0]
    bid = engine.quote("FLAT").bid
    assert flat.quantity == 30 and flat.available_quantity == 30 and flat.market_price == bid
    assert flat.cost_basis == fill.price * 30 and flat.average_entry_price == fill.price
    assert flat.market_value == bid * 30 and flat.unrealized_pl == (bid - fill.price) * 30
    assert flat.unrealized_pl_percent == ((bid - fill.price) * 100 / fill.price).quantize(Decimal("0.01"))
    account = engine.account("u1")
    assert account.positions_value == sum(p.market_value for p in positions)
    assert account.equity == account.cash + account.positions_value
    assert account.id == "acc_u1" and account.currency == "USD" and account.status == "ACTIVE"
    with pytest.raises(ApiError) as caught:
        engine.position("u1", "NOPE")
    assert caught.value.code is ErrorCode.INVALID_SYMBOL


def test_update_position_moves_to_the_target(engine: TradingEngine) -> None:
    up = engine.update_position("u1", "FLAT", 40)
    assert (up.previous_quantity, up.quantity) == (0, 40)
    assert up.order is not None and up.order.side is OrderSide.BUY and up.order.type is OrderType.MARKET
    same = engine.update_position("u1", "FLAT", 40)
    assert same == PositionUpdateResult(symbol="FLAT", previous_quantity=40, quantity=40, order=None)
    engine.place_order("u1", OrderRequest(symbol="FLAT", type=OrderType.LIMIT, side=OrderSide.SELL, quantity=25,
                                          limit_price=Decimal("500.00")))
    with pytest.raises(ApiError) as caught:
        engine.update_position("u1", "FLAT", 10)
    assert caught.value.code is ErrorCode.INSUFFICIENT_POSITION and caught.value.field == "target_quantity"
    down = engine.update_position("u1", "FLAT", 25)
    assert (down.previous_quantity, down.quantity) == (40, 25) and down.order.side is OrderSide.SELL
    with pytest.raises(ApiError) as caught:
        engine.update_position("u1", "ZZZ", 1)
    assert caught.value.code is ErrorCode.INVALID_SYMBOL
    with pytest.raises(ApiError) as caught:
        engine.update_position("u1", "FLAT", 10_000)
    assert caught.value.code is ErrorCode.INSUFFICIENT_FUNDS
    partial = engine.update_position("u1", "PARTL", 10)
    assert partial.quantity == 5 and partial.order.status is OrderStatus.PARTIALLY_FILLED


def test_open_account_reset_and_accounts(engine: TradingEngine) -> None:
    assert engine.open_account("rich", Decimal("5000000")).cash == Decimal("5000000.00")
    engine.place_order("rich", market("FLAT", OrderSide.BUY, 10))
    assert engine.open_account("rich").cash < Decimal("5000000")  # no cash: left as it is
    engine.place_order("u1", market("FLAT", OrderSide.BUY, 10))
    assert [a.id for a in engine.accounts()] == ["acc_rich", "acc_u1"]
    engine.reset("rich")
    assert engine.account("rich").cash == Decimal("5000000.00")
    assert engine.positions("rich") == [] and engine.list_orders("rich") == ([], None)
    assert engine.open_account("u1", Decimal("250.00")).cash == Decimal("250.00")
    assert engine.positions("u1") == []
    engine.reset("u1")
    assert engine.account("u1").cash == Decimal("250.00")
    with pytest.raises(ApiError) as caught:
        engine.reset("ghost")
    assert caught.value.code is ErrorCode.NOT_FOUND
    engine.reset()
    assert engine.accounts() == []
    assert engine.account("rich").cash == CASH


def test_batch_runs_each_operation_on_its_own(engine: TradingEngine) -> None:
    outcomes = engine.run_batch("u1", [
        BatchOperation("CREATE_ORDER", {"symbol": "FLAT", "type": "MARKET", "side": "BUY", "quantity": 10}),
        BatchOperation("CANCEL_ORDER", {"order_id": "ord_00000000000000000000000000"}),
        BatchOperation("UPDATE_POSITION", {"symbol": "FLAT", "target_quantity": 4}),
        BatchOperation("CREATE_ORDER", {"symbol": "FLAT", "type": "LIMIT", "side": "BUY", "quantity": 1,
                                        "price": 1}),
    ], atomic=False)
    assert [o.status for o in outcomes] == [201, 404, 200, 201]
    assert [o.index for o in outcomes] == [0, 1, 2, 3]
    assert outcomes[1].error is not None and outcomes[1].error.code is ErrorCode.NOT_FOUND
    assert outcomes[1].result is None and outcomes[0].error is None
    assert isinstance(outcomes[0].result, OrderView) and outcomes[0].result.status is OrderStatus.FILLED
    assert isinstance(outcomes[2].result, PositionUpdateResult) and outcomes[2].result.quantity == 4
    assert engine.position("u1", "FLAT").quantity == 4
    resting = outcomes[3].result
    assert isinstance(resting, OrderView)
    cancelled = engine.run_batch("u1", [BatchOperation("CANCEL_ORDER", {"order_id": resting.id})], atomic=False)
    assert cancelled[0].status == 200 and cancelled[0].result.status is OrderStatus.CANCELLED


def test_atomic_batch_rolls_back_everything_on_the_first_failure(engine: TradingEngine,
                                                                  events: list[TradingEvent]) -> None:
    engine.place_order("u1", market("FLAT", OrderSide.BUY, 10))
    resting = engine.place_order("u1", OrderRequest(symbol="FLAT", type=OrderType.LIMIT, side=OrderSide.BUY,
                                                    quantity=5, limit_price=Decimal("10.00")))
    before = (engine.account("u1"), engine.positions("u1"), engine.list_orders("u1"))
    events.clear()
    outcomes = engine.run_batch("u1", [
        BatchOperation("CREATE_ORDER", {"symbol": "WILD", "type": "MARKET", "side": "BUY", "quantity": 20}),
        BatchOperation("CANCEL_ORDER", {"order_id": resting.id}),
        BatchOperation("UPDATE_POSITION", {"symbol": "FLAT", "target_quantity": 0}),
        BatchOperation("CREATE_ORDER", {"symbol": "FLAT", "type": "MARKET", "side": "SELL", "quantity": 1}),
        BatchOperation("CANCEL_ORDER", {"order_id": resting.id}),
    ], atomic=True)
    assert [o.status for o in outcomes] == [424, 424, 424, 422, 424]
    assert outcomes[3].error.code is ErrorCode.INSUFFICIENT_POSITION
    assert all(o.error.code is ErrorCode.ROLLED_BACK for i, o in enumerate(outcomes) if i != 3)
    assert outcomes[0].error.message == "Not applied: operation 3 failed and the batch is atomic"
    assert all(o.result is None for o in outcomes)
    assert (engine.account("u1"), engine.positions("u1"), engine.list_orders("u1")) == before
    assert events == []
    assert engine.cancel_order("u1", resting.id).status is OrderStatus.CANCELLED


def test_atomic_batch_applies_everything_when_nothing_fails(engine: TradingEngine,
                                                            events: list[TradingEvent]) -> None:
    outcomes = engine.run_batch("u1", [
        BatchOperation("CREATE_ORDER", {"symbol": "WILD", "type": "MARKET", "side": "BUY", "quantity": 20}),
        BatchOperation("UPDATE_POSITION", {"symbol": "WILD", "target_quantity": 0}),
    ], atomic=True)
    assert [o.status for o in outcomes] == [201, 200]
    assert engine.positions("u1") == []
    assert [type(e) for e in events] == [OrderFilled, OrderFilled, PositionClosed]
