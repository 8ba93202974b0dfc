"""The trading engine: accounts, order placement and matching against the simulated market, positions and batches.

Resting orders are evaluated lazily: every call that touches an account first replays the simulator steps since
its orders were last evaluated (see ``timeline.py``), and a clock jump replays every account at once. A step
visits only the orders it can change, which the account's order book (``book.py``) finds by price and expiry, so
a call costs the same with no resting orders or a hundred thousand. Each account has its own lock; every change
to an account (a fill's cash, position and reservation, a cancel, a whole atomic batch) happens under it, and
events are delivered only after it is released.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from mock_server.domain.clock import Clock, rfc3339
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.hours import MarketMode, MarketStatus, market_status
from mock_server.domain.market.simulator import MarketSimulator, Quote
from mock_server.domain.trading import magic
from mock_server.domain.trading.account import Account, AccountState
from mock_server.domain.trading.batch import (
    CANCEL_ORDER,
    CREATE_ORDER,
    UPDATE_POSITION,
    BatchOperation,
    BatchOutcome,
    failure,
    rolled_back,
    success,
)
from mock_server.domain.trading.ledger import affordable, record_fill
from mock_server.domain.trading.matching import execution, stop_crossed
from mock_server.domain.trading.models import (
    AccountView,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    PositionUpdateResult,
    PositionView,
    TimeInForce,
    TradingEvent,
    cents,
)
from mock_server.domain.trading.state import ZERO, OrderState
from mock_server.domain.trading.timeline import catch_up

T = TypeVar("T")
_STATUS_FILTERS: dict[str, tuple[OrderStatus, ...]] = {
    **{status.lower(): (status,) for status in OrderStatus},
    "all": tuple(OrderStatus),
    "open": tuple(status for status in OrderStatus if not status.is_final),  # not only OPEN: PARTIALLY_FILLED too
    "closed": tuple(status for status in OrderStatus if status.is_final),
}
_MAX_PAGE = 500


_ORDER_ID = re.compile(r"^ord_[0-9A-Z]{26}$")


class AccountStore(Protocol):
    """Where the engine writes accounts through when the emulator keeps its state in a file (``--state``).

    Each call is made under the account's lock, before the caller sees the outcome, so what a client was told
    is on disk before it hears it. ``orders`` are the orders placed or changed since the last call (each with
    its ``last_step``; the others have been evaluated through ``state.evaluated_through()`` at least); ``replace``
    says the account's whole state was swapped (a reset) and ``orders`` is then every order it has.
    """

    def save_account(self, subject: str, created_at: datetime, state: AccountState, orders: Sequence[OrderState],
                     *, replace: bool) -> None: ...

    def drop_accounts(self, subject: str | None = None) -> None: ...

    def save_market_mode(self, mode: MarketMode) -> None: ...


@dataclass(frozen=True, slots=True)
class TradingSummary:
    """How much the engine holds: accounts, orders (``open_orders``: not yet final) and open positions."""

    accounts: int
    orders: int
    open_orders: int
    positions: int


class TradingEngine:
    """Orders, positions and cash for every account (one per OAuth subject, id ``acc_<subject>``).

    Choices the spec leaves open:

    - Fills: MARKET takes its whole quantity at the current step's quote (buys at the ask, sells at the bid).
      LIMIT buys fill when ask <= limit, sells when bid >= limit, at most the displayed size per step. STOP and
      STOP_LIMIT trigger when the ask (buys) reaches the stop or the bid (sells) falls to it, then act as MARKET
      or LIMIT from that very step.
    - IOC takes what one evaluation at placement gives and cancels the rest: CANCELLED even when some shares
      filled (they stay filled). FOK fills whole at once or ends CANCELLED with nothing filled. A stop order that
      is not triggered at placement is therefore cancelled under IOC/FOK.
    - DAY orders expire at the session close in ``nyse`` mode (``expired_at`` is that close); in ``open`` and
      ``closed`` modes they never expire. Switching the mode to ``nyse`` gives working DAY orders the next close;
      switching away clears it. Resting orders only fill at instants the market is open under the current mode.
    - Reservations: open buys hold back ``remaining * reserve price`` (the limit for LIMIT/STOP_LIMIT, the stop for
      STOP, the placement ask for a resting MARKET, which only PARTL produces); open sells hold back their remaining
      shares. The buy check prices STOP orders at max(ask, stop) so a reservation never exceeds buying power.
    - A fill never overdraws: a buy takes only what cash less the other orders' reservations pays for (a STOP can
      trigger above its stop). What it cannot pay for is REJECTED (the shares already filled stay filled), with
      ``reject_reason`` saying why.
    - Average cost: a sell removes the held cost in proportion to the shares sold, rounded to the cent; realized
      P/L is proceeds minus that cost. A position that reaches zero is removed and reported as ``PositionClosed``.
    - Rewinding the clock never undoes a fill; steps already evaluated are not evaluated again.
    """

    def __init__(self, simulator: MarketSimulator, clock: Clock, ids: IdGenerator, *,
                 market_mode: MarketMode = MarketMode.OPEN, starting_cash: Decimal = Decimal("100000.00"),
                 on_event: Callable[[TradingEvent], None] | None = None, max_catch_up_steps: int = 2000) -> None:
        if max_catch_up_steps < 1:
            raise ValueError("max_catch_up_steps must be positive")
        if starting_cash < 0:
            raise ValueError("starting_cash must not be negative")
        self._simulator = simulator
        self._clock = clock
        self._ids = ids
        self._mode = MarketMode(market_mode)
        self._starting_cash = cents(starting_cash)
        self._on_event = on_event
        self._max_steps = max_catch_up_steps
        self._accounts: dict[str, Account] = {}
        self._registry = threading.Lock()
        self._mode_lock = threading.RLock()  # a listener may set the mode again
        self._log = logging.getLogger(__name__)
        self._store: AccountStore | None = None
        clock.on_change(lambda: self.reconcile())

    # -- persistence --------------------------------------------------------------------------------------------

    def persist_with(self, store: AccountStore) -> None:
        """Write every later change through to ``store`` (called once, after ``restore_account``, before serving)."""
        self._store = store

    def restore_account(self, subject: str, created_at: datetime, state: AccountState) -> None:
        """Put back an account read from a state file, as it was; nothing is written or emitted."""
        with self._registry:
            self._accounts[subject] = Account(subject, state, created_at)

    # -- market -------------------------------------------------------------------------------------------------

    @property
    def market_mode(self) -> MarketMode:
        return self._mode

    @market_mode.setter
    def market_mode(self, mode: MarketMode) -> None:
        """Catch every account up under the old mode first, so the past is judged by the hours it had."""
        mode = MarketMode(mode)
        with self._mode_lock:
            self.reconcile()
            self._mode = mode
            close = market_status(mode, self._clock.now()).next_close if mode is MarketMode.NYSE else None
            for account in self._all_accounts():
                with account.lock:
                    state = account.state
                    for order in list(state.working.values()):
                        if order.time_in_force is TimeInForce.DAY and not order.pinned:
                            expires_at = (order.expires_at or close) if close is not None else None
                            if expires_at != order.expires_at:
                                with state.changing(order):
                                    order.expires_at = expires_at
                    # Written even unchanged: how far its orders were evaluated under the old mode is not to be
                    # evaluated again under the new one after a restart.
                    self._write_changes(account, always=True)
            if self._store is not None:
                self._store.save_market_mode(mode)

    def market_status(self) -> MarketStatus:
        return market_status(self._mode, self._clock.now())

    def quote(self, symbol: str) -> Quote:
        self._require_symbol(symbol)
        return self._simulator.quote(symbol, self._clock.now())

    # -- accounts -----------------------------------------------------------------------------------------------

    def open_account(self, subject: str, cash: Decimal | None = None) -> AccountView:
        """Create the account if missing; with ``cash`` an existing account is reset to exactly that cash."""
        if cash is not None and cash < 0:
            raise ApiError(ErrorCode.INVALID_REQUEST, "Starting cash must not be negative", field="cash")
        opening = self._starting_cash if cash is None else cents(cash)
        with self._registry:
            existing = self._accounts.get(subject)
            if existing is None:
                created = self._accounts[subject] = Account(subject, AccountState.fresh(opening), self._clock.now())
                if self._store is not None:
                    self._save(created, (), replace=True)
        if existing is not None and cash is not None:
            with existing.lock:
                existing.state = AccountState.fresh(opening)
                if self._store is not None:
                    self._save(existing, (), replace=True)
        return self.account(subject)

    def account(self, subject: str) -> AccountView:
        """The caller's account, created with the starting cash on first use."""
        return self._run(subject, lambda account, _: self._account_view(account))

    def accounts(self) -> list[AccountView]:
        views = [self._run(account.subject, lambda acc, _: self._account_view(acc), account=account)
                 for account in self._all_accounts()]
        return sorted(views, key=lambda view: view.id)

    def has_account(self, subject: str) -> bool:
        """Whether the subject has an account, without opening one (every other accessor opens it on first
        use, which the control plane's reads of someone else's account must not do)."""
        return self._existing(subject) is not None

    def summary(self) -> TradingSummary:
        """Counts over every account, caught up to the clock (for the control plane's state page)."""
        accounts = self._all_accounts()
        counts = [self._run(account.subject, lambda acc, _: (len(acc.state.orders), len(acc.state.working),
                                                            len(acc.state.positions)), account=account)
                  for account in accounts]
        return TradingSummary(accounts=len(accounts), orders=sum(c[0] for c in counts),
                              open_orders=sum(c[1] for c in counts), positions=sum(c[2] for c in counts))

    def reset(self, subject: str | None = None) -> None:
        """None drops every account; a subject goes back to its starting cash with no orders or positions."""
        if subject is None:
            with self._registry:
                self._accounts.clear()
                if self._store is not None:
                    self._store.drop_accounts()
            return
        account = self._existing(subject)
        if account is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No account acc_{subject}")
        with account.lock:
            account.state = AccountState.fresh(account.state.starting_cash)
            if self._store is not None:
                self._save(account, (), replace=True)

    def close_account(self, subject: str) -> AccountView:
        """Remove an account with its orders and positions (the control plane's close); its view as it was."""
        account = self._existing(subject)
        if account is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No account acc_{subject}")
        view = self._run(subject, lambda acc, _: self._account_view(acc), account=account)
        with self._registry:
            self._accounts.pop(subject, None)
            if self._store is not None:
                self._store.drop_accounts(subject)
        return view

    def reconcile(self, subject: str | None = None) -> None:
        """Evaluate resting orders up to the clock (every account when ``subject`` is None; unknown ones: no-op)."""
        if subject is None:
            targets = self._all_accounts()
        else:
            existing = self._existing(subject)
            targets = [] if existing is None else [existing]
        for account in targets:
            self._run(account.subject, lambda _account, _events: None, account=account)

    # -- orders -------------------------------------------------------------------------------------------------

    def place_order(self, subject: str, request: OrderRequest) -> OrderView:
        return self._run(subject, lambda account, events: self._place(account, request, events).view())

    def get_order(self, subject: str, order_id: str) -> OrderView:
        return self._run(subject, lambda account, _: self._order(account, order_id).view())

    def list_orders(self, subject: str, *, status: str = "all", symbol: str | None = None,
                    side: OrderSide | None = None, limit: int = 50,
                    cursor: str | None = None) -> tuple[list[OrderView], str | None]:
        """Newest first. ``status`` is all, open (not final), closed (final) or one OrderStatus in lower case
        (``filled``: one spelling per value, which code generators need). The second value is the cursor of the
        next page, None on the last page."""
        statuses = _STATUS_FILTERS.get(status)
        if statuses is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown status filter {status!r}", field="status")
        if not 1 <= limit <= _MAX_PAGE:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"limit must be 1..{_MAX_PAGE}", field="limit")
        if cursor is not None and not _ORDER_ID.match(cursor):
            raise ApiError(ErrorCode.INVALID_REQUEST, f"cursor must be an order id, not {cursor!r}", field="cursor")

        def page(account: Account, _: list[TradingEvent]) -> tuple[list[OrderView], str | None]:
            # Ids sort by creation time, so "older than the cursor id" pages stably as new orders arrive, and any
            # well-formed id is a valid position, whether or not it names an order of this account.
            found = account.state.orders.page(statuses, symbol, side, cursor, limit + 1)
            shown = found[:limit]
            return [order.view() for order in shown], shown[-1].id if len(found) > limit else None

        return self._run(subject, page)

    def cancel_order(self, subject: str, order_id: str) -> OrderView:
        return self._run(subject, lambda account, _: self._cancel(account, order_id).view())

    # -- positions ----------------------------------------------------------------------------------------------

    def positions(self, subject: str) -> list[PositionView]:
        def views(account: Account, _: list[TradingEvent]) -> list[PositionView]:
            now = self._clock.now()
            return [self._position_view(account, symbol, now) for symbol in sorted(account.state.positions)]

        return self._run(subject, views)

    def open_positions(self) -> list[tuple[str, PositionView]]:
        """(account id, position) for every open position of every existing account, caught up to the clock.

        For watchers (alerts): unlike ``positions`` it never creates an account, so it cannot bring back one
        that a reset just dropped.
        """
        found: list[tuple[str, PositionView]] = []
        for account in self._all_accounts():
            views = self._run(account.subject, lambda acc, _: [
                self._position_view(acc, symbol, self._clock.now()) for symbol in sorted(acc.state.positions)
            ], account=account)
            found += [(account.id, view) for view in views]
        return found

    def position(self, subject: str, symbol: str) -> PositionView:
        self._require_symbol(symbol)

        def view(account: Account, _: list[TradingEvent]) -> PositionView:
            if symbol not in account.state.positions:
                raise ApiError(ErrorCode.NOT_FOUND, f"No open position in {symbol}")
            return self._position_view(account, symbol, self._clock.now())

        return self._run(subject, view)

    def update_position(self, subject: str, symbol: str, target_quantity: int) -> PositionUpdateResult:
        return self._run(subject, lambda account, events: self._update_position(account, symbol, target_quantity,
                                                                                  events))

    # -- batch --------------------------------------------------------------------------------------------------

    def run_batch(self, subject: str, operations: Sequence[BatchOperation], *, atomic: bool) -> list[BatchOutcome]:
        """Run in order. Non-atomic: each operation on its own, exactly as its own call. Atomic: under the account
        lock throughout, from a savepoint of the account that the first failure rolls back to; a rolled-back batch
        emits no events (fills of resting orders found while catching up before it still do)."""
        if not atomic:
            return [self._run_one(subject, index, operation) for index, operation in enumerate(operations)]
        account = self._account(subject)
        caught_up: list[TradingEvent] = []
        events: list[TradingEvent] = []
        try:
            with account.lock:
                try:
                    self._reconcile_locked(account, caught_up)
                    state = account.state
                    savepoint = state.savepoint()
                    outcomes: list[BatchOutcome] = []
                    for index, operation in enumerate(operations):
                        try:
                            result = self._apply(account, operation, events)
                        except ApiError as error:
                            state.rollback(savepoint)
                            events.clear()
                            return rolled_back(operations, index, error)
                        except BaseException:
                            state.rollback(savepoint)
                            events.clear()
                            raise
                        outcomes.append(success(index, operation.action, result))
                    state.release(savepoint)
                    return outcomes
                finally:
                    self._write_changes(account)
        finally:
            self._emit(caught_up + events)

    def _run_one(self, subject: str, index: int, operation: BatchOperation) -> BatchOutcome:
        try:
            result = self._run(subject, lambda account, events: self._apply(account, operation, events))
        except ApiError as error:
            return failure(index, operation.action, error)
        return success(index, operation.action, result)

    def _apply(self, account: Account, operation: BatchOperation,
               events: list[TradingEvent]) -> OrderView | PositionUpdateResult:
        data = operation.data
        try:
            if operation.action == CREATE_ORDER:
                request = OrderRequest.from_payload(data)
            elif operation.action == UPDATE_POSITION:
                symbol, target = str(data["symbol"]), int(data["target_quantity"])
            elif operation.action == CANCEL_ORDER:
                order_id = str(data["order_id"])
            else:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"Unknown action {operation.action!r}", field="action")
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"Invalid {operation.action} data: {exc}", field="data") from exc
        if operation.action == CREATE_ORDER:
            return self._place(account, request, events).view()
        if operation.action == UPDATE_POSITION:
            return self._update_position(account, symbol, target, events)
        return self._cancel(account, order_id).view()

    # -- internals: the locked operations -----------------------------------------------------------------------

    def _place(self, account: Account, request: OrderRequest, events: list[TradingEvent], *,
               quantity_field: str = "quantity") -> OrderState:
        """Check, accept and evaluate a new order once at the current quote. Refusals leave no trace."""
        _check_shape(request)
        symbol = request.symbol
        self._require_symbol(symbol)
        now = self._clock.now()
        status = self._require_open(symbol, now)
        if magic.forces_insufficient_funds(request.client_order_id):
            raise ApiError(ErrorCode.INSUFFICIENT_FUNDS,
                           f"Insufficient funds (client_order_id {request.client_order_id} starts with "
                           f"{magic.NSF_PREFIX})")
        state = account.state
        quote = self._simulator.quote(symbol, now)
        reserve_price = ZERO
        if request.side is OrderSide.BUY:
            reserve_price = _reserve_price(request, quote)
            check_price = max(quote.ask, reserve_price) if request.type is OrderType.STOP else reserve_price
            cost = check_price * request.quantity
            power = state.buying_power()
            if cost > power:
                raise ApiError(ErrorCode.INSUFFICIENT_FUNDS,
                               f"Order cost {cost:.2f} exceeds buying power {power:.2f}")
        else:
            available = state.available_shares(symbol)
            if request.quantity > available:
                raise ApiError(ErrorCode.INSUFFICIENT_POSITION,
                               f"Cannot sell {request.quantity} {symbol}: {available} shares available "
                               f"({state.held(symbol)} held, {state.reserved_shares(symbol)} reserved by open sells)",
                               field=quantity_field)
        expires_at = None
        if request.time_in_force is TimeInForce.DAY and self._mode is MarketMode.NYSE:
            expires_at = status.next_close
        order = OrderState(
            id=self._ids.new("ord"), client_order_id=request.client_order_id,
            symbol=symbol, type=request.type, side=request.side, quantity=request.quantity,
            limit_price=request.limit_price, stop_price=request.stop_price, time_in_force=request.time_in_force,
            strategy=request.strategy, created_at=now, updated_at=now, reserve_price=reserve_price,
            last_step=self._simulator.step_index(now), expires_at=expires_at,
        )
        # Evaluated before it joins the account, so the reservations it meets are the other orders'.
        if magic.is_rejected(symbol):
            order.finish(OrderStatus.REJECTED, now, magic.REJECT_REASON)
        elif magic.is_partial(symbol):
            order.pinned = True
            quantity = magic.partial_quantity(order.quantity)
            if quantity:
                price = quote.ask if order.side is OrderSide.BUY else quote.bid
                record_fill(state, account.id, order, quantity, price, now, events)
        else:
            immediate = request.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
            self._evaluate(account, order, quote, now, events,
                           all_or_none=request.time_in_force is TimeInForce.FOK)
            if immediate and not order.status.is_final:
                order.finish(OrderStatus.CANCELLED, now)
        state.add_order(order)
        return order

    def _cancel(self, account: Account, order_id: str) -> OrderState:
        order = self._order(account, order_id)
        if order.status.is_final:
            raise ApiError(ErrorCode.ORDER_NOT_CANCELLABLE,
                           f"Order {order_id} is {order.status} and cannot be cancelled")
        with account.state.changing(order):
            order.finish(OrderStatus.CANCELLED, self._clock.now())
        return order

    def _update_position(self, account: Account, symbol: str, target: int,
                         events: list[TradingEvent]) -> PositionUpdateResult:
        """The MARKET order (DAY, MANUAL) that moves the position to ``target``; none when it is already there."""
        self._require_symbol(symbol)
        if target < 0:
            raise ApiError(ErrorCode.INVALID_REQUEST, "target_quantity must be >= 0", field="target_quantity")
        self._require_open(symbol, self._clock.now())
        state = account.state
        previous = state.held(symbol)
        if target == previous:
            return PositionUpdateResult(symbol=symbol, previous_quantity=previous, quantity=previous, order=None)
        side = OrderSide.BUY if target > previous else OrderSide.SELL
        request = OrderRequest(symbol=symbol, type=OrderType.MARKET, side=side, quantity=abs(target - previous))
        order = self._place(account, request, events, quantity_field="target_quantity")
        return PositionUpdateResult(symbol=symbol, previous_quantity=previous, quantity=account.state.held(symbol),
                                    order=order.view())

    def _evaluate(self, account: Account, order: OrderState, quote: Quote, at: datetime,
                  events: list[TradingEvent], *, all_or_none: bool = False) -> None:
        """Trade ``order`` (out of the working set: new, or inside ``changing``) against one quote: trigger stops,
        fill what crosses and what cash or shares cover."""
        if order.is_stop and not order.triggered:
            if not stop_crossed(order, quote):
                return
            order.triggered = True
            order.updated_at = at
        found = execution(order, quote)
        if found is None:
            return
        state = account.state
        quantity = min(found.quantity, affordable(state, order, found.price))
        if all_or_none and quantity < order.remaining:
            return
        if quantity > 0:
            record_fill(state, account.id, order, quantity, found.price, at, events)
        if quantity < found.quantity:
            short = "buying power" if order.side is OrderSide.BUY else "shares"
            order.finish(OrderStatus.REJECTED, at,
                         f"Insufficient {short} for the remaining {order.remaining} shares at {found.price}")

    def _reconcile_locked(self, account: Account, events: list[TradingEvent]) -> None:
        """Replay the steps since the account's resting orders were last evaluated, oldest step first and, within
        a step, oldest order first, so competing orders meet cash in a deterministic order. Each step visits only
        the orders it crosses or expires (the book's ``due``): evaluating any other would change nothing."""
        state = account.state
        oldest = state.book.oldest_step()
        if oldest is None:
            return
        now = self._clock.now()
        current = self._simulator.step_index(now)
        if oldest < current:
            for step, instant in catch_up(self._simulator, self._mode, oldest + 1, now, self._max_steps):
                def quote(symbol: str, instant: datetime = instant) -> Quote:
                    return self._simulator.quote(symbol, instant)

                for order in state.book.due(step, instant, quote):
                    with state.changing(order):
                        if order.expires_at is not None and instant >= order.expires_at:
                            order.finish(OrderStatus.EXPIRED, order.expires_at)
                        else:
                            self._evaluate(account, order, quote(order.symbol), instant, events)
        for order in state.book.expired(now):
            with state.changing(order):
                assert order.expires_at is not None
                order.finish(OrderStatus.EXPIRED, order.expires_at)
                order.last_step = max(order.last_step, current)
        state.book.advance(current)

    # -- internals: helpers -------------------------------------------------------------------------------------

    def _run(self, subject: str, action: Callable[[Account, list[TradingEvent]], T], *,
             account: Account | None = None) -> T:
        """Run ``action`` under the account's lock after catching the account up; deliver events after unlocking."""
        target = account if account is not None else self._account(subject)
        events: list[TradingEvent] = []
        try:
            with target.lock:
                try:
                    self._reconcile_locked(target, events)
                    return action(target, events)
                finally:
                    self._write_changes(target)
        finally:
            self._emit(events)

    def _write_changes(self, account: Account, *, always: bool = False) -> None:
        """Write the orders the call placed or changed, with the account, through to the store (the caller holds
        the account's lock). A refused order, or a read that filled nothing, writes nothing."""
        changed = account.state.take_changes()
        if self._store is not None and (changed or always):
            self._save(account, changed, replace=False)

    def _save(self, account: Account, orders: Sequence[OrderState], *, replace: bool) -> None:
        assert self._store is not None
        self._store.save_account(account.subject, account.created_at, account.state,
                                 tuple(account.state.orders) if replace else orders, replace=replace)

    def listen(self, on_event: Callable[[TradingEvent], None]) -> None:
        """Send every trading event to `on_event` from now on, in place of the constructor's: for the composition
        root, whose listener needs a service built after the engine (the alert watcher reads its positions)."""
        self._on_event = on_event

    def _emit(self, events: list[TradingEvent]) -> None:
        if self._on_event is None:
            return
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                # The trade already happened; a failing listener must not turn it into an error for the caller.
                self._log.exception("trading event listener failed for %r", event)

    def _account(self, subject: str) -> Account:
        with self._registry:
            account = self._accounts.get(subject)
            if account is None:
                account = Account(subject, AccountState.fresh(self._starting_cash), self._clock.now())
                self._accounts[subject] = account
                if self._store is not None:  # nobody else can see it before the registry lock is released
                    self._save(account, (), replace=True)
            return account

    def _existing(self, subject: str) -> Account | None:
        with self._registry:
            return self._accounts.get(subject)

    def _all_accounts(self) -> list[Account]:
        with self._registry:
            return list(self._accounts.values())

    def _order(self, account: Account, order_id: str) -> OrderState:
        order = account.state.orders.get(order_id)
        if order is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No order {order_id}")
        return order

    def _require_symbol(self, symbol: str) -> None:
        if symbol not in self._simulator.universe:
            raise ApiError(ErrorCode.INVALID_SYMBOL, f"Unknown symbol {symbol}", field="symbol")

    def _require_open(self, symbol: str, now: datetime) -> MarketStatus:
        if magic.is_halted(symbol):
            raise ApiError(ErrorCode.MARKET_CLOSED, f"{symbol} is halted")
        status = market_status(self._mode, now)
        if not status.is_open:
            reopens = f"; it opens at {rfc3339(status.next_open)}" if status.next_open is not None else ""
            raise ApiError(ErrorCode.MARKET_CLOSED, f"The market is closed{reopens}")
        return status

    def _account_view(self, account: Account) -> AccountView:
        now = self._clock.now()
        value = sum((self._simulator.quote(symbol, now).bid * position.quantity
                     for symbol, position in account.state.positions.items()), ZERO)
        return account.view(value)

    def _position_view(self, account: Account, symbol: str, now: datetime) -> PositionView:
        state = account.state
        bid = self._simulator.quote(symbol, now).bid
        return state.positions[symbol].view(bid, state.available_shares(symbol))


def _reserve_price(request: OrderRequest, quote: Quote) -> Decimal:
    """Per-share cash a buy holds back while it works (see TradingEngine)."""
    if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and request.limit_price is not None:
        return request.limit_price
    if request.type is OrderType.STOP and request.stop_price is not None:
        return request.stop_price
    return quote.ask


def _check_shape(request: OrderRequest) -> None:
    """What the schema already guarantees for HTTP callers, checked again for direct callers of the engine."""
    if request.quantity < 1:
        raise ApiError(ErrorCode.INVALID_REQUEST, "quantity must be at least 1", field="quantity")
    needs_limit = request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = request.type in (OrderType.STOP, OrderType.STOP_LIMIT)
    for name, value, needed in (("price", request.limit_price, needs_limit),
                                ("stop_price", request.stop_price, needs_stop)):
        if needed and value is None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"{name} is required for {request.type} orders", field=name)
        if not needed and value is not None:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"{name} is not allowed for {request.type} orders", field=name)
        if value is not None and value <= 0:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"{name} must be positive", field=name)

