"""One client's side of the hub: subscriptions, identity, and a bounded outbox numbered by `seq`."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mock_server.domain.oauth.tokens import Principal
from mock_server.domain.stream.messages import Message


@dataclass(frozen=True, slots=True)
class Outgoing:
    seq: int
    message: Message


@dataclass(frozen=True, slots=True)
class CloseRequest:
    code: int
    reason: str


class Connection:
    """A connection's outbox is the slow-client policy.

    It holds at most `capacity` messages; when full, queuing one more drops the oldest. Every message takes
    the next `seq` when queued, so a client that read too slowly sees the drop as a gap in `seq`, and the
    server never holds more than `capacity` messages for it, however long it stalls.

    The hub queues; exactly one sender (the web adapter) takes and writes. `wake` tells that sender there is
    work; `abort` breaks a sender stuck writing to a client that stopped reading.
    """

    def __init__(self, number: int, capacity: int, wake: Callable[[], None], abort: Callable[[], None]) -> None:
        self.number = number
        self._lock = threading.Lock()
        self._outbox: deque[Outgoing] = deque(maxlen=capacity)
        self._seq = 0
        self._dropped = 0
        self._close: CloseRequest | None = None
        self._wake = wake
        self._abort = abort
        # Guarded by the hub's lock: the hub alone reads and changes these.
        self.symbols: dict[str, None] = {}  # an ordered set: acknowledgements list symbols in subscription order
        self.principal: Principal | None = None
        self.auth_deadline: float | None = None

    def push(self, message: Message) -> bool:
        """Queue a message with the next seq; False once the connection is closing."""
        with self._lock:
            if self._close is not None:
                return False
            was_empty = not self._outbox
            if len(self._outbox) == self._outbox.maxlen:
                self._dropped += 1
            self._seq += 1
            self._outbox.append(Outgoing(self._seq, message))
        if was_empty:  # the sender takes everything at once, so only the first message of a batch must wake it
            self._wake()
        return True

    def take(self) -> tuple[list[Outgoing], CloseRequest | None]:
        """Everything queued, and the close request if any, read together: a close never overtakes its error."""
        with self._lock:
            batch = list(self._outbox)
            self._outbox.clear()
            return batch, self._close

    def close(self, code: int, reason: str) -> None:
        """Ask the sender to close after what is queued; later pushes are ignored. The first request wins."""
        with self._lock:
            if self._close is None:
                self._close = CloseRequest(code, reason)
        self._wake()

    def abort(self) -> None:
        self._abort()

    @property
    def closing(self) -> CloseRequest | None:
        return self._close

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._outbox)

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full (the client sees them as gaps in `seq`)."""
        with self._lock:
            return self._dropped

    @property
    def sequence(self) -> int:
        """The last seq given out."""
        with self._lock:
            return self._seq

    def __repr__(self) -> str:
        return f"Connection({self.number}, symbols={list(self.symbols)})"
