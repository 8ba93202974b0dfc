"""Order bodies priced from the target's own quotes, so the same plan rests or trades on a live market too.

A `Plan` is what Hypothesis draws: nothing in it depends on what the target answers, so a replayed example draws
the same plan whatever the market did since. The body is built from the plan and a fresh quote at the moment the
order is placed: a resting order is priced `depth` away from the market (it will not trade during a run), a
crossing one a little through it (it trades at once, or within a step).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from hypothesis import strategies as st

CROSS = Decimal("0.02")  # how far through the quote a crossing price goes: a step's move rarely undoes it
CENT = Decimal("0.01")
ORDER_TYPES = ("MARKET", "LIMIT", "STOP", "STOP_LIMIT")
TIMES_IN_FORCE = ("DAY", "GTC", "IOC", "FOK")


@dataclass(frozen=True)
class Plan:
    symbol: str
    side: str
    type: str
    time_in_force: str
    quantity: int
    crossing: bool  # priced to trade now, or to rest away from the market
    depth: Decimal  # how far from the quote a resting price sits, as a fraction of it
    idempotent: bool  # sent with an Idempotency-Key, and replayed


def plans(symbols: tuple[str, ...], *, max_quantity: int = 3) -> st.SearchStrategy[Plan]:
    return st.builds(Plan, symbol=st.sampled_from(symbols), side=st.sampled_from(("BUY", "SELL")),
                     type=st.sampled_from(ORDER_TYPES), time_in_force=st.sampled_from(TIMES_IN_FORCE),
                     quantity=st.integers(1, max_quantity), crossing=st.booleans(),
                     depth=st.sampled_from((Decimal("0.2"), Decimal("0.35"), Decimal("0.5"))),
                     idempotent=st.booleans())


def resting_buys(symbols: tuple[str, ...]) -> tuple[Plan, ...]:
    """One buy of each conditional kind, priced to rest: what every example of the account model starts with.
    The first is sent with an Idempotency-Key, and replayed."""
    kinds = (("LIMIT", "DAY"), ("STOP", "GTC"), ("STOP_LIMIT", "DAY"))
    return tuple(Plan(symbol=symbols[n % len(symbols)], side="BUY", type=kind, time_in_force=time_in_force,
                      quantity=1, crossing=False, depth=Decimal("0.2"), idempotent=n == 0)
                 for n, (kind, time_in_force) in enumerate(kinds))


def price(value: Decimal) -> float:
    """A price as the spec has it: dollars to the cent, at least a cent."""
    return float(max(value.quantize(CENT, rounding=ROUND_HALF_EVEN), CENT))


def body(plan: Plan, quote: dict[str, Any], quantity: int, client_order_id: str) -> dict[str, Any]:
    """The OrderRequest for `plan`, priced from `quote` (bid and ask of the plan's symbol)."""
    bid, ask = Decimal(str(quote["bid"])), Decimal(str(quote["ask"]))
    buy = plan.side == "BUY"
    order: dict[str, Any] = {"symbol": plan.symbol, "type": plan.type, "side": plan.side, "quantity": quantity,
                             "time_in_force": plan.time_in_force, "client_order_id": client_order_id}
    if plan.type in ("STOP", "STOP_LIMIT"):
        # A buy stop triggers when the ask reaches it, a sell stop when the bid falls to it.
        if plan.crossing:
            order["stop_price"] = price(ask * (1 - CROSS) if buy else bid * (1 + CROSS))
        else:
            order["stop_price"] = price(ask * (1 + plan.depth) if buy else bid * (1 - plan.depth))
    if plan.type in ("LIMIT", "STOP_LIMIT"):
        if plan.crossing:
            order["price"] = price(ask * (1 + CROSS) if buy else bid * (1 - CROSS))
        elif plan.type == "STOP_LIMIT":  # once triggered, the limit would still trade
            order["price"] = price(Decimal(str(order["stop_price"])) * (1 + CROSS if buy else 1 - CROSS))
        else:
            order["price"] = price(bid * (1 - plan.depth) if buy else ask * (1 + plan.depth))
    return order


def buy_commitment(order: dict[str, Any], quote: dict[str, Any]) -> Decimal:
    """The most a buy may cost or hold back: its quantity at the highest price it names or the ask."""
    prices = [Decimal(str(quote["ask"]))] + [Decimal(str(order[k])) for k in ("price", "stop_price") if k in order]
    return max(prices) * (1 + CROSS) * int(order["quantity"])
