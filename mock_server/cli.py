"""`tradefence-mock`: serve the emulator. Flags override the environment, which overrides the config file."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mock_server import heap

if TYPE_CHECKING:
    from mock_server.config import Config
    from mock_server.domain.persistence import StateStore


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tradefence-mock",
        description="Tradefence Sandbox: a local emulator of the Tradefence trading API.",
        epilog="Environment: HOST, PORT, SEED (or TRADEFENCE_HOST/PORT/SEED), TRADEFENCE_MARKET_MODE, "
               "TRADEFENCE_WEBHOOK_URL, TRADEFENCE_WEBHOOK_SECRET, TRADEFENCE_STATE.",
    )
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    parser.add_argument("--seed", type=int, help="seed of the market simulator and ids (default 42)")
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--market-mode", choices=["open", "closed", "nyse"], help="market hours (default open)")
    parser.add_argument("--webhook-url", help="send webhook events to this URL")
    parser.add_argument("--webhook-secret", help="its whsec_ secret (default: one made from the seed, printed)")
    parser.add_argument("--state", help="keep accounts, orders, tokens and pending webhooks in this SQLite file "
                                        "across restarts (default: in memory)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The emulator's modules load here, not at the top: with the collector paused first (see heap.pause).
    heap.pause()
    from mock_server.app import create_app
    from mock_server.config import ConfigError, load_config
    from mock_server.domain.persistence import StateError
    from mock_server.serving import make_server

    try:
        config = load_config(args.config, os.environ, host=args.host, port=args.port, seed=args.seed,
                             market_mode=args.market_mode, webhook_url=args.webhook_url,
                             webhook_secret=args.webhook_secret, state=args.state)
    except ConfigError as exc:
        print(f"tradefence-mock: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        app = create_app(config)
    except StateError as exc:
        print(f"tradefence-mock: state error: {exc}", file=sys.stderr)
        return 2
    # Full collections under load walk only what is new (short pauses, flat), and run between answers.
    server = make_server(config.host, config.port, app, after_answer=heap.collect_if_due)
    heap.collect_incrementally()
    stop_on_signals()
    try:  # from here on Ctrl-C or SIGTERM is a clean stop, even before the server loop has started
        print(f"Tradefence Sandbox on http://{config.host}:{server.server_port} (seed {config.seed})", flush=True)
        announce_webhooks(config)
        announce_state(app.extensions["tradefence"].store)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["tradefence"].close()  # finishes or logs (with ids) pending webhook deliveries
    return 0


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM (`kill`, `docker stop`, a CI job's teardown) both end in a clean stop: pending
    webhook deliveries finished or logged, websockets closed with 1001. SIGINT is set, not inherited: a shell
    starts a background job (`make mock-up &`) with it ignored, and Python leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def announce_webhooks(config: Config) -> None:
    """Print each configured endpoint; the secret only when the emulator made it (the user needs it to verify),
    not one the user chose (it stays out of terminal logs)."""
    given = ([config.webhook_secret] if config.webhook_url else []) + [entry.secret for entry in config.webhooks]
    for entry, secret in zip(config.webhook_endpoints, given, strict=True):
        events = ", ".join(entry.events) if entry.events else "all events"
        shown = "the configured secret" if secret else f"secret {entry.secret} (made from the seed)"
        print(f"Webhooks: {entry.url} ({events}), {shown}", flush=True)


def announce_state(store: StateStore | None) -> None:
    """Say where the state lives and what came back from it (nothing is printed without ``--state``)."""
    if store is not None and store.restored is not None:
        found = store.restored.describe() if store.restored.epoch else "empty"
        print(f"State: {store.path} ({found})", flush=True)
