"""Magic values that force an outcome from any client, like test card numbers (createOrder in openapi.yaml).

The symbols are not in tickers.csv: the app factory adds ``magic_instruments()`` to the universe before it builds
the simulator, so they quote and chart like any other ticker.
"""

from __future__ import annotations

from decimal import Decimal

from mock_server.domain.market.universe import Instrument

HALTED_SYMBOL = "HALT"
REJECTED_SYMBOL = "REJECT"
PARTIAL_SYMBOL = "PARTL"
NSF_PREFIX = "nsf-"
REJECT_REASON = "Rejected: REJECT is the test symbol whose orders are always rejected"


def magic_instruments() -> tuple[Instrument, ...]:
    return (
        Instrument(HALTED_SYMBOL, "Tradefence Test Halted Inc", "NYSE", "Test", Decimal("50.00"), 0.3),
        Instrument(REJECTED_SYMBOL, "Tradefence Test Rejected Inc", "NYSE", "Test", Decimal("25.00"), 0.3),
        Instrument(PARTIAL_SYMBOL, "Tradefence Test Partial Inc", "NYSE", "Test", Decimal("40.00"), 0.3),
    )


def is_halted(symbol: str) -> bool:
    """HALT refuses every order with 1003, open market or not."""
    return symbol == HALTED_SYMBOL


def is_rejected(symbol: str) -> bool:
    """REJECT orders pass every check, are accepted, and end REJECTED at once."""
    return symbol == REJECTED_SYMBOL


def is_partial(symbol: str) -> bool:
    """PARTL orders fill ``partial_quantity`` at once and then never trade again (cancel still works)."""
    return symbol == PARTIAL_SYMBOL


def partial_quantity(quantity: int) -> int:
    """Half, rounded down: 1 share fills nothing and the order stays OPEN."""
    return quantity // 2


def forces_insufficient_funds(client_order_id: str | None) -> bool:
    return client_order_id is not None and client_order_id.startswith(NSF_PREFIX)
