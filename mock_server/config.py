"""Emulator configuration: defaults, a TOML file, environment variables and CLI flags, in rising priority.

One frozen object is built at start and passed to `create_app`; nothing reads the environment later.
A bad file fails at start with a message naming the key.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mock_server.domain.market.hours import MarketMode


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("trading:read", "trading:write")


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
    clients: tuple[ClientConfig, ...] = ()

    @property
    def token_key(self) -> str:
        """The JWT signing key: configured, or derived from the seed so a restarted emulator accepts old tokens."""
        return self.signing_key or hashlib.sha256(f"tradefence-sandbox:{self.seed}".encode()).hexdigest()

    def with_overrides(self, **values: Any) -> Config:
        """Apply overrides, ignoring those left at None (unset CLI flags and environment variables)."""
        return replace(self, **{key: value for key, value in values.items() if value is not None})


_SCALARS = {f.name: f for f in fields(Config) if f.name != "clients"}
ENVIRONMENT = {"TRADEFENCE_SEED": "seed", "TRADEFENCE_PORT": "port", "TRADEFENCE_HOST": "host",
               "TRADEFENCE_MARKET_MODE": "market_mode", "PORT": "port", "HOST": "host", "SEED": "seed"}


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


def _convert(key: str, raw: Any, *, source: str) -> Any:
    kind = _SCALARS[key].type
    try:
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
    except (ValueError, InvalidOperation):
        raise ConfigError(f"{source}: {raw!r} is not a valid {key}") from None
    return str(raw)

