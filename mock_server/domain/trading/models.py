"""What the trading engine takes and hands out: enums, order requests, immutable snapshots and events.

Everything here is frozen so a caller (the web layer, a webhook queue) can keep a value without racing the engine;
the engine's mutable records live in ``state.py`` and are never handed out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

CENT = Decimal("0.01")
BASIS = Decimal("0.0001")


def cents(value: Decimal) -> Decimal:
    """Money and prices are shown to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def four_places(value: Decimal) -> Decimal:
    """Average prices are shown to four places (the spec's ``150.4975``)."""
    return value.quantize(BASIS, rounding=ROUND_HALF_UP)


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_final(self) -> bool:
        """Final orders never change again and hold no cash or shares back."""
        return self not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class Strategy(StrEnum):
    OPTION_SELLING = "OPTION_SELLING"
    MOMENTUM = "MOMENTUM"
    MEAN_REVERSION = "MEAN_REVERSION"
    PAIRS_TRADING = "PAIRS_TRADING"
    DIVIDEND_CAPTURE = "DIVIDEND_CAPTURE"
    MANUAL = "MANUAL"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order as the client asked for it; ``limit_price`` is the API's ``price``."""

    symbol: str
    type: OrderType
    side: OrderSide
    quantity: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    strategy: Strategy = Strategy.MANUAL
    client_order_id: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> OrderRequest:
        """Build from a schema-valid JSON body; numbers go through ``str`` so 150.1 stays 150.10, not a binary float."""
        client_order_id = payload.get("client_order_id")
        return cls(
            symbol=str(payload["symbol"]),
            type=OrderType(payload["type"]),
            side=OrderSide(payload["side"]),
            quantity=int(payload["quantity"]),
            limit_price=_money(payload.get("price")),
            stop_price=_money(payload.get("stop_price")),
            time_in_force=TimeInForce(payload.get("time_in_force", TimeInForce.DAY)),
            strategy=Strategy(payload.get("strategy", Strategy.MANUAL)),
            client_order_id=None if client_order_id is None else str(client_order_id),
        )


def _money(value: object) -> Decimal | None:
    """A request price to the cent, half-even as the spec's ``Price`` says (10.005 -> 10.00, 10.015 -> 10.02)."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order."""

    quantity: int
    price: Decimal
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as it stood when the snapshot was taken."""

    id: str
    client_order_id: str | None
    symbol: str
    type: OrderType
    side: OrderSide
    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    strategy: Strategy
    status: OrderStatus
    filled_quantity: int
    remaining_quantity: int
    average_fill_price: Decimal | None
    fills: tuple[Fill, ...]
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    filled_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None


@dataclass(frozen=True, slots=True)
class PositionView:
    """A long position valued at the current bid (what selling it now would fetch)."""

    symbol: str
    quantity: int
    available_quantity: int
    average_entry_price: Decimal
    cost_basis: Decimal
    market_price: Decimal
    market_value: Decimal
    unrealized_pl: Decimal
    unrealized_pl_percent: Decimal
    opened_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AccountView:
    """Balances of one account; ``equity`` is cash plus positions at the bid."""

    id: str
    subject: str
    cash: Decimal
    buying_power: Decimal
    reserved_cash: Decimal
    positions_value: Decimal
    equity: Decimal
    realized_pl: Decimal
    created_at: datetime
    currency: str = "USD"
    status: str = "ACTIVE"


@dataclass(frozen=True, slots=True)
class PositionUpdateResult:
    """The outcome of moving a position to a target; ``order`` is None when it was already there."""

    symbol: str
    previous_quantity: int
    quantity: int
    order: OrderView | None


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position's whole life, from the first buy to the sell that took it to zero.

    ``quantity_closed`` is every share sold while it was open; ``average_entry_price`` and ``exit_price`` are the
    average prices of all its buys and all its sells, so ``realized_pl == (exit - entry) * quantity_closed`` up to
    the rounding of the two averages.
    """

    symbol: str
    quantity_closed: int
    average_entry_price: Decimal
    exit_price: Decimal
    realized_pl: Decimal
    opened_at: datetime
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """An order reached FILLED (its last fill happened at ``at``)."""

    account_id: str
    order: OrderView
    at: datetime


@dataclass(frozen=True, slots=True)
class PositionClosed:
    """A position went to zero shares at ``at``."""

    account_id: str
    position: ClosedPosition
    at: datetime


TradingEvent = OrderFilled | PositionClosed
