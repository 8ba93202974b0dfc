"""One client's side of the hub: subscriptions, identity, and a bounded outbox numbered by `seq`."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mock_server.domain.oauth.tokens import Principal
from mock_server.domain.stream.messages import Message


class Outgoing(NamedTuple):
    """A message and its seq. A tuple, made only when the sender takes the outbox: the outbox itself holds bare
    messages (a step queues two per subscribed symbol for every client, so this is the stream's hottest path)."""

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
        self._capacity = capacity
        self._outbox: deque[Message] = deque(maxlen=capacity)  # the newest last; its seq is self._seq
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
        return self.push_all((message,))

    def push_all(self, messages: Sequence[Message]) -> bool:
        """Queue messages in order, each with the next seq, under one lock (a step's ticks arrive together)."""
        with self._lock:
            if self._close is not None:
                return False
            outbox = self._outbox
            was_empty = not outbox
            self._dropped += max(len(outbox) + len(messages) - self._capacity, 0)
            outbox.extend(messages)
            self._seq += len(messages)
        if was_empty and messages:  # the sender takes everything at once: only a batch's first message wakes it
            self._wake()
        return True

    def take(self) -> tuple[list[Outgoing], CloseRequest | None]:
        """Everything queued, and the close request if any, read together: a close never overtakes its error."""
        with self._lock:
            messages = list(self._outbox)
            self._outbox.clear()
            close = self._close
            first = self._seq - len(messages) + 1
        return list(map(Outgoing, range(first, first + len(messages)), messages)), close

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
