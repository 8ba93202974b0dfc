"""Trading hours: always open, always closed, or the NYSE regular session.

The OPEN and CLOSED modes let tests exercise order handling without waiting for a session; NYSE mode makes the
emulator behave like the real venue (orders queued overnight, weekend gaps) using the emulator's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

_NEW_YORK = "America/New_York"
_OPEN = time(9, 30)
_CLOSE = time(16, 0)

# NYSE full-day closures, from NYSE's published holiday calendar (NYSE Group press releases "2025, 2026 and 2027
# holiday and early closings calendar", Nov 2024, and "2026, 2027 and 2028", Dec 2025). Includes the unscheduled
# 2025-01-09 closure (national day of mourning for President Carter). Early closes (13:00) are not modelled.
# Outside 2025-2027 every weekday is treated as a trading day.
NYSE_HOLIDAYS: frozenset[date] = frozenset({
    # 2025
    date(2025, 1, 1),    # New Year's Day
    date(2025, 1, 9),    # National Day of Mourning, President Jimmy Carter
    date(2025, 1, 20),   # Martin Luther King, Jr. Day
    date(2025, 2, 17),   # Washington's Birthday
    date(2025, 4, 18),   # Good Friday
    date(2025, 5, 26),   # Memorial Day
    date(2025, 6, 19),   # Juneteenth
    date(2025, 7, 4),    # Independence Day
    date(2025, 9, 1),    # Labor Day
    date(2025, 11, 27),  # Thanksgiving Day
    date(2025, 12, 25),  # Christmas Day
    # 2026
    date(2026, 1, 1),    # New Year's Day
    date(2026, 1, 19),   # Martin Luther King, Jr. Day
    date(2026, 2, 16),   # Washington's Birthday
    date(2026, 4, 3),    # Good Friday
    date(2026, 5, 25),   # Memorial Day
    date(2026, 6, 19),   # Juneteenth
    date(2026, 7, 3),    # Independence Day (observed)
    date(2026, 9, 7),    # Labor Day
    date(2026, 11, 26),  # Thanksgiving Day
    date(2026, 12, 25),  # Christmas Day
    # 2027
    date(2027, 1, 1),    # New Year's Day
    date(2027, 1, 18),   # Martin Luther King, Jr. Day
    date(2027, 2, 15),   # Washington's Birthday
    date(2027, 3, 26),   # Good Friday
    date(2027, 5, 31),   # Memorial Day
    date(2027, 6, 18),   # Juneteenth (observed)
    date(2027, 7, 5),    # Independence Day (observed)
    date(2027, 9, 6),    # Labor Day
    date(2027, 11, 25),  # Thanksgiving Day
    date(2027, 12, 24),  # Christmas Day (observed)
})


class MarketMode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    NYSE = "nyse"


@dataclass(frozen=True)
class MarketStatus:
    """Whether orders can execute now, and the next session boundaries (UTC) when the mode has any."""

    is_open: bool
    mode: MarketMode
    next_open: datetime | None
    next_close: datetime | None


# The two modes without a calendar always answer the same (every order asks).
_ALWAYS_OPEN = MarketStatus(is_open=True, mode=MarketMode.OPEN, next_open=None, next_close=None)
_ALWAYS_CLOSED = MarketStatus(is_open=False, mode=MarketMode.CLOSED, next_open=None, next_close=None)


def market_status(mode: MarketMode, at: datetime) -> MarketStatus:
    """Market state at ``at`` (timezone-aware).

    OPEN: always open, no boundaries. CLOSED: never open, no boundaries. NYSE: regular session 09:30-16:00
    America/New_York on weekdays that are not full-day holidays; early closes are ignored (those days run to
    16:00). ``next_open`` is the first session open strictly after ``at`` (tomorrow's open while a session
    runs) and ``next_close`` is the first session close strictly after ``at``.
    """
    if at.tzinfo is None:
        raise ValueError("market times must be timezone-aware")
    if mode is MarketMode.OPEN:
        return _ALWAYS_OPEN
    if mode is MarketMode.CLOSED:
        return _ALWAYS_CLOSED
    local = at.astimezone(ZoneInfo(_NEW_YORK))
    today = local.date()
    open_today, close_today = _session(today)
    is_open = is_trading_day(today) and open_today <= at < close_today
    if is_trading_day(today) and at < open_today:
        next_open, next_close = open_today, close_today
    else:
        following = _next_trading_day(today)
        next_open = _session(following)[0]
        next_close = close_today if is_open else _session(following)[1]
    return MarketStatus(is_open=is_open, mode=mode, next_open=next_open, next_close=next_close)


def is_trading_day(day: date) -> bool:
    """A weekday that is not an NYSE full-day holiday."""
    return day.weekday() < 5 and day not in NYSE_HOLIDAYS


def _next_trading_day(day: date) -> date:
    candidate = day + timedelta(days=1)
    while not is_trading_day(candidate):
        candidate += timedelta(days=1)
    return candidate


def _session(day: date) -> tuple[datetime, datetime]:
    """Open and close of ``day`` in UTC; zoneinfo applies the right offset on either side of a DST change."""
    zone = ZoneInfo(_NEW_YORK)
    opens = datetime.combine(day, _OPEN, tzinfo=zone).astimezone(UTC)
    closes = datetime.combine(day, _CLOSE, tzinfo=zone).astimezone(UTC)
    return opens, closes
