"""Emulator configuration: defaults, a TOML file, environment variables and CLI flags, in rising priority.

One frozen object is built at start and passed to `create_app`; nothing reads the environment later.
A bad file fails at start with a message naming the key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mock_server.domain.market.hours import MarketMode
from mock_server.domain.ratelimit import RateLimitSettings
from mock_server.domain.webhooks.dispatcher import DEFAULT_SCHEDULE
from mock_server.domain.webhooks.endpoints import check_events, check_url
from mock_server.domain.webhooks.signing import check_secret, derived_secret


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("trading:read", "trading:write")


@dataclass(frozen=True)
class AccountConfig:
    """An `[[accounts]]` entry: a sandbox user whose account exists from the start with this cash."""

    subject: str
    cash: Decimal


@dataclass(frozen=True)
class WebhookConfig:
    """A `[[webhooks]]` entry: ``secret`` empty means one derived from the seed; ``events`` None means all."""

    url: str
    secret: str = ""
    events: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    seed: int = 42
    starting_cash: Decimal = Decimal("100000.00")
    market_mode: MarketMode = MarketMode.OPEN
    tick_seconds: float = 1.0
    rate_limit_capacity: int = 120
    rate_limit_per_second: float = 20.0
    access_token_ttl: int = 3600
    issuer: str = "https://auth.tradefence.com"
    signing_key: str = ""
    default_subject: str = "sandbox-user"
    max_body_bytes: int = 1024 * 1024
    validate_responses: bool = False
    heartbeat_seconds: float = 15.0  # market-data stream: wall-clock seconds between heartbeats
    stream_queue_size: int = 1000  # market-data stream: messages held per connection before the oldest drop
    require_auth: bool = False  # market-data stream: refuse clients that do not authenticate
    stream_auth_timeout: float = 10.0  # market-data stream, with require_auth: seconds to authenticate
    clients: tuple[ClientConfig, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    consent: str = "auto"  # auto: /authorize approves at once; page: it shows an approve/deny page first
    webhook_url: str = ""  # one endpoint (TRADEFENCE_WEBHOOK_URL), signed with webhook_secret
    webhook_secret: str = ""  # whsec_<base64> (TRADEFENCE_WEBHOOK_SECRET); empty: derived from the seed
    webhooks: tuple[WebhookConfig, ...] = ()  # more endpoints: [[webhooks]] url, secret, events
    webhook_timeout: float = 5.0  # seconds one delivery attempt may take
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_SCHEDULE  # emulator-clock seconds before retry 1, 2, ...
    webhook_retry_jitter: float = 0.2  # each retry delay varies by up to this fraction (seeded)
    webhook_drain_seconds: float = 5.0  # at shutdown: real seconds to finish pending deliveries
    alert_loss_percent: Decimal = Decimal(5)  # POSITION_LOSS: unrealized loss, percent of cost basis
    alert_move_percent: Decimal = Decimal(3)  # PRICE_MOVE: price move since the position opened, percent
    alert_check_seconds: float = 1.0  # real seconds between alert checks (clock jumps also check)
    journal_size: int = 500  # requests the /_mock/journal keeps (the oldest go first); 0 turns it off
    state: str = ""  # SQLite file keeping accounts, orders, tokens, webhooks across restarts; empty: in memory
    max_connections: int = 2048  # open at once (websockets included); past it a newcomer gets 503 + Retry-After
    max_websockets: int = 256  # market-data sessions at once (a thread each); past it, close code 1013
    tls: bool = False  # HTTPS and WSS on the same port, with a certificate from the user's local CA
    tls_cert: str = ""  # the user's own certificate chain (PEM) instead; with tls_key
    tls_key: str = ""
    webhook_ca_file: str = ""  # PEM file of the CA webhook receivers' certificates are checked against
    control_token: str = ""  # TRADEFENCE_CONTROL_TOKEN: what /_mock wants as a bearer token beyond loopback

    def __post_init__(self) -> None:
        """Values built in code (tests, flags) are checked like those read from a file."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together: the certificate chain and its private key")
        for key, check in _CHECKS.items():
            _checked(check, getattr(self, key), _where(key, key, getattr(self, key)))
        for index, entry in enumerate(self.webhooks):
            _checked(check_url, entry.url, f"webhooks[{index}].url: {entry.url!r}")
            if entry.secret:
                _checked(check_secret, entry.secret, f"webhooks[{index}].secret")
            if entry.events is not None:
                _checked(check_events, entry.events, f"webhooks[{index}].events: {list(entry.events)!r}")

    @property
    def webhook_endpoints(self) -> tuple[WebhookConfig, ...]:
        """Every configured endpoint with its secret filled in (derived from the seed when none was given)."""
        found = []
        if self.webhook_url:
            found.append(WebhookConfig(self.webhook_url, self.webhook_secret or derived_secret(self.seed, "url")))
        for index, entry in enumerate(self.webhooks):
            found.append(replace(entry, secret=entry.secret or derived_secret(self.seed, f"webhooks.{index}")))
        return tuple(found)

    @property
    def beyond_loopback(self) -> bool:
        """Whether the bind address lets other machines in: then the control plane wants `control_token`.
        A host name other than `localhost` counts as beyond: what it resolves to is not known to be loopback."""
        if self.host.lower() == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return True

    @property
    def token_key(self) -> str:
        """The JWT signing key: configured, or derived from the seed so a restarted emulator accepts old tokens.
        Beyond loopback the derivation takes the control token in too: the seed (42 by default) is no secret, and
        anyone who could reach the port could otherwise sign tokens for any subject. A restart that keeps
        `TRADEFENCE_CONTROL_TOKEN` keeps the key."""
        if self.signing_key:
            return self.signing_key
        basis = f"tradefence-sandbox:{self.seed}" + (f":{self.control_token}" if self.beyond_loopback else "")
        return hashlib.sha256(basis.encode()).hexdigest()


_SCALARS = {f.name: f for f in fields(Config) if f.name not in ("clients", "webhooks", "accounts")}
ENVIRONMENT = {"TRADEFENCE_SEED": "seed", "TRADEFENCE_PORT": "port", "TRADEFENCE_HOST": "host",
               "TRADEFENCE_MARKET_MODE": "market_mode", "PORT": "port", "HOST": "host", "SEED": "seed",
               "TRADEFENCE_WEBHOOK_URL": "webhook_url", "TRADEFENCE_WEBHOOK_SECRET": "webhook_secret",
               "TRADEFENCE_STATE": "state", "TRADEFENCE_WEBHOOK_CA": "webhook_ca_file",
               "TRADEFENCE_CONTROL_TOKEN": "control_token"}


def _positive(value: float | Decimal) -> None:
    if not (0 < value < float("inf")):
        raise ValueError("must be a positive number")


def _schedule(delays: tuple[float, ...]) -> None:
    if not all(0 <= delay < float("inf") for delay in delays):
        raise ValueError("delays are seconds, not negative")


def _fraction(value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError("must be at least 0 and below 1")


def _not_negative(value: float) -> None:
    if not 0 <= value < float("inf"):
        raise ValueError("must be a number, not negative")


def _percent(value: Decimal) -> None:
    if not 0 < value <= 100:
        raise ValueError("must be a percentage above 0, at most 100")


def _port(value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError("must be 0 (a free port) to 65535")


def _optional(check: Callable[[str], object]) -> Callable[[str], None]:
    def run(value: str) -> None:
        if value:
            check(value)

    return run


def _refill(value: float) -> None:
    RateLimitSettings(1, value)  # the domain's own bounds, and its message


def _bearer_token(value: str) -> None:
    """RFC 6750's b64token: what an Authorization header can carry as it is."""
    if not re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", value):
        raise ValueError("a bearer token is letters, digits and -._~+/ (then any =)")


def _consent(value: str) -> None:
    if value not in ("auto", "page"):
        raise ValueError("must be auto (approve at once) or page (show an approve/deny page)")


_CHECKS: dict[str, Callable[[Any], object]] = {
    "port": _port,
    "consent": _consent,
    "rate_limit_capacity": _positive,
    "rate_limit_per_second": _refill,
    "control_token": _optional(_bearer_token),
    "webhook_url": _optional(check_url),
    "webhook_secret": _optional(check_secret),
    "webhook_timeout": _positive,
    "webhook_retry_schedule": _schedule,
    "webhook_retry_jitter": _fraction,
    "webhook_drain_seconds": _not_negative,
    "alert_loss_percent": _percent,
    "alert_move_percent": _positive,
    "alert_check_seconds": _positive,
    "tick_seconds": _positive,
    "heartbeat_seconds": _positive,
    "stream_queue_size": _positive,
    "stream_auth_timeout": _positive,
    "journal_size": _not_negative,
    "max_connections": _positive,
    "max_websockets": _positive,
}


def _checked(check: Callable[[Any], object], value: Any, where: str) -> None:
    try:
        check(value)
    except (ValueError, ArithmeticError) as exc:  # Decimal('NaN') compares with InvalidOperation
        reason = str(exc) if isinstance(exc, ValueError) else "not a number"
        raise ConfigError(f"{where} is not valid: {reason}") from None


def _where(key: str, source: str, value: Any) -> str:
    """Name the key and show the value, except a secret's."""
    return source if "secret" in key or "token" in key else f"{source}: {value!r}"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None, **flags: Any) -> Config:
    """Defaults < config file < environment < flags."""
    values: dict[str, Any] = {}
    if path is not None:
        values.update(_from_file(path))
    for variable, key in ENVIRONMENT.items():
        if environ and variable in environ and environ[variable] != "":
            values[key] = _convert(key, environ[variable], source=variable)
    values.update({key: value for key, value in flags.items() if value is not None})
    return Config(**values)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key == "clients":
            values["clients"] = tuple(_client(i, entry) for i, entry in enumerate(raw))
        elif key == "accounts":
            if not isinstance(raw, list):
                raise ConfigError(f"{path}: accounts is a list of tables ([[accounts]])")
            values["accounts"] = tuple(_account(i, entry) for i, entry in enumerate(raw))
        elif key == "webhooks":
            if not isinstance(raw, list):
                raise ConfigError(f"{path}: webhooks is a list of tables ([[webhooks]])")
            values["webhooks"] = tuple(_webhook(i, entry) for i, entry in enumerate(raw))
        elif key in _SCALARS:
            values[key] = _convert(key, raw, source=f"{path}: {key}")
        else:
            raise ConfigError(f"{path}: unknown key {key!r}")
    return values


def _client(index: int, entry: Any) -> ClientConfig:
    where = f"clients[{index}]"
    if not isinstance(entry, dict) or not {"client_id", "client_secret"} <= set(entry):
        raise ConfigError(f"{where}: needs client_id and client_secret")
    unknown = set(entry) - {"client_id", "client_secret", "redirect_uris", "scopes"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    return ClientConfig(str(entry["client_id"]), str(entry["client_secret"]),
                        tuple(entry.get("redirect_uris", ())), tuple(entry.get("scopes", ClientConfig.scopes)))


def _account(index: int, entry: Any) -> AccountConfig:
    where = f"accounts[{index}]"
    if not isinstance(entry, dict) or "subject" not in entry:
        raise ConfigError(f"{where}: needs subject")
    unknown = set(entry) - {"subject", "cash"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    subject = entry["subject"]
    if not isinstance(subject, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", subject):
        raise ConfigError(f"{where}.subject: {subject!r} is not 1-64 letters, digits, '_' or '-'")
    try:
        cash = Decimal(str(entry.get("cash", Config.starting_cash))).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ConfigError(f"{where}.cash: {entry['cash']!r} is not an amount") from None
    if cash < 0:
        raise ConfigError(f"{where}.cash: {cash} is negative")
    return AccountConfig(subject, cash)


def _webhook(index: int, entry: Any) -> WebhookConfig:
    where = f"webhooks[{index}]"
    if not isinstance(entry, dict) or "url" not in entry:
        raise ConfigError(f"{where}: needs url")
    unknown = set(entry) - {"url", "secret", "events"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    url, secret, events = entry["url"], entry.get("secret", ""), entry.get("events")
    if not isinstance(url, str):
        raise ConfigError(f"{where}.url: {url!r} is not a string")
    if not isinstance(secret, str):
        raise ConfigError(f"{where}.secret is not a string")
    if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) for e in events)):
        raise ConfigError(f"{where}.events: {events!r} is not a list of event types")
    return WebhookConfig(url, secret, None if events is None else tuple(events))


def _convert(key: str, raw: Any, *, source: str) -> Any:
    value = _parse(key, raw, source=source)
    check = _CHECKS.get(key)
    if check is not None:
        _checked(check, value, _where(key, source, value))
    return value


def _parse(key: str, raw: Any, *, source: str) -> Any:
    kind = _SCALARS[key].type
    try:
        if kind == "tuple[float, ...]":
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple) or isinstance(raw, bool):
                raise ValueError(raw)
            return tuple(float(item) for item in items)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        if kind == "Decimal":
            return Decimal(str(raw))
        if kind == "MarketMode":
            return MarketMode(str(raw))
    except (ValueError, TypeError, InvalidOperation):
        raise ConfigError(f"{source}: {raw!r} is not a valid {key}") from None
    return str(raw)

