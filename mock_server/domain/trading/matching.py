"""Whether an order trades against one quote, and how much at what price (cash is the ledger's concern).

Buys take the ask and sells hit the bid. Market-like orders (MARKET, a triggered STOP) take their whole remainder
at once; limit-like orders (LIMIT, a triggered STOP_LIMIT) take at most the displayed size of one step, so a big
order fills in parts across steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.models import OrderSide
from mock_server.domain.trading.state import OrderState


@dataclass(frozen=True, slots=True)
class Execution:
    quantity: int
    price: Decimal


def stop_crossed(order: OrderState, quote: Quote) -> bool:
    """A buy stop triggers when the ask reaches the stop, a sell stop when the bid falls to it."""
    if order.stop_price is None:
        return True
    if order.side is OrderSide.BUY:
        return quote.ask >= order.stop_price
    return quote.bid <= order.stop_price


def execution(order: OrderState, quote: Quote) -> Execution | None:
    """What a working (and, for stops, triggered) order could take from ``quote``; None when it does not cross."""
    if order.is_stop and not order.triggered:
        return None
    buying = order.side is OrderSide.BUY
    price = quote.ask if buying else quote.bid
    if order.acts_as_market:
        return Execution(order.remaining, price)
    limit = order.limit_price
    if limit is None or (price > limit if buying else price < limit):
        return None
    size = quote.ask_size if buying else quote.bid_size
    quantity = min(order.remaining, size)
    return Execution(quantity, price) if quantity > 0 else None
