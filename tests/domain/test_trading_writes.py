"""What the engine writes through to a state file: one change writes what it changed, whatever rests beside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from mock_server.domain.clock import Clock
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Instrument, Universe
from mock_server.domain.persistence import StateStore
from mock_server.domain.trading.account import AccountState
from mock_server.domain.trading.batch import CREATE_ORDER, BatchOperation
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.models import OrderRequest, OrderSide, OrderStatus, OrderType, TimeInForce
from mock_server.domain.trading.state import OrderState

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
UNIVERSE = Universe([Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 4.0),
                     Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0)])
RESTING = 2_000


@dataclass
class Writes:
    """An ``AccountStore`` that records what it is asked to write."""

    saves: list[tuple[str, tuple[str, ...], bool, int | None]] = field(default_factory=list)

    def save_account(self, subject: str, created_at: datetime, state: AccountState, orders: Sequence[OrderState],
                     *, replace: bool) -> None:
        self.saves.append((subject, tuple(order.id for order in orders), replace, state.evaluated_through()))

    def drop_accounts(self) -> None:
        self.saves.append(("*", (), True, None))

    def save_market_mode(self, mode: MarketMode) -> None:
        pass


def make(seed: int = 3, max_steps: int = 2000) -> tuple[TradingEngine, Clock]:
    clock = Clock(start=T0, frozen=True)
    engine = TradingEngine(MarketSimulator(UNIVERSE, seed), clock, IdGenerator(seed, clock),
                           starting_cash=Decimal("100000000.00"), max_catch_up_steps=max_steps)
    return engine, clock


def step_of(clock: Clock) -> int:
    return MarketSimulator(UNIVERSE, 3).step_index(clock.now())


def buy(quantity: int, price: Decimal, symbol: str = "WILD") -> OrderRequest:
    return OrderRequest(symbol=symbol, type=OrderType.LIMIT, side=OrderSide.BUY, quantity=quantity,
                        limit_price=price, time_in_force=TimeInForce.GTC)


def rest_many(engine: TradingEngine, subject: str, count: int) -> None:
    """``count`` buy limits far below the market, which never fill."""
    floor = engine.quote("WILD").bid / 2
    for start in range(0, count, 100):
        engine.run_batch(subject, [BatchOperation(CREATE_ORDER, {"symbol": "WILD", "type": "LIMIT", "side": "BUY",
                                                                 "quantity": 1, "price": str(floor),
                                                                 "time_in_force": "GTC"})
                                   for _ in range(min(100, count - start))], atomic=False)


def test_a_change_writes_the_orders_it_changed_not_the_ones_resting_beside_them() -> None:
    engine, _ = make()
    rest_many(engine, "ann", RESTING)
    writes = Writes()
    engine.persist_with(writes)
    ask = engine.quote("WILD").ask
    placed = engine.place_order("ann", buy(1, ask))  # fills at once
    resting = engine.place_order("ann", buy(10**6, ask - Decimal("0.50")))
    assert [ids for _, ids, _, _ in writes.saves] == [(placed.id,), (resting.id,)]
    writes.saves.clear()
    engine.get_order("ann", placed.id)
    engine.list_orders("ann", status="open")
    engine.account("ann")
    assert writes.saves == []  # reads write nothing
    engine.cancel_order("ann", resting.id)
    assert [ids for _, ids, _, _ in writes.saves] == [(resting.id,)]


def test_steps_that_fill_write_the_orders_they_filled() -> None:
    engine, clock = make()
    rest_many(engine, "ann", RESTING)
    simulator = MarketSimulator(UNIVERSE, 3)
    future = [simulator.quote("WILD", T0 + SECOND * k).ask for k in range(200)]
    low = min(future[1:])
    hit = future.index(low)
    crossing = engine.place_order("ann", buy(1, low))
    assert crossing.status is OrderStatus.OPEN
    writes = Writes()
    engine.persist_with(writes)
    clock.advance(SECOND * (hit - 1))
    assert writes.saves == []  # steps that change nothing are not a change
    clock.advance(SECOND)
    assert [(subject, ids) for subject, ids, _, _ in writes.saves] == [("ann", (crossing.id,))]
    assert writes.saves[0][3] == step_of(clock)


def test_switching_the_mode_writes_every_account_and_only_the_day_orders_it_changed() -> None:
    engine, clock = make()
    rest_many(engine, "ann", 300)  # GTC: their expiry does not change
    day = engine.place_order("bob", OrderRequest(symbol="WILD", type=OrderType.LIMIT, side=OrderSide.BUY, quantity=1,
                                                 limit_price=engine.quote("WILD").bid / 2))
    writes = Writes()
    engine.persist_with(writes)
    clock.advance(SECOND * 5)
    engine.market_mode = MarketMode.NYSE
    step = step_of(clock)
    assert sorted((subject, ids, evaluated) for subject, ids, _, evaluated in writes.saves) == [
        ("ann", (), step), ("bob", (day.id,), step)]


def test_a_restart_evaluates_resting_orders_from_where_they_were_not_from_where_they_were_written(
        tmp_path: Path) -> None:
    """Orders written long ago (placed, never changed) come back evaluated as far as the account was when it was
    last written, so the restarted emulator fills exactly what the one that kept running fills (evaluating them
    from where they were written would replay a longer gap, thinned at other steps)."""
    store = StateStore(tmp_path / "state.db")
    store.open(3, "key")
    engine, clock = make(max_steps=40)
    engine.persist_with(store.writer())
    rest_many(engine, "ann", 50)
    ask = engine.quote("WILD").ask
    ladder = [engine.place_order("ann", buy(400, ask - Decimal("0.02") * k)).id for k in range(1, 30)]
    clock.advance(SECOND * 300)  # evaluated through here, written by the next change only
    engine.place_order("ann", buy(1, engine.quote("FLAT").ask, "FLAT"))
    store.close()

    again = StateStore(tmp_path / "state.db")
    try:
        (saved,) = again.open(3, "key").accounts
        floor = saved.state.evaluated_through()
        restarted, restarted_clock = make(max_steps=40)
        restarted_clock.set(clock.now())
        restarted.restore_account(saved.subject, saved.created_at, saved.state)
        for running_clock in (clock, restarted_clock):
            running_clock.advance(SECOND * 120)
        assert [restarted.get_order("ann", order_id) for order_id in ladder] == [
            engine.get_order("ann", order_id) for order_id in ladder]
        assert any(engine.get_order("ann", order_id).fills for order_id in ladder)
        assert floor == step_of(clock) - 120
    finally:
        again.close()
