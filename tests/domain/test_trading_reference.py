"""The engine against a brute-force reference (``reference_trading.py``): random flows, the same fills.

The flows mix every order type and time in force, both sides, three accounts (one short of cash, so its orders
compete for it), the magic symbols, cancels, position updates, atomic batches that fail and roll back, clock jumps
long enough to be thinned, rewinds, and switches of the market mode across the NYSE close. After each operation
(or a few), every order, the cash, the reservations and the positions must be what the reference computed by
scanning every working order at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.hours import MarketMode
from mock_server.domain.market.simulator import MarketSimulator
from mock_server.domain.market.universe import Instrument, Universe
from mock_server.domain.trading.batch import CANCEL_ORDER, CREATE_ORDER, UPDATE_POSITION, BatchOperation
from mock_server.domain.trading.engine import TradingEngine
from mock_server.domain.trading.magic import magic_instruments
from mock_server.domain.trading.models import (
    OrderRequest,
    OrderSide,
    OrderType,
    OrderView,
    TimeInForce,
    cents,
)
from tests.domain.reference_trading import Account, Order, Reference

START = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # Monday 15:00 in New York: an hour before the close
CASH = Decimal("200000.00")
MAX_STEPS = 25  # small, so clock jumps are thinned
SUBJECTS = ("ann", "bob", "cat")
TIGHT = Decimal("1500.00")  # cat's cash: its orders compete for it
SYMBOLS = ("WILD", "JUMP", "FLAT", "PARTL", "REJECT", "HALT")
UNIVERSE = Universe([
    Instrument("FLAT", "Flat Corp", "NYSE", "Test", Decimal("100.00"), 0.0),
    Instrument("WILD", "Wild Corp", "NASDAQ", "Test", Decimal("50.00"), 6.0),
    Instrument("JUMP", "Jumpy Corp", "NASDAQ", "Test", Decimal("400.00"), 3.0),
]).with_instruments(magic_instruments())


@dataclass(frozen=True)
class Place:
    subject: str
    symbol: str
    type: OrderType
    side: OrderSide
    quantity: int
    limit_away: int  # basis points from the current quote's touch, away from crossing (negative: crossing now)
    stop_away: int
    tif: TimeInForce


@dataclass(frozen=True)
class Cancel:
    subject: str
    pick: int  # which of the subject's orders (modulo how many it has)


@dataclass(frozen=True)
class Position:
    subject: str
    symbol: str
    target: int


@dataclass(frozen=True)
class Batch:
    subject: str
    steps: tuple[Place | Cancel | Position, ...]


@dataclass(frozen=True)
class MoveClock:
    seconds: int  # negative: a rewind


@dataclass(frozen=True)
class SetMode:
    mode: MarketMode


@dataclass(frozen=True)
class Read:
    subject: str


subjects = st.sampled_from(SUBJECTS)
places = st.builds(Place, subjects, st.sampled_from(SYMBOLS[:2] * 4 + SYMBOLS), st.sampled_from(list(OrderType)),
                   st.sampled_from(list(OrderSide)), st.integers(1, 150), st.integers(-5, 40), st.integers(-5, 40),
                   st.sampled_from(list(TimeInForce)))
cancels = st.builds(Cancel, subjects, st.integers(0, 1000))
positions = st.builds(Position, subjects, st.sampled_from(SYMBOLS[:4]), st.integers(0, 300))
batches = st.builds(Batch, subjects, st.lists(st.one_of(places, cancels, positions), min_size=1, max_size=4)
                    .map(tuple))
steps = st.builds(MoveClock, st.integers(1, 40))
jumps = st.builds(MoveClock, st.sampled_from([61, 400, 1800, 3600, 66_000, 86_400]))
rewinds = st.builds(MoveClock, st.integers(-150, -1))
modes = st.builds(SetMode, st.sampled_from([MarketMode.OPEN, MarketMode.NYSE, MarketMode.NYSE, MarketMode.CLOSED]))
reads = st.builds(Read, subjects)
# Mostly orders and small clock steps, so resting orders cross later; rarer jumps, rewinds and mode switches.
WEIGHTED = (places,) * 8 + (cancels, positions, batches) + (steps,) * 5 + (jumps, rewinds, modes, reads)
operations = st.lists(st.tuples(st.sampled_from(WEIGHTED).flatmap(lambda strategy: strategy), st.booleans()),
                      min_size=30, max_size=90)


class Rig:
    def __init__(self, seed: int, mode: MarketMode) -> None:
        self.clock = Clock(start=START, frozen=True)
        self.simulator = MarketSimulator(UNIVERSE, seed)
        self.engine = TradingEngine(self.simulator, self.clock, IdGenerator(seed, self.clock), market_mode=mode,
                                    starting_cash=CASH, max_catch_up_steps=MAX_STEPS)
        self.reference = Reference(self.simulator, self.clock, mode=mode, cash=CASH, max_steps=MAX_STEPS)
        self.ids: dict[str, list[str]] = {subject: [] for subject in SUBJECTS}
        self.engine.open_account("cat", TIGHT)
        self.reference.accounts["cat"] = Account(TIGHT)

    def request(self, place: Place) -> OrderRequest:
        quote = self.simulator.quote(place.symbol, self.clock.now())
        buying = place.side is OrderSide.BUY
        touch = quote.ask if buying else quote.bid

        def price(basis_points: int) -> Decimal:
            return max(cents(touch * (1 + Decimal(basis_points) / 10_000)), Decimal("0.01"))

        kind = place.type
        limit = price(-place.limit_away if buying else place.limit_away)
        stop = price(place.stop_away if buying else -place.stop_away)
        return OrderRequest(symbol=place.symbol, type=kind, side=place.side, quantity=place.quantity,
                            limit_price=limit if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                            stop_price=stop if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                            time_in_force=place.tif)

    def order_id(self, cancel: Cancel) -> str:
        known = self.ids[cancel.subject]
        return known[cancel.pick % len(known)] if known else "ord_00000000000000000000000000"

    def run(self, operation: object) -> None:
        engine, reference = self.engine, self.reference
        if isinstance(operation, Place):
            request = self.request(operation)
            try:
                placed = engine.place_order(operation.subject, request)
            except ApiError as error:
                _refused_too(error, lambda: reference.place(operation.subject, request, None))
                return
            reference.place(operation.subject, request, placed.id)
            self.ids[operation.subject].append(placed.id)
        elif isinstance(operation, Cancel):
            order_id = self.order_id(operation)
            try:
                engine.cancel_order(operation.subject, order_id)
            except ApiError as error:
                _refused_too(error, lambda: reference.cancel(operation.subject, order_id))
                return
            reference.cancel(operation.subject, order_id)
        elif isinstance(operation, Position):
            try:
                result = engine.update_position(operation.subject, operation.symbol, operation.target)
            except ApiError as error:
                _refused_too(error, lambda: reference.update_position(operation.subject, operation.symbol,
                                                                      operation.target, None))
                return
            made = None if result.order is None else result.order.id
            assert (reference.update_position(operation.subject, operation.symbol, operation.target, made)
                    is None) == (made is None)
            if made is not None:
                self.ids[operation.subject].append(made)
        elif isinstance(operation, Batch):
            self.batch(operation)
        elif isinstance(operation, MoveClock):
            if operation.seconds > 0:
                self.clock.advance(timedelta(seconds=operation.seconds))
            else:
                self.clock.set(self.clock.now() + timedelta(seconds=operation.seconds))
            reference.reconcile_all()
        elif isinstance(operation, SetMode):
            engine.market_mode = operation.mode
            reference.set_mode(operation.mode)
        else:
            assert isinstance(operation, Read)
            engine.account(operation.subject)
            reference.account(operation.subject)

    def batch(self, batch: Batch) -> None:
        operations: list[BatchOperation] = []
        steps: list[tuple[str, object, str | None]] = []
        for step in batch.steps:
            if isinstance(step, Place):
                request = self.request(step)
                payload: dict[str, object] = {"symbol": request.symbol, "type": request.type, "side": request.side,
                                              "quantity": request.quantity, "time_in_force": request.time_in_force}
                if request.limit_price is not None:
                    payload["price"] = str(request.limit_price)
                if request.stop_price is not None:
                    payload["stop_price"] = str(request.stop_price)
                operations.append(BatchOperation(CREATE_ORDER, payload))
                steps.append(("place", request, None))
            elif isinstance(step, Cancel):
                order_id = self.order_id(Cancel(batch.subject, step.pick))
                operations.append(BatchOperation(CANCEL_ORDER, {"order_id": order_id}))
                steps.append(("cancel", order_id, None))
            else:
                operations.append(BatchOperation(UPDATE_POSITION, {"symbol": step.symbol,
                                                                   "target_quantity": step.target}))
                steps.append(("position", (step.symbol, step.target), None))
        outcomes = self.engine.run_batch(batch.subject, operations, atomic=True)
        failed = next((outcome.index for outcome in outcomes if outcome.error is not None
                       and outcome.error.code is not ErrorCode.ROLLED_BACK), None)
        if failed is None:
            made = []
            for (action, data, _), outcome in zip(steps, outcomes, strict=True):
                order = outcome.result if isinstance(outcome.result, OrderView) else getattr(outcome.result, "order",
                                                                                             None)
                made.append((action, data, None if order is None else order.id))
                if order is not None:
                    self.ids[batch.subject].append(order.id)
            steps = made
        else:
            steps = [(action, data, "ord_RolledBack") for action, data, _ in steps]
        assert self.reference.atomic_batch(batch.subject, steps) == failed

    def compare(self) -> None:
        for subject in SUBJECTS:
            views: list[OrderView] = []
            cursor = None
            while True:
                page, cursor = self.engine.list_orders(subject, limit=50, cursor=cursor)
                views += page
                if cursor is None:
                    break
            account = self.engine.account(subject)
            held = {p.symbol: (p.quantity, p.cost_basis) for p in self.engine.positions(subject)}
            expected = self.reference.account(subject)
            assert [view.id for view in reversed(views)] == [order.id for order in expected.orders]
            for view, order in zip(reversed(views), expected.orders, strict=True):
                assert _seen(view) == _expected(order), view.id
            assert account.cash == cents(expected.cash)
            assert account.realized_pl == cents(expected.realized_pl)
            assert account.reserved_cash == cents(expected.reserved_cash())
            assert held == {symbol: (int(quantity), cents(cost))
                            for symbol, (quantity, cost) in expected.positions.items()}
            for symbol in {order.request.symbol for order in expected.orders if order.working}:
                if symbol in held:
                    assert self.engine.position(subject, symbol).available_quantity == (
                        expected.held(symbol) - expected.reserved_shares(symbol))


def _refused_too(error: ApiError, call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except ApiError as expected:
        assert expected.code is error.code, (error.message, expected.message)
    else:
        raise AssertionError(f"the engine refused ({error.code}: {error.message}), the reference did not")


def _seen(view: OrderView) -> tuple[object, ...]:
    return (view.status, view.filled_quantity, [(f.quantity, f.price, f.timestamp) for f in view.fills],
            view.reject_reason, view.updated_at, view.filled_at, view.cancelled_at, view.expired_at)


def _expected(order: Order) -> tuple[object, ...]:
    return (order.status, order.filled, order.fills, order.reject_reason, order.updated_at or order.created_at,
            order.filled_at, order.cancelled_at, order.expired_at)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10), mode=st.sampled_from([MarketMode.OPEN, MarketMode.OPEN, MarketMode.NYSE]),
       flow=operations)
def test_the_engine_fills_exactly_what_a_scan_of_every_order_fills(seed: int, mode: MarketMode,
                                                                   flow: list[tuple[object, bool]]) -> None:
    rig = Rig(seed, mode)
    for operation, check in flow:
        rig.run(operation)
        if check:
            rig.compare()
    rig.compare()
