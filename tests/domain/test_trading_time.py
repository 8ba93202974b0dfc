"""Time and the engine: lazy catch-up, thinning of long gaps, NYSE hours and expiry, clock jumps, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mock_server.domain.clock import Clock
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.hours import MarketMode, market_status
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Instrument, Universe
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.models import (
    OrderFilled,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    TradingEvent,
)
from mock_server.domain.trading.timeline import catch_up, open_windows

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 New York
CLOSE = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 16:00 New York (EST)
NEXT_OPEN = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)
UNIVERSE = Universe([
    Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0),
    Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 2.0),
    Instrument("JUMP", "Jumpy Corp", "NASDAQ", "Test", Decimal("1000.00"), 1.0),
])


def make(*, start: datetime = T0, seed: int = 3, mode: MarketMode = MarketMode.OPEN, max_steps: int = 2000,
         events: list[TradingEvent] | None = None) -> tuple[TradingEngine, Clock, MarketSimulator]:
    clock = Clock(start=start, frozen=True)
    simulator = MarketSimulator(UNIVERSE, seed)
    engine = TradingEngine(simulator, clock, IdGenerator(seed, clock), market_mode=mode,
                           starting_cash=Decimal("1000000000.00"), max_catch_up_steps=max_steps,
                           on_event=None if events is None else events.append)
    return engine, clock, simulator


def limit(symbol: str, side: OrderSide, quantity: int, price: str, tif: TimeInForce = TimeInForce.DAY) -> OrderRequest:
    return OrderRequest(symbol=symbol, type=OrderType.LIMIT, side=side, quantity=quantity,
                        limit_price=Decimal(price), time_in_force=tif)


def test_a_long_gap_is_thinned_to_max_catch_up_steps() -> None:
    engine, clock, _ = make(max_steps=5)
    placed = engine.place_order("u1", limit("FLAT", OrderSide.BUY, 1_000_000, "101.00", TimeInForce.GTC))
    clock.advance(SECOND * 1000)
    fills = engine.get_order("u1", placed.id).fills
    assert len(fills) == 1 + 5
    assert [f.timestamp for f in fills[1:]] == [T0 + SECOND * k for k in (200, 400, 600, 800, 1000)]
    clock.advance(SECOND * 2)
    assert len(engine.get_order("u1", placed.id).fills) == 8


def test_a_clock_jump_fills_resting_orders_and_emits_events_by_itself() -> None:
    events: list[TradingEvent] = []
    engine, clock, simulator = make(events=events)
    quantity = sum(simulator.quote("FLAT", T0 + SECOND * k).ask_size for k in range(3))
    placed = engine.place_order("u1", limit("FLAT", OrderSide.BUY, quantity, "101.00", TimeInForce.GTC))
    assert placed.status is OrderStatus.PARTIALLY_FILLED and events == []
    clock.advance(SECOND * 2)
    # clock.on_change caught the account up inside advance(): the event is there before any other engine call.
    assert len(events) == 1 and isinstance(events[0], OrderFilled)
    assert events[0].order.id == placed.id and events[0].at == T0 + 2 * SECOND
    assert events[0].order.status is OrderStatus.FILLED and len(events[0].order.fills) == 3


def test_nyse_day_orders_expire_at_the_close_and_gtc_orders_wait_for_the_session() -> None:
    events: list[TradingEvent] = []
    engine, clock, _ = make(start=CLOSE - 2 * SECOND, mode=MarketMode.NYSE, events=events)
    day = engine.place_order("u1", limit("FLAT", OrderSide.BUY, 10, "1.00"))
    gtc = engine.place_order("u1", limit("FLAT", OrderSide.BUY, 1_000_000, "101.00", TimeInForce.GTC))
    clock.set(NEXT_OPEN + 3 * SECOND)
    expired = engine.get_order("u1", day.id)
    assert expired.status is OrderStatus.EXPIRED and expired.expired_at == CLOSE and expired.remaining_quantity == 0
    stamps = [f.timestamp for f in engine.get_order("u1", gtc.id).fills]
    assert stamps == [CLOSE - 2 * SECOND, CLOSE - SECOND] + [NEXT_OPEN + k * SECOND for k in range(4)]
    assert all(market_status(MarketMode.NYSE, t).is_open for t in stamps)
    assert engine.account("u1").reserved_cash == Decimal("101.00") * engine.get_order("u1", gtc.id).remaining_quantity


def test_switching_the_mode_sets_and_clears_day_expiry() -> None:
    engine, clock, _ = make()
    day = engine.place_order("u1", limit("FLAT", OrderSide.BUY, 10, "1.00"))
    engine.market_mode = MarketMode.NYSE
    engine.market_mode = MarketMode.OPEN
    clock.set(CLOSE + SECOND)
    assert engine.get_order("u1", day.id).status is OrderStatus.OPEN
    engine.market_mode = MarketMode.NYSE  # the next close is now tomorrow's
    clock.set(CLOSE + timedelta(days=1, seconds=1))
    expired = engine.get_order("u1", day.id)
    assert expired.status is OrderStatus.EXPIRED and expired.expired_at == CLOSE + timedelta(days=1)


def test_closed_mode_never_fills_resting_orders() -> None:
    engine, clock, _ = make()
    placed = engine.place_order("u1", limit("FLAT", OrderSide.BUY, 1_000_000, "101.00", TimeInForce.GTC))
    engine.market_mode = MarketMode.CLOSED
    clock.advance(timedelta(hours=1))
    assert len(engine.get_order("u1", placed.id).fills) == 1


def test_a_stop_that_gaps_past_the_cash_fills_what_cash_covers_and_rejects_the_rest() -> None:
    engine, clock, simulator = make(seed=5)
    asks = [simulator.quote("JUMP", T0 + SECOND * k).ask for k in range(2000)]
    running = asks[0]
    for k in range(1, len(asks)):
        if asks[k] >= running + Decimal("0.02"):
            break
        running = max(running, asks[k])
    else:
        raise AssertionError("no upward gap in the sample")
    stop = running + Decimal("0.01")
    engine.open_account("tight", stop * 100)
    placed = engine.place_order("tight", OrderRequest(symbol="JUMP", type=OrderType.STOP, side=OrderSide.BUY,
                                                      quantity=100, stop_price=stop))
    assert engine.account("tight").buying_power == 0
    clock.advance(SECOND * k)
    done = engine.get_order("tight", placed.id)
    assert done.status is OrderStatus.REJECTED and done.reject_reason is not None
    assert done.fills[0].price == asks[k] and 0 < done.filled_quantity < 100
    account = engine.account("tight")
    assert Decimal(0) <= account.cash < asks[k] and account.reserved_cash == 0


def test_windows_and_catch_up_points() -> None:
    assert open_windows(MarketMode.CLOSED, T0, T0 + SECOND) == []
    assert open_windows(MarketMode.OPEN, T0, T0 + SECOND) == [(T0, T0 + SECOND)]
    windows = open_windows(MarketMode.NYSE, CLOSE - SECOND, NEXT_OPEN + SECOND)
    assert windows == [(CLOSE - SECOND, CLOSE - timedelta(microseconds=1)), (NEXT_OPEN, NEXT_OPEN + SECOND)]
    simulator = MarketSimulator(UNIVERSE, 1, step=timedelta(minutes=7))
    points = catch_up(simulator, MarketMode.NYSE, simulator.step_index(CLOSE - timedelta(minutes=10)),
                      NEXT_OPEN + timedelta(minutes=10), 100)
    assert all(market_status(MarketMode.NYSE, t).is_open for _, t in points)
    assert points[-1][0] == simulator.step_index(NEXT_OPEN + timedelta(minutes=10))
    assert NEXT_OPEN in [t for _, t in points]  # a session opening mid-step is stamped at the open
    assert len({step for step, _ in points}) == len(points)


def test_same_seed_and_same_clock_give_identical_results() -> None:
    def script() -> list[object]:
        events: list[TradingEvent] = []
        engine, clock, _ = make(seed=9, events=events)
        ask = engine.quote("WILD").ask
        ids = [engine.place_order("u1", limit("WILD", OrderSide.BUY, 3000, str(ask - Decimal("0.05")),
                                              TimeInForce.GTC)).id,
               engine.place_order("u1", limit("FLAT", OrderSide.BUY, 8000, "100.02", TimeInForce.GTC)).id,
               engine.place_order("u1", OrderRequest(symbol="WILD", type=OrderType.MARKET, side=OrderSide.BUY,
                                                     quantity=70)).id]
        for seconds in (1, 5, 30, 600, 3):
            clock.advance(SECOND * seconds)
            engine.place_order("u2", limit("WILD", OrderSide.BUY, 10, "40.00"))
        return [[engine.get_order("u1", i) for i in ids], engine.account("u1"), engine.positions("u1"),
                engine.list_orders("u2"), events]

    first, second = script(), script()
    assert first == second
    assert any(isinstance(e, OrderFilled) for e in first[-1])  # type: ignore[union-attr]


def test_within_a_step_the_older_order_meets_the_cash_first() -> None:
    """A stop buy that gaps past its stop overdraws what it reserved; a newer limit buy crossed at the same step
    pays less than it reserved. Older first: the stop sees the limit's whole reservation still held."""
    engine, clock, simulator = make(seed=5, max_steps=1)  # one step per catch-up: both cross at that step
    wild, jump = engine.quote("WILD"), engine.quote("JUMP")
    stop, limit_price = wild.ask + Decimal("0.01"), jump.ask - Decimal("0.01")

    def both_cross(k: int) -> bool:
        """The stop gaps past its stop, and the limit saves at least one share of the stop's price."""
        ask = simulator.quote("WILD", T0 + SECOND * k).ask
        return ask > stop and simulator.quote("JUMP", T0 + SECOND * k).ask <= limit_price - ask / 100

    seconds = next(k for k in range(1, 50_000) if both_cross(k))
    later_wild, later_jump = (simulator.quote(symbol, T0 + SECOND * seconds) for symbol in ("WILD", "JUMP"))
    engine.open_account("tight", stop * 1000 + limit_price * 100)
    older = engine.place_order("tight", OrderRequest(symbol="WILD", type=OrderType.STOP, side=OrderSide.BUY,
                                                     quantity=1000, stop_price=stop, time_in_force=TimeInForce.GTC))
    newer = engine.place_order("tight", limit("JUMP", OrderSide.BUY, 100, str(limit_price), TimeInForce.GTC))
    assert engine.account("tight").buying_power == 0
    clock.advance(SECOND * seconds)
    stopped, limited = engine.get_order("tight", older.id), engine.get_order("tight", newer.id)
    assert stopped.status is OrderStatus.REJECTED and stopped.fills[0].price == later_wild.ask
    assert stopped.filled_quantity == int(stop * 1000 // later_wild.ask)  # the limit's reservation still held
    assert limited.status is OrderStatus.FILLED and limited.fills[0].price == later_jump.ask
    # Newest first, the stop would have had the limit's savings too: the order within a step is observable.
    assert int((stop * 1000 + (limit_price - later_jump.ask) * 100) // later_wild.ask) > stopped.filled_quantity
