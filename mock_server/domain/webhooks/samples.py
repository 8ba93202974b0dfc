"""Realistic made-up subjects for events forced from the control plane (`stripe trigger`, for Tradefence).

A sample order, closed position or alert is built from what the caller chose (any part of it, or nothing) and
derives everything else from those choices, so the event never contradicts itself: an order of 5 shares is
filled 5, in fills that add up to 5, at an average that is theirs; a position's realized P/L is its prices'.
Choices that cannot hold together (fills that do not add up, a limit buy filled above its limit, an order filled
before it was created, a loss alert whose loss is under its threshold) are refused naming the field. Prices come
from the simulator at the relevant instant. A sample belongs to no account: it exists only inside the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.models import (
    ClosedPosition,
    Fill,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderView,
    Strategy,
    TimeInForce,
    cents,
    four_places,
)
from mock_server.domain.webhooks.alerts import Alert, AlertKind, loss_message, move_message

DEFAULT_SYMBOL = "AAPL"
QUANTITY = 10
HOLDING = timedelta(hours=1)
LOSS_THRESHOLD = Decimal(5)  # a sample alert's thresholds when the caller names none (the emulator's defaults)
MOVE_THRESHOLD = Decimal(3)
BEYOND = Decimal("0.5")  # how far past its threshold a sample alert's observed value lies when not chosen

QuoteAt = Callable[[str, datetime], Quote]  # raises KeyError for an unknown symbol


@dataclass(frozen=True)
class OrderChoices:
    """What a caller may choose of a sample filled order; None leaves it to the sample."""

    order_id: str | None = None
    client_order_id: str | None = None
    symbol: str | None = None
    type: OrderType | None = None
    side: OrderSide | None = None
    quantity: int | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    strategy: Strategy | None = None
    fills: tuple[Fill, ...] | None = None
    fill_price: Decimal | None = None  # the price of the one fill (an average_fill_price chosen without fills)
    created_at: datetime | None = None
    filled_at: datetime | None = None


@dataclass(frozen=True)
class PositionChoices:
    symbol: str | None = None
    quantity_closed: int | None = None
    average_entry_price: Decimal | None = None
    exit_price: Decimal | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class AlertChoices:
    alert_id: str | None = None
    kind: AlertKind | None = None
    symbol: str | None = None
    message: str | None = None
    threshold_percent: Decimal | None = None
    observed_percent: Decimal | None = None


class Samples:
    def __init__(self, quote: QuoteAt, clock: Clock, ids: IdGenerator) -> None:
        self._quote_at = quote
        self._clock = clock
        self._ids = ids

    def _quote(self, symbol: str, at: datetime) -> Quote:
        try:
            return self._quote_at(symbol, at)
        except KeyError:
            raise ApiError(ErrorCode.INVALID_SYMBOL, f"Unknown symbol {symbol}", field="symbol") from None

    def order(self, choices: OrderChoices | None = None) -> OrderView:
        """A filled order: by default a MARKET buy of 10 shares filled at once at the current ask."""
        c = choices or OrderChoices()
        symbol = c.symbol or DEFAULT_SYMBOL
        side = c.side or OrderSide.BUY
        kind = c.type or _order_type(c.limit_price, c.stop_price)
        fills = c.fills
        if fills is not None:
            quantity = c.quantity if c.quantity is not None else sum(fill.quantity for fill in fills)
            if sum(fill.quantity for fill in fills) != quantity:
                raise _refused("fills", f"the fills add up to {sum(f.quantity for f in fills)} shares, "
                                        f"not the order's {quantity}")
        else:
            quantity = c.quantity or QUANTITY
            at = c.filled_at or self._clock.now()
            quote = self._quote(symbol, at)
            price = c.fill_price or (quote.ask if side is OrderSide.BUY else quote.bid)
            if c.fill_price is None and c.limit_price is not None:  # a limit order fills at its limit or better
                price = min(price, c.limit_price) if side is OrderSide.BUY else max(price, c.limit_price)
            fills = (Fill(quantity, price, at),)
        limit = _price_for(kind, c.limit_price, fills[0].price, "price", (OrderType.LIMIT, OrderType.STOP_LIMIT))
        stop = _price_for(kind, c.stop_price, fills[0].price, "stop_price", (OrderType.STOP, OrderType.STOP_LIMIT))
        if limit is not None:
            beyond = [f for f in fills if (f.price > limit if side is OrderSide.BUY else f.price < limit)]
            if beyond:
                raise _refused("fills", f"a {side} limit at {limit} cannot fill at {beyond[0].price}")
        filled_at = max(fill.timestamp for fill in fills)
        created_at = c.created_at or min(fill.timestamp for fill in fills)
        if created_at > min(fill.timestamp for fill in fills):
            raise _refused("created_at", "the order was created after it filled")
        total = sum((fill.price * fill.quantity for fill in fills), Decimal(0))
        return OrderView(
            id=c.order_id or self._ids.new("ord"), client_order_id=c.client_order_id, symbol=symbol, type=kind,
            side=side, quantity=quantity, limit_price=limit, stop_price=stop,
            time_in_force=c.time_in_force or TimeInForce.DAY, strategy=c.strategy or Strategy.MANUAL,
            status=OrderStatus.FILLED, filled_quantity=quantity, remaining_quantity=0,
            average_fill_price=four_places(total / quantity), fills=fills, reject_reason=None,
            created_at=created_at, updated_at=filled_at, filled_at=filled_at, cancelled_at=None, expired_at=None,
        )

    def closed_position(self, choices: PositionChoices | None = None) -> ClosedPosition:
        """By default 10 shares bought at the ask an hour ago and sold at the bid now."""
        c = choices or PositionChoices()
        symbol = c.symbol or DEFAULT_SYMBOL
        closed_at = c.closed_at or (c.opened_at + HOLDING if c.opened_at else self._clock.now())
        opened_at = c.opened_at or closed_at - HOLDING
        if opened_at > closed_at:
            raise _refused("opened_at", "the position was opened after it closed")
        entry = c.average_entry_price or four_places(self._quote(symbol, opened_at).ask)
        exit_price = c.exit_price or four_places(self._quote(symbol, closed_at).bid)
        quantity = c.quantity_closed or QUANTITY
        return ClosedPosition(symbol=symbol, quantity_closed=quantity, average_entry_price=entry,
                              exit_price=exit_price, realized_pl=cents((exit_price - entry) * quantity),
                              opened_at=opened_at, closed_at=closed_at)

    def alert(self, choices: AlertChoices | None = None) -> Alert:
        """By default a ``MANUAL`` alert: no threshold, nothing observed. A ``POSITION_LOSS`` or ``PRICE_MOVE``
        alert has a symbol, a threshold and an observed value past it, and says so in its message."""
        c = choices or AlertChoices()
        kind = c.kind or AlertKind.MANUAL
        alert_id = c.alert_id or self._ids.new("alt")
        if kind is AlertKind.MANUAL:
            for name, value in (("threshold_percent", c.threshold_percent), ("observed_percent", c.observed_percent)):
                if value is not None:
                    raise _refused(name, "a MANUAL alert has no threshold and observes nothing")
            subject = f" for {c.symbol}" if c.symbol else ""
            message = c.message or f"Alert{subject} triggered from the emulator's control plane"
            return Alert(alert_id, kind, c.symbol, message, None, None)
        symbol = c.symbol or DEFAULT_SYMBOL
        self._quote(symbol, self._clock.now())  # a watched condition is about a symbol that exists
        if kind is AlertKind.POSITION_LOSS:
            threshold = c.threshold_percent if c.threshold_percent is not None else LOSS_THRESHOLD
            observed = c.observed_percent if c.observed_percent is not None else -(threshold + BEYOND)
            if -observed < threshold:
                raise _refused("observed_percent", f"a loss of {-observed}% is under the {threshold}% threshold")
            return Alert(alert_id, kind, symbol, c.message or loss_message(symbol, observed), threshold, observed)
        threshold = c.threshold_percent if c.threshold_percent is not None else MOVE_THRESHOLD
        observed = c.observed_percent if c.observed_percent is not None else threshold + BEYOND
        if abs(observed) < threshold:
            raise _refused("observed_percent", f"a move of {observed}% is under the {threshold}% threshold")
        return Alert(alert_id, kind, symbol, c.message or move_message(symbol, observed), threshold, observed)


def _order_type(limit: Decimal | None, stop: Decimal | None) -> OrderType:
    """The order type the chosen prices imply."""
    if limit is not None:
        return OrderType.STOP_LIMIT if stop is not None else OrderType.LIMIT
    return OrderType.STOP if stop is not None else OrderType.MARKET


def _price_for(kind: OrderType, chosen: Decimal | None, fill_price: Decimal, field: str,
               kinds: tuple[OrderType, ...]) -> Decimal | None:
    """A limit or stop price: the chosen one (or the fill's) for the order types that have one, else none."""
    if kind not in kinds:
        if chosen is not None:
            raise _refused(field, f"a {kind} order has no {field.replace('_', ' ')}")
        return None
    return chosen if chosen is not None else fill_price


def _refused(field: str, reason: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, f"{field}: {reason}", field=field)
