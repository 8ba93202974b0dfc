"""The emulator as the CLI serves it, holding a history of filled orders before it serves (the `scale` section).

`python -m benchmarks.scale_server --config FILE --subject bench --filled 1000000` builds the app as
`tradefence-mock` does, gives `subject` that many filled orders through the domain (`TradingEngine.restore_account`,
the path a state file's accounts take at start-up, without the file), then serves on a free loopback port with
the CLI's server, collector policy and switch interval. Its first line is the URL and how long the seeding took.

The orders: 1-share MARKET buys of AAPL, filled at one price, a microsecond apart, a day before the emulator's
clock, with ids `ord_000...0` to `ord_000...999999` (well-formed, in creation order, before every id the emulator
makes); the account's cash and AAPL position are what those fills leave.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from mock_server import heap

if TYPE_CHECKING:  # imported for real inside the functions, once the collector is paused (as the CLI does)
    from mock_server.domain.trading.account import AccountState
    from mock_server.domain.trading.state import OrderState

PRICE = Decimal("277.51")
SYMBOL = "AAPL"


def filled_orders(count: int, start: datetime) -> Iterator[OrderState]:
    """``count`` filled 1-share MARKET buys from ``start`` on, oldest first (ids in creation order)."""
    from mock_server.domain.trading.models import Fill, OrderSide, OrderType, Strategy, TimeInForce
    from mock_server.domain.trading.state import OrderState

    for index in range(count):
        at = start + timedelta(microseconds=index)
        order = OrderState(id=f"ord_{index:026d}", client_order_id=None, symbol=SYMBOL, type=OrderType.MARKET,
                           side=OrderSide.BUY, quantity=1, limit_price=None, stop_price=None,
                           time_in_force=TimeInForce.DAY, strategy=Strategy.MANUAL, created_at=at,
                           reserve_price=PRICE, last_step=0, updated_at=at)
        order.add_fill(Fill(1, PRICE, at))
        yield order


def history(count: int, start: datetime, cash: Decimal, *, with_orders: bool = True) -> AccountState:
    """An account state holding ``count`` filled orders, as a state file would give it back (``with_orders``
    False: only the cash and position they leave, for writing the orders to a file a chunk at a time)."""
    from mock_server.domain.trading.account import AccountState
    from mock_server.domain.trading.state import PositionState

    position = PositionState(SYMBOL, start, start + timedelta(microseconds=max(0, count - 1)))
    if count:
        position.buy(count, PRICE * count, start)
    return AccountState(cash, cash - PRICE * count, positions={SYMBOL: position} if count else {},
                        orders=filled_orders(count, start) if with_orders else ())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--subject", default="bench")
    parser.add_argument("--filled", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    heap.pause()  # as the CLI: no collections while the app is built (and here, while the history is)
    from mock_server import cli
    from mock_server.app import create_app
    from mock_server.config import load_config
    from mock_server.services import Services
    from mock_server.serving import make_server
    from mock_server.serving.connection import Limits

    config = load_config(args.config, os.environ, port=0)
    app = create_app(config)
    services: Services = app.extensions["tradefence"]
    started = time.perf_counter()
    now = services.clock.now()
    services.engine.restore_account(args.subject, now,
                                    history(args.filled, now - timedelta(days=1), config.starting_cash))
    seeded = time.perf_counter() - started
    limits = Limits(max_body_bytes=config.max_body_bytes, max_connections=config.max_connections,
                    max_websockets=config.max_websockets)
    server = make_server(config.host, config.port, app, limits, after_answer=heap.collect_if_due)
    heap.collect_incrementally()
    sys.setswitchinterval(cli.SWITCH_INTERVAL_SECONDS)
    cli.stop_on_signals()
    try:
        print(f"http://{config.host}:{server.server_port} serving {args.filled} filled orders of "
              f"{args.subject}, seeded in {seeded:.1f} s", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        services.close(grace=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
