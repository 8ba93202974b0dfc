"""One clock for the whole emulator.

Every timestamp, fill, expiry, tick and retry reads this object, so a test can freeze, set or advance time
and see the whole emulator follow (Stripe's test clocks, for a market).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

LATEST_READING = datetime(9000, 1, 1, tzinfo=UTC)


class Clock:
    """A controllable UTC clock: real time by default; frozen, set or advanced on demand.

    When running, the clock reports ``anchor + (real_now - real_anchor)``, so setting or advancing it keeps
    time flowing from the new reading. When frozen it reports the same instant until moved.
    """

    def __init__(self, *, source: Callable[[], float] = time.time, start: datetime | None = None,
                 frozen: bool = False) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._real_anchor = source()
        self._anchor = _aware(start) if start is not None else _from_epoch(self._real_anchor)
        self._frozen = frozen
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def timestamp(self) -> float:
        """Seconds since the Unix epoch, for code that wants a number."""
        return self.now().timestamp()

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def offset(self) -> float:
        """Seconds the reading is ahead of its time source (0 for a clock never moved): what a running clock
        keeps across a restart from a state file, so it resumes as far ahead (or behind) as it was."""
        with self._lock:
            return self._now_locked().timestamp() - self._source()

    def freeze(self) -> datetime:
        with self._lock:
            self._rebase(self._now_locked())
            self._frozen = True
            moment = self._anchor
        self._notify()
        return moment

    def resume(self) -> datetime:
        with self._lock:
            self._rebase(self._now_locked())
            self._frozen = False
            moment = self._anchor
        self._notify()
        return moment

    def set(self, moment: datetime) -> datetime:
        with self._lock:
            self._rebase(_aware(moment))
        self._notify()
        return _aware(moment)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            moment = _aware(self._now_locked() + delta)
            self._rebase(moment)
        self._notify()
        return moment

    def fork(self) -> Clock:
        """A clock with this one's reading, frozen state and time source, but none of its listeners.

        For rebuilding the services (a reseed): the new ones follow the same time without the old ones, which are
        being closed, hearing every later move.
        """
        with self._lock:
            return Clock(source=self._source, start=self._now_locked(), frozen=self._frozen)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every jump (set, advance, freeze, resume) so waiters can re-check deadlines."""
        with self._lock:
            self._listeners.append(listener)

    def _now_locked(self) -> datetime:
        if self._frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=self._source() - self._real_anchor)

    def _rebase(self, moment: datetime) -> None:
        self._anchor = moment
        self._real_anchor = self._source()

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("clock readings must be timezone-aware")
    moment = moment.astimezone(UTC)
    if not LATEST_READING.year > moment.year >= 1970:
        # Timeouts, retries and expiries are added to readings; far from the present they would overflow.
        raise ValueError(f"clock readings must fall in 1970..{LATEST_READING.year - 1}")
    return moment


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@functools.lru_cache(maxsize=1024)
def rfc3339(moment: datetime) -> str:
    """The one text form of an instant the API uses: UTC, milliseconds, `Z` (`2026-11-25T15:04:05.250Z`).

    Kept for recent instants: an order shows the same one up to four times (created, updated, filled, its fill),
    and every tick of a stream step shares one; formatting costs far more than a lookup."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
