"""Identifiers that sort by creation time and repeat exactly for the same seed and clock (ULID-shaped)."""

from __future__ import annotations

import random
import threading

from mock_server.domain.clock import Clock

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdGenerator:
    """`ord_01JD6Q9S...`: 48 bits of clock milliseconds, then 80 bits from the seeded generator.

    Monotonic (the ULID spec's monotonic mode): within one millisecond, and when the clock is frozen or set back,
    the next id is the previous one plus one, so ids always sort in creation order.
    """

    def __init__(self, seed: int, clock: Clock, *, stream: str = "ids", epoch: int = 0) -> None:
        # Each stream has its own generator, so e.g. request ids never shift the sequence of order ids. ``epoch``
        # counts restarts from a state file (see ``domain/persistence``): a restarted emulator must not hand out
        # the refresh tokens and secrets its first run did, so every later run draws from a stream of its own.
        self._random = random.Random(f"{stream}:{seed}" if epoch == 0 else f"{stream}:{seed}:{epoch}")
        self._clock = clock
        self._lock = threading.Lock()
        self._last = -1

    def new(self, prefix: str) -> str:
        millis = int(self._clock.timestamp() * 1000) & ((1 << 48) - 1)
        with self._lock:
            value = (millis << 80) | self._random.getrandbits(80)
            if value <= self._last:
                value = self._last + 1
            self._last = value
        return f"{prefix}_{_base32(value)}"

    def advance_past(self, identifier: str) -> None:
        """Make every later id sort after ``identifier`` (an id this stream made before a restart), so ids keep
        sorting in creation order across restarts even when the clock is frozen or set back."""
        encoded = identifier.rpartition("_")[2].upper()
        if len(encoded) != 26 or any(char not in CROCKFORD for char in encoded):
            return
        value = 0
        for char in encoded:
            value = value * 32 + CROCKFORD.index(char)
        with self._lock:
            self._last = max(self._last, value)

    def token(self, prefix: str, nbytes: int = 24) -> str:
        """An opaque secret-looking string (codes, refresh tokens), from the same seeded stream."""
        with self._lock:
            value = self._random.getrandbits(nbytes * 8)
        return f"{prefix}_{value:0{nbytes * 2}x}"


# Two Crockford digits for every 10 bits: 13 table lookups make the 26 digits of a 128-bit id, in place of 26
# divisions of a 128-bit integer (every order and event gets an id).
_PAIRS = tuple(high + low for high in CROCKFORD for low in CROCKFORD)
_SHIFTS = tuple(range(120, -1, -10))


def _base32(value: int) -> str:
    """The 26 Crockford base32 digits of a 128-bit value, most significant first (ULID's text form)."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])
