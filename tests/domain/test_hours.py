"""NYSE hours at known instants, across DST changes, weekends and holidays; OPEN/CLOSED modes are trivial."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mock_server.domain.market.hours import NYSE_HOLIDAYS, MarketMode, MarketStatus, is_trading_day, market_status

NY = ZoneInfo("America/New_York")


def et(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NY)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def nyse(at: datetime) -> MarketStatus:
    return market_status(MarketMode.NYSE, at)


def test_open_and_closed_modes_ignore_the_calendar() -> None:
    saturday = utc(2026, 3, 7, 12)
    assert market_status(MarketMode.OPEN, saturday) == MarketStatus(True, MarketMode.OPEN, None, None)
    assert market_status(MarketMode.CLOSED, utc(2026, 3, 9, 15)) == MarketStatus(False, MarketMode.CLOSED, None, None)
    assert MarketMode("nyse") is MarketMode.NYSE


def test_mid_session_reports_todays_close_and_tomorrows_open() -> None:
    status = nyse(et(2026, 3, 4, 11))  # Wednesday, EST
    assert status == MarketStatus(True, MarketMode.NYSE, next_open=utc(2026, 3, 5, 14, 30),
                                  next_close=utc(2026, 3, 4, 21))


def test_session_boundaries_are_half_open() -> None:
    assert nyse(et(2026, 3, 4, 9, 30)).is_open
    assert not nyse(et(2026, 3, 4, 9, 29, 59)).is_open
    assert nyse(et(2026, 3, 4, 15, 59, 59)).is_open
    closed = nyse(et(2026, 3, 4, 16))
    assert not closed.is_open
    assert closed.next_open == utc(2026, 3, 5, 14, 30)
    assert closed.next_close == utc(2026, 3, 5, 21)


def test_before_the_bell_points_at_today() -> None:
    status = nyse(et(2026, 3, 4, 7))
    assert not status.is_open
    assert status.next_open == utc(2026, 3, 4, 14, 30)
    assert status.next_close == utc(2026, 3, 4, 21)


def test_dst_start_shifts_the_utc_open() -> None:
    # DST starts Sunday 2026-03-08: the Friday before opens 14:30 UTC, the Monday after 13:30 UTC.
    assert not nyse(utc(2026, 3, 6, 14, 29)).is_open
    assert nyse(utc(2026, 3, 6, 14, 30)).is_open
    friday_evening = nyse(utc(2026, 3, 6, 22))
    assert friday_evening.next_open == utc(2026, 3, 9, 13, 30)
    assert friday_evening.next_close == utc(2026, 3, 9, 20)
    assert nyse(utc(2026, 3, 9, 13, 30)).is_open
    assert not nyse(utc(2026, 3, 9, 20)).is_open


def test_dst_end_shifts_the_utc_close() -> None:
    # DST ends Sunday 2026-11-01: Friday 10-30 closes 20:00 UTC, Monday 11-02 closes 21:00 UTC.
    assert nyse(utc(2026, 10, 30, 19, 59)).is_open
    assert not nyse(utc(2026, 10, 30, 20)).is_open
    weekend = nyse(utc(2026, 11, 1, 12))
    assert not weekend.is_open
    assert weekend.next_open == utc(2026, 11, 2, 14, 30)
    assert weekend.next_close == utc(2026, 11, 2, 21)
    assert nyse(utc(2026, 11, 2, 20, 30)).is_open


def test_weekend_is_closed() -> None:
    saturday = nyse(et(2026, 3, 7, 12))
    assert not saturday.is_open
    assert saturday.next_open == et(2026, 3, 9, 9, 30)
    assert saturday.next_open.tzinfo is UTC


def test_observed_independence_day_2026() -> None:
    assert not nyse(et(2026, 7, 3, 12)).is_open  # Friday, July 4 falls on Saturday
    thursday_close = nyse(et(2026, 7, 2, 16))
    assert thursday_close.next_open == et(2026, 7, 6, 9, 30)
    assert thursday_close.next_close == et(2026, 7, 6, 16)


def test_thanksgiving_2026_and_ignored_early_close() -> None:
    assert not nyse(et(2026, 11, 26, 12)).is_open
    wednesday_close = nyse(et(2026, 11, 25, 17))
    assert wednesday_close.next_open == et(2026, 11, 27, 9, 30)
    assert wednesday_close.next_close == et(2026, 11, 27, 16)  # real NYSE closes at 13:00; not modelled
    assert nyse(et(2026, 11, 27, 14)).is_open


def test_good_friday_and_new_year_runs() -> None:
    assert not nyse(et(2026, 4, 3, 12)).is_open
    assert nyse(et(2026, 4, 2, 12)).next_open == et(2026, 4, 6, 9, 30)
    # 2026-12-31 Thursday session, then Jan 1 holiday and a weekend... 2027-01-01 is a Friday holiday.
    assert nyse(et(2026, 12, 31, 17)).next_open == et(2027, 1, 4, 9, 30)
    assert nyse(et(2027, 12, 23, 17)).next_open == et(2027, 12, 27, 9, 30)  # Christmas observed Friday 24th
    assert nyse(et(2027, 12, 31, 12)).is_open  # New Year 2028 falls on Saturday: no observed holiday


def test_holiday_list_is_sane() -> None:
    for year, count in ((2025, 11), (2026, 10), (2027, 10)):
        assert sum(day.year == year for day in NYSE_HOLIDAYS) == count
    assert all(day.weekday() < 5 for day in NYSE_HOLIDAYS)
    assert not is_trading_day(date(2027, 6, 18))
    assert is_trading_day(date(2028, 3, 1))  # outside the list, weekdays trade


def test_naive_time_rejected() -> None:
    with pytest.raises(ValueError):
        nyse(datetime(2026, 3, 4, 12))
