"""Many threads trading at once, with the clock moving under them: no lost order, no double fill, no overdraft."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

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
    TimeInForce,
    TradingEvent,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CASH = Decimal("20000.00")
SUBJECTS = [f"trader{i}" for i in range(4)]
SYMBOLS = ["FLAT", "WILD", "PARTL"]
THREADS = 16
OPERATIONS = 50
EXPECTED = {ErrorCode.INSUFFICIENT_FUNDS, ErrorCode.INSUFFICIENT_POSITION, ErrorCode.ORDER_NOT_CANCELLABLE}


def random_request(rng: random.Random, engine: TradingEngine) -> OrderRequest:
    symbol = rng.choice(SYMBOLS)
    side = rng.choice([OrderSide.BUY, OrderSide.SELL])
    quote = engine.quote(symbol)
    near = quote.ask if side is OrderSide.BUY else quote.bid
    offset = Decimal(rng.randint(-5, 5)) / 100
    kind = rng.choice(list(OrderType))
    tif = rng.choice(list(TimeInForce))
    quantity = rng.randint(1, 400 if kind is OrderType.LIMIT else 30)
    limit = near + offset if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop = near - offset if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    return OrderRequest(symbol=symbol, type=kind, side=side, quantity=quantity, limit_price=limit, stop_price=stop,
                        time_in_force=tif)


def _payload(request: OrderRequest) -> dict[str, object]:
    payload: dict[str, object] = {"symbol": request.symbol, "type": request.type, "side": request.side,
                                  "quantity": request.quantity, "time_in_force": request.time_in_force}
    if request.limit_price is not None:
        payload["price"] = float(request.limit_price)
    if request.stop_price is not None:
        payload["stop_price"] = float(request.stop_price)
    return payload


def all_orders(engine: TradingEngine, subject: str, status: str = "all") -> list[OrderView]:
    orders: list[OrderView] = []
    cursor = None
    while True:
        page, cursor = engine.list_orders(subject, status=status, limit=37, cursor=cursor)
        orders += page
        if cursor is None:
            return orders


def test_sixteen_threads_keep_every_invariant() -> None:
    universe = Universe([
        Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0),
        Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 3.0),
    ]).with_instruments(magic_instruments())
    clock = Clock(start=T0, frozen=True)
    events: list[TradingEvent] = []
    engine = TradingEngine(MarketSimulator(universe, 21), clock, IdGenerator(21, clock), starting_cash=CASH,
                           on_event=events.append)
    created: dict[str, list[str]] = {subject: [] for subject in SUBJECTS}
    failures: list[BaseException] = []
    refusals: Counter[ErrorCode] = Counter()
    done = threading.Event()
    start = threading.Barrier(THREADS + 1)

    def worker(index: int) -> None:
        rng = random.Random(index)
        subject = SUBJECTS[index % len(SUBJECTS)]
        start.wait()
        try:
            for _ in range(OPERATIONS):
                action = rng.random()
                try:
                    if action < 0.6:
                        created[subject].append(engine.place_order(subject, random_request(rng, engine)).id)
                    elif action < 0.8 and created[subject]:
                        engine.cancel_order(subject, rng.choice(created[subject]))
                    elif action < 0.85:
                        clock.advance(timedelta(seconds=1))  # every account catches up, on this thread
                    elif action < 0.9:
                        operations = [BatchOperation("CREATE_ORDER", _payload(random_request(rng, engine)))
                                      for _ in range(rng.randint(1, 3))]
                        for outcome in engine.run_batch(subject, operations, atomic=rng.random() < 0.5):
                            if isinstance(outcome.result, OrderView):
                                created[subject].append(outcome.result.id)
                            elif outcome.error is not None:
                                assert outcome.error.code in EXPECTED | {ErrorCode.ROLLED_BACK}, outcome.error
                    elif action < 0.95:
                        result = engine.update_position(subject, rng.choice(SYMBOLS), rng.randint(0, 40))
                        if result.order is not None:
                            created[subject].append(result.order.id)
                    else:
                        engine.account(subject)
                        engine.positions(subject)
                except ApiError as error:
                    assert error.code in EXPECTED, error.message
                    refusals[error.code] += 1
        except BaseException as exc:  # surfaced below; a thread's exception would otherwise vanish
            failures.append(exc)

    def ticker() -> None:
        start.wait()
        while not done.is_set():
            clock.advance(timedelta(seconds=1))  # clock.on_change reconciles every account on this thread
            time.sleep(0)  # yield, so the ticks interleave with the workers

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    ticking = threading.Thread(target=ticker)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so the operations really interleave
    try:
        for thread in [*threads, ticking]:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        ticking.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []
    assert refusals[ErrorCode.INSUFFICIENT_FUNDS] > 0 and refusals[ErrorCode.INSUFFICIENT_POSITION] > 0

    filled_events = Counter(e.order.id for e in events if isinstance(e, OrderFilled))
    assert set(filled_events) <= {order_id for ids in created.values() for order_id in ids}
    total_fills = 0
    for subject in SUBJECTS:
        orders = all_orders(engine, subject)
        assert sorted(o.id for o in orders) == sorted(created[subject])
        assert len({o.id for o in orders}) == len(orders)
        cash = CASH
        held: Counter[str] = Counter()
        for order in orders:
            assert engine.get_order(subject, order.id) == order
            filled = sum(f.quantity for f in order.fills)
            assert filled == order.filled_quantity <= order.quantity
            assert (order.status is OrderStatus.FILLED) == (filled == order.quantity)
            assert filled_events[order.id] == (1 if order.status is OrderStatus.FILLED else 0)
            total_fills += len(order.fills)
            sign = -1 if order.side is OrderSide.BUY else 1
            for fill in order.fills:
                cash += sign * fill.price * fill.quantity
                held[order.symbol] -= sign * fill.quantity
        account = engine.account(subject)
        assert account.cash == cash >= 0
        assert account.buying_power >= 0 and account.reserved_cash >= 0
        positions = {p.symbol: p for p in engine.positions(subject)}
        assert {s: q for s, q in held.items() if q} == {s: p.quantity for s, p in positions.items()}
        assert all(p.quantity > 0 and 0 <= p.available_quantity <= p.quantity for p in positions.values())
        # The running totals of what open orders hold back, and the listing index, kept up with every change:
        # once every open order is cancelled, nothing is held back.
        still_open = all_orders(engine, subject, "open")
        assert [o.id for o in still_open] == [o.id for o in orders if not o.status.is_final]
        for order in still_open:
            engine.cancel_order(subject, order.id)
        account = engine.account(subject)
        assert account.reserved_cash == 0 and account.buying_power == account.cash
        assert all(p.available_quantity == p.quantity for p in engine.positions(subject))
        assert all_orders(engine, subject, "open") == []
    assert total_fills > 100
