"""`tradefence-mock`: serve the emulator. Flags override the environment, which overrides the config file.

It tells rather than traces: a setting it cannot use or a port it cannot take is one line on stderr and exit
status 2; the start-up banner (`banner.py`) says where everything is; stopping says at once what it waits for.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import secrets
import signal
import socket
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mock_server import heap

if TYPE_CHECKING:
    import ssl

    from mock_server.config import Config
    from mock_server.services import Services

PROG = "tradefence-mock"
SWITCH_INTERVAL_SECONDS = 0.001  # CPython's default is 0.005


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line (and exit 2) like every other bad setting, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def version() -> str:
    try:
        return metadata.version("tradefence-sandbox")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog=PROG,
        description="Tradefence Sandbox: a local emulator of the Tradefence trading API.",
        epilog="Environment: HOST, PORT, SEED (or TRADEFENCE_HOST/PORT/SEED), TRADEFENCE_MARKET_MODE, "
               "TRADEFENCE_WEBHOOK_URL, TRADEFENCE_WEBHOOK_SECRET, TRADEFENCE_STATE, TRADEFENCE_CONTROL_TOKEN.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1; any other address puts /_mock behind "
                                       "a bearer token, TRADEFENCE_CONTROL_TOKEN or one made and printed)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    parser.add_argument("--seed", type=int, help="seed of the market simulator and ids (default 42)")
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--market-mode", choices=["open", "closed", "nyse"], help="market hours (default open)")
    parser.add_argument("--webhook-url", help="send webhook events to this URL")
    parser.add_argument("--webhook-secret", help="its whsec_ secret (default: one made from the seed, printed)")
    parser.add_argument("--state", help="keep accounts, orders, tokens and pending webhooks in this SQLite file "
                                        "across restarts (default: in memory)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    parser.add_argument("--tls", action="store_true", default=None,
                        help="serve HTTPS and WSS on the same port, with a certificate from a local CA made on "
                             "first use (TRADEFENCE_CA_DIR says where)")
    parser.add_argument("--tls-cert", help="your own certificate chain (PEM) instead; implies --tls")
    parser.add_argument("--tls-key", help="its private key (PEM)")
    parser.add_argument("--tls-ca-path", action="store_true",
                        help="print the local CA's certificate file (making the CA if needed) and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tls_ca_path:
        from mock_server.serving import tls

        print(tls.LocalCA(tls.ca_dir()).cert_path)
        return 0
    # The emulator's modules load here, not at the top: with the collector paused first (see heap.pause).
    heap.pause()
    from mock_server.app import create_app
    from mock_server.banner import start_banner
    from mock_server.config import ConfigError, load_config
    from mock_server.domain.persistence import StateError
    from mock_server.serving import make_server
    from mock_server.serving.connection import Limits

    try:
        config = load_config(args.config, os.environ, host=args.host, port=args.port, seed=args.seed,
                             market_mode=args.market_mode, webhook_url=args.webhook_url,
                             webhook_secret=args.webhook_secret, state=args.state, tls=args.tls,
                             tls_cert=args.tls_cert, tls_key=args.tls_key)
    except ConfigError as exc:
        return fail(f"configuration error: {exc}")
    config, made_control_token = with_control_token(config)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        app = create_app(config)
    except StateError as exc:
        return fail(f"state error: {exc}")
    services: Services = app.extensions["tradefence"]
    try:
        context, trust = tls_context(config)
    except (OSError, ValueError) as exc:
        services.close(grace=0)
        return fail(f"TLS error: {exc}")
    try:
        # Full collections under load walk only what is new (short pauses, flat), and run between answers.
        limits = Limits(max_body_bytes=config.max_body_bytes, max_connections=config.max_connections,
                        max_websockets=config.max_websockets)
        server = make_server(config.host, config.port, app, limits, after_answer=heap.collect_if_due, tls=context)
    except OSError as exc:
        services.close(grace=0)
        return fail(cannot_listen(config.host, config.port, exc))
    heap.collect_incrementally()
    # A thread that wants the GIL waits up to the switch interval behind each busy thread; a cheap request beside
    # CPU-heavy ones waits so three times (the loop, its worker, the loop again). A lone thread is never switched
    # out, so this costs nothing uncontended (docs/performance.md, isolation).
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    stop_on_signals()
    try:  # from here on Ctrl-C or SIGTERM is a clean stop, even before the server loop has started
        print(start_banner(config, server.server_port, services.store, tls=trust,
                           made_control_token=made_control_token).render(), flush=True)
        # Open streams get their 1001 close frame while the server still relays it. While the loop runs, the
        # loop handles the signals; before and after it, they raise KeyboardInterrupt.
        server.serve_forever(before_close=lambda: app.extensions["tradefence"].stream.close(),
                             stop_signals=(signal.SIGINT, signal.SIGTERM))
    except KeyboardInterrupt:
        pass
    finally:
        stop_on_signals()  # the loop's close gave SIGTERM back to the system: again, it is "stop at once"
        print(stopping(services), flush=True)
        server.server_close()
        try:
            services.close()  # finishes or logs (with ids) pending webhook deliveries
        except KeyboardInterrupt:
            return fail("stopped at once: pending webhook deliveries were not finished")
    return 0


def tls_context(config: Config) -> tuple[ssl.SSLContext | None, str]:
    """The server's TLS context (None without TLS), and the banner's line on the certificate and how to trust it."""
    if not (config.tls or config.tls_cert):
        return None, ""
    from mock_server.serving import tls  # cryptography loads only for TLS: the plain start stays quick

    if config.tls_cert:
        return tls.server_context(Path(config.tls_cert), Path(config.tls_key)), f"your certificate {config.tls_cert}"
    ca = tls.LocalCA(tls.ca_dir())
    path = ca.cert_path
    return ca.server_context((config.host,)), (
        f"from the local CA {path} ({'made now' if ca.created else 'kept'}); trust it with REQUESTS_CA_BUNDLE={path} "
        f"or SSL_CERT_FILE={path} (Python, curl), NODE_EXTRA_CA_CERTS={path} (Node), or your OS's store")


def with_control_token(config: Config) -> tuple[Config, bool]:
    """Beyond loopback the control plane needs a bearer secret: the configured one, or one made now (and printed,
    as a made webhook secret is). True when it was made."""
    if not config.beyond_loopback or config.control_token:
        return config, False
    return replace(config, control_token=secrets.token_urlsafe(24)), True


def fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    """One line naming the address and what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use (another tradefence-mock?): stop that process, or "
                f"pick another port with --port or PORT= (0 picks a free one)")
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} on {host}: ports below 1024 need privileges; use --port"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: not an address of this machine; use --host 127.0.0.1 or HOST="
    if exc.errno in (socket.EAI_NONAME, socket.EAI_AGAIN, socket.EAI_FAIL):  # create_server keeps getaddrinfo's
        return f"cannot listen on {host!r}: no such host name; use --host 127.0.0.1 or HOST="
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def stopping(services: Services) -> str:
    """What a stop is about to wait for, said before the wait (which can last webhook_drain_seconds)."""
    waits = []
    pending = services.webhooks.dispatcher.pending_count()
    if pending:
        deliveries = _count(pending, "pending webhook delivery", "pending webhook deliveries")
        waits.append(f"up to {services.config.webhook_drain_seconds:g} s for {deliveries} (what is left then is "
                     "logged with its event ids; Ctrl-C again stops at once)")
    streams = services.stream.connection_count
    if streams:
        waits.append(f"closing {_count(streams, 'market-data stream', 'market-data streams')}")
    return "Stopping: " + ("; ".join(waits) if waits else "nothing pending") + "."


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM (`kill`, `docker stop`, a CI job's teardown) both end in a clean stop: pending
    webhook deliveries finished or logged, websockets closed with 1001. SIGINT is set, not inherited: a shell
    starts a background job (`make mock-up &`) with it ignored, and Python leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
