"""Lists that mean what they say: walking every page of GET /v1/orders gives exactly the filtered set.

The run places its own orders first (filled, resting and cancelled; both sides; two symbols), then walks the list
for filters Hypothesis draws (`status`, `symbol`, `side` and their combinations, with small page sizes): every
listed order matches the filter, no page is longer than `limit`, no order appears twice, the list runs newest
first, `has_more` agrees with `next_cursor` (the id of the page's last order), and every one of the run's own
orders that matches the filter is listed. The walk stops once it passes the run's oldest order, so other orders
on a shared account cost it nothing and are never assumed absent.

With the market closed the run cannot place orders: the walk then checks what the account already lists (every
rule above but completeness, which needs orders whose status the run knows).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import pricing
from contracts.checking import CheckedSession, violation
from contracts.run import ContractRun
from mock_server.spec.document import SpecDocument

FINAL = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})
MAX_PAGES = 60  # a walk the run's orders cannot explain ends here


def matches(order: dict[str, Any], status: str, symbol: str | None, side: str | None) -> bool:
    """The filter as the spec defines it: `open` is not yet final, `closed` is final, and a status's own name (in
    lower case) is that status."""
    final = order["status"] in FINAL
    wanted = (status == "all" or (status == "open" and not final) or (status == "closed" and final)
              or status == order["status"].lower())
    return wanted and symbol in (None, order["symbol"]) and side in (None, order["side"])


def place(api: CheckedSession, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/orders", json=body)
    if response.status_code != 201:
        raise violation("createOrder", "an affordable order is placed", response, "expected 201")
    return response.json()


@pytest.fixture
def symbols(tradefence_trading: tuple[str, ...]) -> tuple[str, str]:
    """Two of the run's own symbols (none the account's owner holds or trades)."""
    if len(tradefence_trading) < 2:
        pytest.skip("needs two symbols the account's owner neither holds nor trades")
    return tradefence_trading[0], tradefence_trading[1]


@pytest.fixture
def own_orders(tradefence_api: CheckedSession, tradefence_run: ContractRun,
               symbols: tuple[str, str]) -> Iterator[dict[str, dict[str, Any]]]:
    """Nine orders of the run's own, by id, with their status read back; cancelled and sold back afterwards.
    Empty when the market is closed."""
    api = tradefence_api
    if not api.get("/market/clock").json()["is_open"]:
        yield {}
        return
    placed: list[dict[str, Any]] = []
    bought: dict[str, int] = dict.fromkeys(symbols, 0)
    first, second = symbols

    def order(symbol: str, side: str, kind: str, *, resting: bool = True, tif: str = "GTC") -> dict[str, Any]:
        quote = api.get(f"/market/quotes/{symbol}").json()
        plan = pricing.Plan(symbol, side, kind, tif, 1, not resting, Decimal("0.5"), False)
        made = place(api, pricing.body(plan, quote, 1, tradefence_run.ledger.next_client_order_id()))
        placed.append(made)
        if side == "BUY":
            bought[symbol] += made["filled_quantity"]
        else:
            bought[symbol] -= made["filled_quantity"]
        return made

    try:
        order(first, "BUY", "MARKET")
        order(first, "BUY", "MARKET")
        order(second, "BUY", "MARKET")
        order(first, "SELL", "LIMIT")
        order(first, "BUY", "LIMIT")
        api.delete(f"/orders/{order(second, 'BUY', 'LIMIT')['id']}")
        order(second, "SELL", "LIMIT", tif="IOC")
        order(second, "BUY", "LIMIT", tif="DAY")
        order(first, "SELL", "MARKET")
        order(second, "SELL", "LIMIT")
        yield {made["id"]: api.get(f"/orders/{made['id']}").json() for made in placed}
    finally:
        for made in placed:
            api.delete(f"/orders/{made['id']}")
        for symbol, shares in bought.items():
            if shares > 0:
                api.post("/orders", json={"symbol": symbol, "type": "MARKET", "side": "SELL", "quantity": shares,
                                          "client_order_id": tradefence_run.ledger.next_client_order_id()})


def walk(api: CheckedSession, own: dict[str, dict[str, Any]], status: str, symbol: str | None, side: str | None,
         limit: int) -> None:
    params: dict[str, Any] = {"status": status, "limit": limit}
    if symbol:
        params["symbol"] = symbol
    if side:
        params["side"] = side
    oldest_own = min(own) if own else None
    seen: set[str] = set()
    previous: str | None = None
    for _ in range(MAX_PAGES):
        response = api.get("/orders", params=params)
        if response.status_code != 200:
            raise violation("listOrders", "a valid filter is answered", response, "expected 200")
        page = response.json()
        data = page["data"]
        if len(data) > limit:
            raise violation("listOrders", "limit honoured", response, f"{len(data)} orders on a page of {limit}")
        for order in data:
            if not matches(order, status, symbol, side):
                raise violation("listOrders", "listed orders match the filter", response,
                                f"{order['id']} is {order['status']} {order['side']} {order['symbol']}")
            if order["id"] in seen:
                raise violation("listOrders", "no order listed twice", response, f"{order['id']} again")
            if previous is not None and order["id"] >= previous:
                raise violation("listOrders", "newest first", response, f"{order['id']} after {previous}")
            seen.add(order["id"])
            previous = order["id"]
        if page["has_more"] != (page["next_cursor"] is not None):
            raise violation("listOrders", "has_more agrees with next_cursor", response,
                            f"has_more {page['has_more']}, next_cursor {page['next_cursor']}")
        if page["has_more"] and (not data or page["next_cursor"] != data[-1]["id"]):
            raise violation("listOrders", "next_cursor is the page's last order", response,
                            f"next_cursor {page['next_cursor']}")
        if not page["has_more"] or (oldest_own is not None and previous is not None and previous <= oldest_own):
            break
        if oldest_own is None and len(seen) >= limit * 5:  # nothing of the run's own to reach: a few pages do
            return
        params["cursor"] = page["next_cursor"]
    else:
        raise violation("listOrders", "the walk ends", response, f"still has_more after {MAX_PAGES} pages")
    missing = sorted(i for i, order in own.items() if matches(order, status, symbol, side) and i not in seen)
    if missing:
        raise violation("listOrders", "no gap: every matching order is listed", response,
                        f"{len(missing)} of the run's orders missing from the walk: {missing[:3]}")


def status_filters(document: SpecDocument) -> list[str]:
    """The values the spec lists for listOrders' `status` parameter."""
    operation = document.raw["paths"]["/orders"]["get"]
    return next(p["schema"]["enum"] for p in operation["parameters"] if p["name"] == "status")


def test_every_walk_lists_exactly_the_filtered_set(tradefence_api: CheckedSession,
                                                   own_orders: dict[str, dict[str, Any]], symbols: tuple[str, str],
                                                   tradefence_spec_document: SpecDocument,
                                                   tradefence_examples: int) -> None:
    # A walk can only find a gap in a set that has every kind of member.
    assert not own_orders or {"OPEN", "FILLED", "CANCELLED"} <= {o["status"] for o in own_orders.values()}

    @given(status=st.sampled_from(status_filters(tradefence_spec_document)),
           symbol=st.none() | st.sampled_from(symbols), side=st.none() | st.sampled_from(("BUY", "SELL")),
           limit=st.integers(1, 4))
    @settings(max_examples=tradefence_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def filtered(status: str, symbol: str | None, side: str | None, limit: int) -> None:
        walk(tradefence_api, own_orders, status, symbol, side, limit)

    filtered()
