"""Hypothesis strategies built from the spec's schemas (enums, bounds) with Faker for realistic values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faker import Faker
from hypothesis import strategies as st

from mock_server.spec.document import SpecDocument

# Liquid, well-known tickers every Tradefence environment lists.
SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "JPM", "KO", "XOM", "SPY")


def _schema(document: SpecDocument, name: str) -> dict[str, Any]:
    return document.raw["components"]["schemas"][name]


def client_order_ids(seed: int = 0) -> st.SearchStrategy[str]:
    """Realistic client ids (`acme-7f3a...`), matching the spec's pattern and never the `nsf-` magic prefix."""
    faker = Faker()
    faker.seed_instance(seed)
    return st.builds(lambda word, n: f"{word}-{n:06d}", st.sampled_from([faker.slug()[:20] or "order" for _ in
                                                                            range(20)]).filter(
        lambda w: not w.startswith("nsf")), st.integers(0, 999_999))


def order_requests(document: SpecDocument, *, types: tuple[str, ...] | None = None, max_quantity: int = 20,
                   symbols: tuple[str, ...] = SYMBOLS,
                   client_order_id: Callable[[], str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Valid OrderRequest bodies: enums from the spec, prices far enough from the market to rest. On a contract run,
    `symbols` are the run's own and `client_order_id` tags each order with the run's prefix. Buys only: a sell needs
    shares the run owns, which the account model (contracts/pricing.py, contracts/account_trader.py) tracks."""
    order_types = types or tuple(_schema(document, "OrderType")["enum"])
    tifs = ("DAY", "GTC")
    strategies = tuple(_schema(document, "Strategy")["enum"])

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        kind = draw(st.sampled_from(order_types))
        body: dict[str, Any] = {"symbol": draw(st.sampled_from(symbols)), "type": kind,
                                "side": "BUY",
                                "quantity": draw(st.integers(1, max_quantity))}
        if kind in ("LIMIT", "STOP_LIMIT"):
            body["price"] = draw(st.decimals("1.00", "5.00", places=2).map(float))  # far below market: rests
        if kind in ("STOP", "STOP_LIMIT"):
            body["stop_price"] = draw(st.decimals("2000.00", "3000.00", places=2).map(float))  # never triggers
        if draw(st.booleans()):
            body["time_in_force"] = draw(st.sampled_from(tifs))
        if draw(st.booleans()):
            body["strategy"] = draw(st.sampled_from(strategies))
        if client_order_id is not None:
            body["client_order_id"] = client_order_id()
        elif draw(st.booleans()):
            body["client_order_id"] = draw(client_order_ids())
        return body

    return build()
