"""Delivering events to endpoints off the request path, in order, with retries on the emulator clock.

Semantics (documented in openapi.yaml and the README):

- Each endpoint has its own lane: a FIFO of deliveries ordered by event time (``created_at``, then publication
  order) served by its own thread, so a slow endpoint never delays another.
- Head-of-line blocking: a lane attempts only its head. A later event is never sent before an earlier one to the
  same endpoint, even while the earlier one is retrying; an event published late (its time is earlier than
  events already queued but not yet attempted) takes its place in the queue by time.
- 2xx is success. Anything else, a timeout or a connection error is retried after the next delay of the retry
  schedule (± seeded jitter), measured on the emulator clock from the end of the attempt: advancing the clock
  makes due retries fire, freezing it holds them. After the last retry the delivery is ``failed`` and the lane
  moves on; a failed event can be redelivered.
- ``stop()`` lets lanes finish what they can within a bounded real-time wait, then reports every delivery still
  pending (logged with its event id and returned), so shutting down never drops an accepted event silently.
- With a ``DeliveryStore`` (``--state``), each event is written with its deliveries when published and each
  delivery again after every attempt, so a restart re-queues what was pending (``restore``). An attempt cut short
  by a kill is made again with the same ``webhook-id``: delivery is at least once, as receivers expect anyway.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sortedcontainers import SortedDict, SortedKeyList

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.webhooks import signing
from mock_server.domain.webhooks.endpoints import Endpoint, EndpointRegistry, EndpointSource
from mock_server.domain.webhooks.events import EventType, WebhookEvent

DEFAULT_SCHEDULE = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0)  # seconds before retries 1..7: ~4 minutes in all
_MAX_PAUSE = 1.0  # a waiting lane re-reads the clock at least this often (real seconds)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued, in flight, or waiting for its next retry
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted, or the endpoint was removed


class EventStatus(StrEnum):
    """One word for an event across its deliveries: pending > failed > succeeded; skipped when none wanted it."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a transport saw: an HTTP status, or an error (timeout, refused connection) and no status."""

    status_code: int | None
    latency_ms: int
    error: str | None = None


class Transport(Protocol):
    """POST ``body`` to ``url`` with ``headers``, giving up after ``timeout`` seconds; never raises."""

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> SendResult: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``schedule[i]`` is the delay before retry ``i + 1`` (so ``len(schedule) + 1`` attempts at most);
    ``jitter`` spreads each delay uniformly over ± that fraction of it."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if any(delay < 0 for delay in self.schedule):
            raise ValueError("retry delays must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def delay(self, failures: int, rng: random.Random) -> timedelta | None:
        """The wait after the ``failures``-th failed attempt of a round; None when the retries are used up."""
        if failures > len(self.schedule):
            return None
        base = self.schedule[failures - 1]
        return timedelta(seconds=max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1))))


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: datetime  # emulator time the attempt started; its webhook-timestamp
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class DeliveryView:
    endpoint_id: str
    url: str
    status: DeliveryStatus
    attempts: tuple[Attempt, ...]
    next_attempt_at: datetime | None
    error: str | None  # why it failed when no attempt says so (endpoint removed, retries used up)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event with the state of its delivery to each endpoint that wanted it."""

    event: WebhookEvent
    status: EventStatus
    deliveries: tuple[DeliveryView, ...]


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery not finished when the dispatcher stopped (or dropped by a reset)."""

    event_id: str
    event_type: EventType
    endpoint_id: str
    url: str
    attempts: int


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """One endpoint's delivery of an event as a state file keeps it (``url`` too, in case the endpoint is gone)."""

    endpoint_id: str
    url: str
    status: DeliveryStatus
    attempts: tuple[Attempt, ...]
    failures: int
    next_at: datetime
    error: str | None


class DeliveryStore(Protocol):
    """Where events and delivery progress are written through with ``--state`` (calls are made under the
    dispatcher's lock, so they reach the store in the order things happened)."""

    def save_event(self, event: WebhookEvent, sequence: int, deliveries: Sequence[StoredDelivery]) -> None: ...

    def save_delivery(self, event_id: str, delivery: StoredDelivery) -> None: ...

    def drop_events(self, event_ids: Sequence[str] | None) -> None: ...  # None: every event


@dataclass(eq=False, slots=True)
class _Delivery:
    event: WebhookEvent
    endpoint: Endpoint
    key: tuple[datetime, int]  # (event time, publication sequence): the lane's order
    next_at: datetime
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    failures: int = 0  # failed attempts of the current round (a redelivery starts a new round)
    error: str | None = None
    started: bool = False  # its lane's head has attempted it this round: it stays first (head-of-line blocking)

    def view(self) -> DeliveryView:
        pending = self.status is DeliveryStatus.PENDING
        return DeliveryView(self.endpoint.id, self.endpoint.url, self.status, tuple(self.attempts),
                            self.next_at if pending else None, self.error)

    def pending(self) -> PendingDelivery:
        return PendingDelivery(self.event.id, self.event.type, self.endpoint.id, self.endpoint.url,
                               len(self.attempts))

    def stored(self) -> StoredDelivery:
        return StoredDelivery(self.endpoint.id, self.endpoint.url, self.status, tuple(self.attempts), self.failures,
                              self.next_at, self.error)


@dataclass(eq=False, slots=True)
class _Record:
    event: WebhookEvent
    sequence: int
    deliveries: dict[str, _Delivery] = field(default_factory=dict)
    listed: EventStatus | None = None  # the status the catalog files it under

    def status(self) -> EventStatus:
        states = {delivery.status for delivery in self.deliveries.values()}
        if not states:
            return EventStatus.SKIPPED
        if DeliveryStatus.PENDING in states:
            return EventStatus.PENDING
        if DeliveryStatus.FAILED in states:
            return EventStatus.FAILED
        return EventStatus.SUCCEEDED

    def view(self) -> EventRecord:
        return EventRecord(self.event, self.status(), tuple(d.view() for d in self.deliveries.values()))


class _Catalog:
    """Every event record by id in publication order, and by type and by status, so a listing reads one page and
    trimming finds the oldest finished record without a scan. A record's status follows its deliveries: whoever
    changes a delivery ``refresh``es its record."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._by: dict[tuple[str, str], SortedDict[int, _Record]] = {}  # ("type"|"status", value) -> by sequence

    def __len__(self) -> int:
        return len(self._records)

    def get(self, event_id: str) -> _Record | None:
        return self._records.get(event_id)

    def add(self, record: _Record) -> None:
        self._records[record.event.id] = record
        record.listed = record.status()
        self._file(("type", str(record.event.type)), record)
        self._file(("status", str(record.listed)), record)

    def refresh(self, record: _Record) -> None:
        if self._records.get(record.event.id) is not record:
            return  # forgotten meanwhile
        status = record.status()
        if status is not record.listed:
            assert record.listed is not None
            self._unfile(("status", str(record.listed)), record)
            record.listed = status
            self._file(("status", str(status)), record)

    def remove(self, record: _Record) -> None:
        del self._records[record.event.id]
        self._unfile(("type", str(record.event.type)), record)
        self._unfile(("status", str(record.listed)), record)

    def clear(self) -> None:
        self._records.clear()
        self._by.clear()

    def newest(self, status: EventStatus | None, event_type: EventType | None, limit: int) -> list[_Record]:
        """Up to ``limit`` records of that status and type (any, for None), newest first. With both, the walk
        goes through the shorter list of the two."""
        named = [("type", str(event_type))] if event_type is not None else []
        named += [("status", str(status))] if status is not None else []
        if not named:
            return list(itertools.islice(reversed(self._records.values()), limit))
        lists = [found for key in named if (found := self._by.get(key)) is not None]
        if len(lists) < len(named):
            return []
        shortest = min(lists, key=len)
        matching = (record for record in reversed(shortest.values())
                    if (event_type is None or record.event.type == event_type)
                    and (status is None or record.listed is status))
        return list(itertools.islice(matching, limit))

    def oldest_finished(self, count: int) -> list[_Record]:
        """The ``count`` oldest records with nothing pending (fewer if there are not so many)."""
        finished = [found.values() for status in (EventStatus.SUCCEEDED, EventStatus.FAILED, EventStatus.SKIPPED)
                    if (found := self._by.get(("status", str(status)))) is not None]
        return list(itertools.islice(heapq.merge(*finished, key=lambda record: record.sequence), count))

    def _file(self, key: tuple[str, str], record: _Record) -> None:
        found = self._by.get(key)
        if found is None:
            found = self._by[key] = SortedDict()
        found[record.sequence] = record

    def _unfile(self, key: tuple[str, str], record: _Record) -> None:
        found = self._by[key]
        del found[record.sequence]
        if not found:
            del self._by[key]


@dataclass(eq=False)
class _Lane:
    """One endpoint's deliveries by event time, except that a head that has started its round stays first: a
    later event is never sent before an earlier one, and one published late does not jump a head in flight or
    waiting for its retry. Sorted, so queuing behind thousands of pending deliveries costs a logarithm."""

    endpoint_id: str
    queue: SortedKeyList[_Delivery, tuple[bool, datetime, int]] = field(
        default_factory=lambda: SortedKeyList(key=lambda delivery: (not delivery.started, *delivery.key)))
    busy: bool = False  # the head is in flight
    closed: bool = False  # the endpoint was removed
    thread: threading.Thread | None = None

    def insert(self, delivery: _Delivery) -> None:
        self.queue.add(delivery)

    def start(self, head: _Delivery) -> None:
        """``head`` is being attempted: from now on it stays first until it leaves."""
        if not head.started:
            self.queue.remove(head)
            head.started = True
            self.queue.add(head)


class Dispatcher:
    """Queues events per endpoint and delivers them on per-endpoint threads (started on first use)."""

    def __init__(self, endpoints: EndpointRegistry, clock: Clock, transport: Transport, policy: RetryPolicy,
                 rng: random.Random, *, max_events: int = 10_000) -> None:
        self._endpoints = endpoints
        self._clock = clock
        self._transport = transport
        self._policy = policy
        self._rng = rng
        self._max_events = max_events
        self._cond = threading.Condition()
        self._records = _Catalog()
        self._lanes: dict[str, _Lane] = {}
        self._sequence = 0
        self._closing = False
        self._stopped = False
        self._store: DeliveryStore | None = None
        self._log = logging.getLogger(__name__)
        clock.on_change(self._wake)

    # -- persistence --------------------------------------------------------------------------------------------

    def persist_with(self, store: DeliveryStore) -> None:
        """Write every later event and delivery change through to ``store`` (once, after ``restore``)."""
        with self._cond:
            self._store = store

    def restore(self, records: Sequence[tuple[WebhookEvent, int, Sequence[StoredDelivery]]]) -> None:
        """Put back events read from a state file, oldest publication first, and re-queue every pending delivery
        with its attempts, failures and next attempt time (on the emulator clock, which is restored too).

        A pending delivery whose endpoint no longer exists (a configured one dropped from the configuration)
        fails with that reason. Within a lane, a head that had started its retries goes first again, so the
        head-of-line order survives the restart.
        """
        with self._cond:
            queued: list[_Delivery] = []
            for event, sequence, deliveries in sorted(records, key=lambda item: item[1]):
                record = _Record(event, sequence)
                self._sequence = max(self._sequence, sequence)
                for stored in deliveries:
                    endpoint = self._endpoints.get(stored.endpoint_id)
                    status, error = stored.status, stored.error
                    if endpoint is None:
                        endpoint = Endpoint(stored.endpoint_id, stored.url, "", None, event.created_at,
                                            EndpointSource.CONTROL)
                        if status is DeliveryStatus.PENDING:
                            status, error = DeliveryStatus.FAILED, "the endpoint was not configured after a restart"
                    delivery = _Delivery(event, endpoint, (event.created_at, sequence), stored.next_at, status,
                                         list(stored.attempts), stored.failures, error,
                                         started=stored.failures > 0)
                    record.deliveries[endpoint.id] = delivery
                    if status is DeliveryStatus.PENDING:
                        queued.append(delivery)
                self._records.add(record)
            for delivery in queued:
                lane = self._lanes.get(delivery.endpoint.id)
                if lane is None:
                    lane = self._lanes[delivery.endpoint.id] = _Lane(delivery.endpoint.id)
                lane.insert(delivery)
                self._start(lane)
            self._cond.notify_all()

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    # -- publishing and reading ---------------------------------------------------------------------------------

    def publish(self, event: WebhookEvent) -> EventRecord:
        """Record ``event`` and queue it for every endpoint that wants its type; returns at once."""
        with self._cond:
            return self._publish(event).view()

    def publish_unread(self, event: WebhookEvent) -> None:
        """`publish` for callers that never read the record back: every fill and alert publishes one."""
        with self._cond:
            self._publish(event)

    def _publish(self, event: WebhookEvent) -> _Record:
        """Caller holds ``_cond``."""
        self._sequence += 1
        record = _Record(event, self._sequence)
        now: datetime | None = None  # read only when a delivery is queued: most fills have no endpoint
        for endpoint in self._endpoints.all():
            if endpoint.wants(event.type):
                now = now or self._clock.now()
                self._enqueue(record, endpoint, now)
        self._records.add(record)
        if self._store is not None:
            self._store.save_event(event, record.sequence, [d.stored() for d in record.deliveries.values()])
        self._trim()
        if self._stopped and record.deliveries:
            self._log.warning("webhook dispatcher is stopped: event %s (%s) will not be delivered",
                              event.id, event.type)
        if record.deliveries:  # lanes wait for work; an event no endpoint wants gives them none
            self._cond.notify_all()
        return record

    def event(self, event_id: str) -> EventRecord:
        with self._cond:
            return self._record(event_id).view()

    def events(self, *, status: EventStatus | None = None, event_type: EventType | None = None,
               limit: int = 100) -> list[EventRecord]:
        """Newest first."""
        with self._cond:
            return [record.view() for record in self._records.newest(status, event_type, limit)]

    def pending_count(self) -> int:
        """Deliveries queued, in flight or waiting for a retry, across every endpoint."""
        with self._cond:
            return sum(len(lane.queue) for lane in self._lanes.values())

    def redeliver(self, event_id: str, endpoint_id: str | None = None) -> EventRecord:
        """Send an event again as a new round of attempts (same id and body, fresh retries).

        Without ``endpoint_id``: to every endpoint whose delivery failed and that is still registered. With it: to
        that endpoint, whatever happened before (even if the event was published before it was registered).
        A delivery still pending is left as it is.
        """
        now = self._clock.now()
        with self._cond:
            record = self._record(event_id)
            if endpoint_id is not None:
                endpoint = self._endpoints.get(endpoint_id)
                if endpoint is None:
                    raise ApiError(ErrorCode.NOT_FOUND, f"No webhook endpoint {endpoint_id}", field="endpoint_id")
                targets = [endpoint]
            else:
                targets = [endpoint for endpoint in self._endpoints.all()
                           if (delivery := record.deliveries.get(endpoint.id)) is not None
                           and delivery.status is DeliveryStatus.FAILED]
            for endpoint in targets:
                delivery = record.deliveries.get(endpoint.id)
                if delivery is not None and delivery.status is DeliveryStatus.PENDING:
                    continue
                self._enqueue(record, endpoint, now, previous=delivery)
                self._save(record.deliveries[endpoint.id])
            self._records.refresh(record)
            self._cond.notify_all()
            return record.view()

    # -- endpoints going away, reset, shutdown ------------------------------------------------------------------

    def endpoint_removed(self, endpoint_id: str) -> list[PendingDelivery]:
        """Fail what was still queued for a removed endpoint and return it (an in-flight attempt still finishes)."""
        with self._cond:
            lane = self._lanes.pop(endpoint_id, None)
            if lane is None:
                return []
            lane.closed = True
            abandoned = self._abandon(lane, "the endpoint was removed")
            self._cond.notify_all()
        return abandoned

    def reset(self, removed: list[str]) -> list[PendingDelivery]:
        """Forget every event; close the lanes of ``removed`` endpoints. Dropped pending deliveries are logged."""
        with self._cond:
            dropped: list[PendingDelivery] = []
            for endpoint_id, lane in list(self._lanes.items()):
                dropped += self._abandon(lane, "the emulator was reset", save=False)
                if endpoint_id in removed:
                    lane.closed = True
                    del self._lanes[endpoint_id]
            self._records.clear()
            if self._store is not None:
                self._store.drop_events(None)
            self._cond.notify_all()
        if dropped:
            self._log.warning("reset dropped %d pending webhook deliveries: %s", len(dropped), _describe(dropped))
        return dropped

    def stop(self, grace: float = 5.0) -> list[PendingDelivery]:
        """Stop accepting work after letting lanes finish for at most ``grace`` real seconds; return (and log)
        what is still pending. Real time, not the emulator clock, bounds the wait: a frozen clock must not make
        shutdown hang. It returns early once nothing left can progress within the grace (e.g. every remaining
        retry is due after it, or the clock is frozen before it)."""
        deadline = time.monotonic() + max(0.0, grace)
        with self._cond:
            if self._stopped:  # stopping twice reports again, without waiting again
                return [delivery.pending() for lane in self._lanes.values() for delivery in lane.queue]
            self._closing = True
            self._cond.notify_all()
            while (remaining := deadline - time.monotonic()) > 0 and self._can_progress(remaining):
                self._cond.wait(min(remaining, 0.05))
            self._stopped = True
            self._cond.notify_all()
            threads = [lane.thread for lane in self._lanes.values() if lane.thread is not None]
            pending = [delivery.pending() for lane in self._lanes.values() for delivery in lane.queue]
        for thread in threads:
            thread.join(timeout=0.5)  # an attempt in flight is reported as pending; its thread is a daemon
        if pending:
            self._log.warning("webhook dispatcher stopped with %d pending deliveries: %s", len(pending),
                              _describe(pending))
        return pending

    # -- internals (callers hold self._cond unless said otherwise) ----------------------------------------------

    def _record(self, event_id: str) -> _Record:
        record = self._records.get(event_id)
        if record is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No webhook event {event_id}")
        return record

    def _enqueue(self, record: _Record, endpoint: Endpoint, now: datetime, *,
                 previous: _Delivery | None = None) -> None:
        delivery = _Delivery(record.event, endpoint, (record.event.created_at, record.sequence), next_at=now)
        if previous is not None:
            delivery.attempts = previous.attempts  # the history stays; the new round starts from zero failures
        record.deliveries[endpoint.id] = delivery
        lane = self._lanes.get(endpoint.id)
        if lane is None:
            lane = self._lanes[endpoint.id] = _Lane(endpoint.id)
        lane.insert(delivery)
        self._start(lane)

    def _start(self, lane: _Lane) -> None:
        if not self._stopped and (lane.thread is None or not lane.thread.is_alive()):
            lane.thread = threading.Thread(target=self._work, args=(lane,), name=f"webhooks-{lane.endpoint_id}",
                                           daemon=True)
            lane.thread.start()

    def _save(self, delivery: _Delivery) -> None:
        if self._store is not None:
            self._store.save_delivery(delivery.event.id, delivery.stored())

    def _abandon(self, lane: _Lane, reason: str, *, save: bool = True) -> list[PendingDelivery]:
        abandoned = []
        for delivery in lane.queue:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = reason
            abandoned.append(delivery.pending())
            if save:
                self._save(delivery)
            record = self._records.get(delivery.event.id)
            if record is not None:
                self._records.refresh(record)
        lane.queue.clear()
        return abandoned

    def _trim(self) -> None:
        """Keep at most ``max_events`` records, forgetting the oldest that have nothing pending."""
        excess = len(self._records) - self._max_events
        if excess <= 0:
            return
        forgotten = self._records.oldest_finished(excess)
        for record in forgotten:
            self._records.remove(record)
        if forgotten and self._store is not None:
            self._store.drop_events([record.event.id for record in forgotten])

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _can_progress(self, remaining: float) -> bool:
        horizon = self._clock.now() + (timedelta(0) if self._clock.frozen else timedelta(seconds=remaining))
        return any(lane.busy or (lane.queue and lane.queue[0].next_at <= horizon) for lane in self._lanes.values())

    def _next_due(self, lane: _Lane) -> _Delivery | None:
        """Wait until the lane's head is due; None when the lane should end."""
        while True:
            if self._stopped or lane.closed or (self._closing and not lane.queue):
                return None
            if not lane.queue:
                self._cond.wait()
                continue
            head = lane.queue[0]
            now = self._clock.now()
            if head.next_at <= now:
                return head
            wait = _MAX_PAUSE if self._clock.frozen else min(_MAX_PAUSE, (head.next_at - now).total_seconds())
            self._cond.wait(wait)

    def _work(self, lane: _Lane) -> None:
        """One endpoint's thread: attempt the head when due, record the outcome, repeat."""
        while True:
            with self._cond:
                head = self._next_due(lane)
                if head is None:
                    return
                lane.start(head)
                lane.busy = True
                number = len(head.attempts) + 1
                started = self._clock.now()
            result = self._send(head, started)
            with self._cond:
                lane.busy = False
                self._finish(lane, head, Attempt(number, started, result.status_code, result.latency_ms,
                                                 result.error))
                self._cond.notify_all()

    def _send(self, delivery: _Delivery, at: datetime) -> SendResult:
        """Outside the lock: sign with the attempt's own timestamp and hand the request to the transport."""
        event = delivery.event
        headers = {"content-type": "application/json", "user-agent": "Tradefence-Sandbox-Webhooks/1",
                   **signing.headers(delivery.endpoint.secret, event.id, int(at.timestamp()), event.body)}
        try:
            return self._transport(delivery.endpoint.url, event.body, headers, self._policy.timeout)
        except Exception as exc:  # a transport must not raise; if one does, it is a failed attempt, not a dead lane
            self._log.exception("webhook transport failed for %s", event.id)
            return SendResult(None, 0, f"transport error: {exc}")

    def _finish(self, lane: _Lane, delivery: _Delivery, attempt: Attempt) -> None:
        self._settle(lane, delivery, attempt)
        record = self._records.get(delivery.event.id)
        if record is not None and record.deliveries.get(delivery.endpoint.id) is delivery:  # not once forgotten
            self._save(delivery)
            self._records.refresh(record)

    def _settle(self, lane: _Lane, delivery: _Delivery, attempt: Attempt) -> None:
        delivery.attempts.append(attempt)
        if not lane.queue or lane.queue[0] is not delivery:
            # Abandoned while in flight (endpoint removed, reset): keep the record of what happened, nothing more.
            if attempt.succeeded:
                delivery.status = DeliveryStatus.SUCCEEDED
            else:
                self._failed(delivery, attempt, "no retry: the delivery was abandoned meanwhile")
            return
        if attempt.succeeded:
            delivery.status = DeliveryStatus.SUCCEEDED
            lane.queue.pop(0)
            return
        delivery.failures += 1
        delay = self._policy.delay(delivery.failures, self._rng)
        if delay is None:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = f"gave up after {delivery.failures} attempts"
            lane.queue.pop(0)
            self._failed(delivery, attempt, f"gave up after {delivery.failures} attempts")
            return
        delivery.next_at = self._clock.now() + delay
        self._failed(delivery, attempt, f"retry in {delay.total_seconds():.1f} s (emulator clock)")

    def _failed(self, delivery: _Delivery, attempt: Attempt, outcome: str) -> None:
        """One log line per failed attempt, as it happens: a user watching the terminal sees why at once."""
        why = attempt.error or f"HTTP {attempt.status_code}"
        self._log.warning("webhook %s (%s) to %s: attempt %d failed (%s); %s", delivery.event.id,
                          delivery.event.type, delivery.endpoint.url, attempt.number, why, outcome)


def _describe(pending: list[PendingDelivery]) -> str:
    return ", ".join(f"{p.event_id} ({p.event_type}) -> {p.endpoint_id} {p.url}" for p in pending)
