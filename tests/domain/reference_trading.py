"""A brute-force reference of the trading engine's fill rules, for differential tests (not a test module).

It keeps the rules of ``TradingEngine``'s docstring in their plainest form: every call scans every working order
of the account for every simulator step since that order was last evaluated (its own ``last_step``), oldest step
first and, within a step, oldest order first; reservations are sums over the working orders; an atomic batch
deep-copies the account and puts the copy back on failure. The engine gets the same answers from its indexes
(the order book, running totals, a savepoint); a differential test runs both on the same random flow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.market.hours import MarketMode, market_status
from mock_server.domain.market.simulator import MarketSimulator, Quote
from mock_server.domain.trading import magic
from mock_server.domain.trading.models import OrderRequest, OrderSide, OrderStatus, OrderType, TimeInForce
from mock_server.domain.trading.timeline import catch_up

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


@dataclass
class Order:
    id: str
    request: OrderRequest
    created_at: datetime
    reserve_price: Decimal
    last_step: int
    expires_at: datetime | None
    status: OrderStatus = OrderStatus.OPEN
    fills: list[tuple[int, Decimal, datetime]] = field(default_factory=list)
    triggered: bool = False
    pinned: bool = False
    reject_reason: str | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None

    @property
    def filled(self) -> int:
        return sum(quantity for quantity, _, _ in self.fills)

    @property
    def remaining(self) -> int:
        return self.request.quantity - self.filled

    @property
    def working(self) -> bool:
        return not self.status.is_final

    def finish(self, status: OrderStatus, at: datetime, reason: str | None = None) -> None:
        self.status = status
        self.updated_at = at
        if status is OrderStatus.CANCELLED:
            self.cancelled_at = at
        elif status is OrderStatus.EXPIRED:
            self.expired_at = at
        if reason is not None:
            self.reject_reason = reason


@dataclass
class Account:
    cash: Decimal
    realized_pl: Decimal = ZERO
    orders: list[Order] = field(default_factory=list)
    positions: dict[str, list[Decimal]] = field(default_factory=dict)  # symbol -> [quantity, cost]

    def working(self) -> list[Order]:
        return [order for order in self.orders if order.working]

    def reserved_cash(self, *, besides: Order | None = None) -> Decimal:
        return sum((order.reserve_price * order.remaining for order in self.working()
                    if order.request.side is OrderSide.BUY and order is not besides), ZERO)

    def held(self, symbol: str) -> int:
        return int(self.positions[symbol][0]) if symbol in self.positions else 0

    def reserved_shares(self, symbol: str) -> int:
        return sum(order.remaining for order in self.working()
                   if order.request.side is OrderSide.SELL and order.request.symbol == symbol)


class Reference:
    """The engine's rules by brute force. ``place`` takes the id the engine gave the same order."""

    def __init__(self, simulator: MarketSimulator, clock: Clock, *, mode: MarketMode, cash: Decimal,
                 max_steps: int) -> None:
        self.simulator = simulator
        self.clock = clock
        self.mode = mode
        self.cash = cash
        self.max_steps = max_steps
        self.accounts: dict[str, Account] = {}

    # -- calls -----------------------------------------------------------------------------------------------

    def account(self, subject: str) -> Account:
        account = self.accounts.setdefault(subject, Account(self.cash))
        self.reconcile(account)
        return account

    def reconcile_all(self) -> None:
        for account in self.accounts.values():
            self.reconcile(account)

    def set_mode(self, mode: MarketMode) -> None:
        self.reconcile_all()
        self.mode = mode
        close = market_status(mode, self.clock.now()).next_close if mode is MarketMode.NYSE else None
        for account in self.accounts.values():
            for order in account.working():
                if order.request.time_in_force is TimeInForce.DAY and not order.pinned:
                    order.expires_at = (order.expires_at or close) if close is not None else None

    def place(self, subject: str, request: OrderRequest, order_id: str) -> Order:
        account = self.account(subject)
        return self._place(account, request, order_id)

    def cancel(self, subject: str, order_id: str) -> Order:
        account = self.account(subject)
        return self._cancel(account, order_id)

    def update_position(self, subject: str, symbol: str, target: int, order_id: str | None) -> Order | None:
        account = self.account(subject)
        return self._update_position(account, symbol, target, order_id)

    def atomic_batch(self, subject: str, steps: list[tuple[str, object, str | None]]) -> int | None:
        """``steps``: ("place", request, id) | ("cancel", order_id, None) | ("position", (symbol, target), id).
        Returns the index of the failed step (everything undone), or None."""
        account = self.account(subject)
        snapshot = copy.deepcopy(account)
        for index, (action, data, order_id) in enumerate(steps):
            try:
                if action == "place":
                    assert isinstance(data, OrderRequest) and order_id is not None
                    self._place(account, data, order_id)
                elif action == "cancel":
                    assert isinstance(data, str)
                    self._cancel(account, data)
                else:
                    symbol, target = data  # type: ignore[misc]
                    self._update_position(account, symbol, target, order_id)
            except ApiError:
                self.accounts[subject] = snapshot
                return index
        return None

    # -- rules -----------------------------------------------------------------------------------------------

    def _place(self, account: Account, request: OrderRequest, order_id: str | None) -> Order:
        now = self.clock.now()
        if magic.is_halted(request.symbol) or not market_status(self.mode, now).is_open:
            raise ApiError(ErrorCode.MARKET_CLOSED, "closed")
        quote = self.simulator.quote(request.symbol, now)
        reserve = ZERO
        if request.side is OrderSide.BUY:
            if request.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                reserve = request.limit_price or ZERO
            elif request.type is OrderType.STOP:
                reserve = request.stop_price or ZERO
            else:
                reserve = quote.ask
            check = max(quote.ask, reserve) if request.type is OrderType.STOP else reserve
            if check * request.quantity > account.cash - account.reserved_cash():
                raise ApiError(ErrorCode.INSUFFICIENT_FUNDS, "funds")
        elif request.quantity > account.held(request.symbol) - account.reserved_shares(request.symbol):
            raise ApiError(ErrorCode.INSUFFICIENT_POSITION, "shares")
        assert order_id is not None, "the reference accepts an order the engine refused"
        expires = None
        if request.time_in_force is TimeInForce.DAY and self.mode is MarketMode.NYSE:
            expires = market_status(self.mode, now).next_close
        order = Order(order_id, request, now, reserve, self.simulator.step_index(now), expires)
        account.orders.append(order)
        if magic.is_rejected(request.symbol):
            order.finish(OrderStatus.REJECTED, now, magic.REJECT_REASON)
        elif magic.is_partial(request.symbol):
            order.pinned = True
            quantity = magic.partial_quantity(request.quantity)
            if quantity:
                self._fill(account, order, quantity, quote.ask if request.side is OrderSide.BUY else quote.bid, now)
        else:
            self._evaluate(account, order, quote, now, all_or_none=request.time_in_force is TimeInForce.FOK)
            if request.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) and order.working:
                order.finish(OrderStatus.CANCELLED, now)
        return order

    def _cancel(self, account: Account, order_id: str) -> Order:
        order = next((order for order in account.orders if order.id == order_id), None)
        if order is None:
            raise ApiError(ErrorCode.NOT_FOUND, "no such order")
        if not order.working:
            raise ApiError(ErrorCode.ORDER_NOT_CANCELLABLE, "final")
        order.finish(OrderStatus.CANCELLED, self.clock.now())
        return order

    def _update_position(self, account: Account, symbol: str, target: int, order_id: str | None) -> Order | None:
        now = self.clock.now()
        if magic.is_halted(symbol) or not market_status(self.mode, now).is_open:
            raise ApiError(ErrorCode.MARKET_CLOSED, "closed")
        held = account.held(symbol)
        if target == held:
            return None
        side = OrderSide.BUY if target > held else OrderSide.SELL
        request = OrderRequest(symbol=symbol, type=OrderType.MARKET, side=side, quantity=abs(target - held))
        return self._place(account, request, order_id)

    def _evaluate(self, account: Account, order: Order, quote: Quote, at: datetime, *,
                  all_or_none: bool = False) -> None:
        request = order.request
        buying = request.side is OrderSide.BUY
        if request.type in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
            assert request.stop_price is not None
            if not (quote.ask >= request.stop_price if buying else quote.bid <= request.stop_price):
                return
            order.triggered = True
            order.updated_at = at
        price = quote.ask if buying else quote.bid
        if request.type is OrderType.MARKET or request.type is OrderType.STOP:
            found = order.remaining
        else:
            assert request.limit_price is not None
            if price > request.limit_price if buying else price < request.limit_price:
                return
            found = min(order.remaining, quote.ask_size if buying else quote.bid_size)
            if found <= 0:
                return
        if buying:
            spendable = account.cash - account.reserved_cash(besides=order)
            affordable = 0 if spendable <= 0 else int(spendable // price)
        else:
            affordable = account.held(request.symbol)
        quantity = min(found, affordable)
        if all_or_none and quantity < order.remaining:
            return
        if quantity > 0:
            self._fill(account, order, quantity, price, at)
        if quantity < found:
            short = "buying power" if buying else "shares"
            order.finish(OrderStatus.REJECTED, at,
                         f"Insufficient {short} for the remaining {order.remaining} shares at {price}")

    def _fill(self, account: Account, order: Order, quantity: int, price: Decimal, at: datetime) -> None:
        value = price * quantity
        order.fills.append((quantity, price, at))
        order.updated_at = at
        if order.remaining == 0:
            order.status = OrderStatus.FILLED
            order.filled_at = at
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        symbol = order.request.symbol
        if order.request.side is OrderSide.BUY:
            account.cash -= value
            position = account.positions.setdefault(symbol, [Decimal(0), ZERO])
            position[0] += quantity
            position[1] += value
        else:
            position = account.positions[symbol]
            held, cost = position
            removed = cost if quantity == held else (cost * quantity / held).quantize(CENT, rounding=ROUND_HALF_UP)
            position[0] -= quantity
            position[1] -= removed
            account.cash += value
            account.realized_pl += value - removed
            if position[0] == 0:
                del account.positions[symbol]

    def reconcile(self, account: Account) -> None:
        """The per-order scan: every working order, every step since its own last evaluation."""
        working = [order for order in account.working() if not order.pinned]
        if not working:
            return
        now = self.clock.now()
        current = self.simulator.step_index(now)
        first = min(order.last_step for order in working) + 1
        if first <= current:
            for step, instant in catch_up(self.simulator, self.mode, first, now, self.max_steps):
                for order in working:
                    if not order.working or order.last_step >= step:
                        continue
                    order.last_step = step
                    if order.expires_at is not None and instant >= order.expires_at:
                        order.finish(OrderStatus.EXPIRED, order.expires_at)
                        continue
                    self._evaluate(account, order, self.simulator.quote(order.request.symbol, instant), instant)
        for order in working:
            if not order.working:
                continue
            if order.expires_at is not None and order.expires_at <= now:
                order.finish(OrderStatus.EXPIRED, order.expires_at)
            order.last_step = max(order.last_step, current)
