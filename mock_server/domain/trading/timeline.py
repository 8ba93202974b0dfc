"""Which simulator steps resting orders are evaluated at when the engine catches up to the clock.

Orders are evaluated lazily: a call finds the steps between an order's last evaluation and now, restricted to the
instants the market was open (under the current market mode), and replays them in time order. A long gap (a clock
jump of a month is millions of one-second steps) is thinned to at most ``limit`` evenly spaced steps, always
including the newest: an order can then miss a brief excursion of the price, which is the price of answering fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from mock_server.domain.market.hours import MarketMode, market_status
from mock_server.domain.market.simulator import MarketSimulator

_TICK = timedelta(microseconds=1)


def open_windows(mode: MarketMode, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Closed intervals ``[lo, hi]`` inside ``[start, end]`` during which the market was open."""
    if start > end or mode is MarketMode.CLOSED:
        return []
    if mode is MarketMode.OPEN:
        return [(start, end)]
    windows: list[tuple[datetime, datetime]] = []
    at = start
    while at <= end:
        status = market_status(mode, at)
        if status.is_open and status.next_close is not None:
            windows.append((at, min(status.next_close - _TICK, end)))
        if status.next_open is None:
            break
        at = status.next_open
    return windows


def catch_up(simulator: MarketSimulator, mode: MarketMode, first_step: int, now: datetime,
             limit: int) -> list[tuple[int, datetime]]:
    """``(step, instant)`` pairs from ``first_step`` up to the step of ``now``, oldest first.

    ``instant`` is the step's start, or the session open when a session opens mid-step; fills are stamped with it.
    """
    runs: list[tuple[int, int, datetime]] = []
    previous = first_step - 1
    for lo, hi in open_windows(mode, simulator.step_start(first_step), now):
        first = max(simulator.step_index(lo), previous + 1)
        last = simulator.step_index(hi)
        if first <= last:
            runs.append((first, last, lo))
            previous = last
    total = sum(last - first + 1 for first, last, _ in runs)
    if total == 0:
        return []
    if total <= limit:
        positions: Iterator[int] = iter(range(total))
    else:
        positions = iter((j + 1) * total // limit - 1 for j in range(limit))
    points: list[tuple[int, datetime]] = []
    offset = 0
    wanted = next(positions, None)
    for first, last, lo in runs:
        length = last - first + 1
        while wanted is not None and wanted < offset + length:
            step = first + wanted - offset
            points.append((step, max(simulator.step_start(step), lo)))
            wanted = next(positions, None)
        offset += length
    return points
