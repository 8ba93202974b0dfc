"""What the hub sends, as plain values; the web layer renders them to the spec's `Stream*` JSON messages.

Quotes and trades are the simulator's own `Quote` and `Trade`, so the stream cannot show a price the
simulator (and therefore the order engine) would not give for that step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mock_server.domain.errors import ErrorCode
from mock_server.domain.market.simulator import Quote, Trade

CLOSE_GOING_AWAY = 1001  # RFC 6455: the server is shutting down
CLOSE_UNAUTHORIZED = 4401  # application range 4000-4999: authentication required or failed (HTTP 401's twin)


@dataclass(frozen=True, slots=True)
class Subscribed:
    """Acknowledges a subscribe or unsubscribe with the whole current list, so a client never has to add up."""

    symbols: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class Authenticated:
    subject: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent on wall-clock time even when the market clock is frozen, so an idle client can tell 'alive'."""

    at: datetime


@dataclass(frozen=True, slots=True)
class StreamFault:
    """An error message; the API's codes, so clients handle stream and HTTP errors alike."""

    code: ErrorCode
    message: str
    at: datetime
    symbols: tuple[str, ...] = ()
    field: str | None = None


Message = Subscribed | Authenticated | Quote | Trade | Heartbeat | StreamFault
