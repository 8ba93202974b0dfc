"""The dispatcher on its own: a fake transport, a frozen clock, no HTTP."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from mock_server.domain.clock import Clock
from mock_server.domain.ids import IdGenerator
from mock_server.domain.webhooks import signing
from mock_server.domain.webhooks.dispatcher import (
    DeliveryStatus,
    Dispatcher,
    EventStatus,
    RetryPolicy,
    SendResult,
)
from mock_server.domain.webhooks.endpoints import EndpointRegistry
from mock_server.domain.webhooks.events import EventFactory, EventType, WebhookEvent
from mock_server.web import render
from tests.support.receiver import eventually

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class FakeTransport:
    """Answers from ``statuses`` (per URL, in order; then 200), and remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (url, event id, headers)
        self.statuses: dict[str, list[int | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> SendResult:
        with self._lock:
            self.calls.append((url, headers["webhook-id"], dict(headers)))
            script = self.statuses.get(url, [])
            status = script.pop(0) if script else 200
        if status is None:
            return SendResult(None, 5, "timed out after 5 s")
        return SendResult(status, 1, None if 200 <= status < 300 else f"HTTP {status}")

    def ids(self, url: str) -> list[str]:
        with self._lock:
            return [event_id for called, event_id, _ in self.calls if called == url]


class Harness:
    def __init__(self, schedule: tuple[float, ...] = (10.0, 20.0), jitter: float = 0.0) -> None:
        self.clock = Clock(start=START, frozen=True)
        ids = IdGenerator(1, self.clock, stream="webhooks")
        self.endpoints = EndpointRegistry(ids, self.clock, random.Random(1))
        self.transport = FakeTransport()
        self.dispatcher = Dispatcher(self.endpoints, self.clock, self.transport, RetryPolicy(schedule, jitter, 1.0),
                                     random.Random(1))
        self.events = EventFactory(ids, render)

    def event(self, at: datetime | None = None, kind: EventType = EventType.ALERT_TRIGGERED) -> WebhookEvent:
        return self.events.build(kind, "acc_a", {"n": 1}, at or self.clock.now())

    def status(self, event_id: str) -> EventStatus:
        return self.dispatcher.event(event_id).status


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.dispatcher.stop(0)


def test_signing_matches_the_standard_webhooks_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secrets_are_checked_and_made_from_the_seed() -> None:
    assert signing.new_secret(random.Random(5)) == signing.new_secret(random.Random(5))
    assert signing.check_secret(signing.new_secret(random.Random(5))).startswith("whsec_")
    for bad in ("MfKQ9r8GKYqr", "whsec_", "whsec_not base64!"):
        with pytest.raises(ValueError):
            signing.check_secret(bad)


def test_an_event_goes_once_to_each_endpoint_that_wants_it(harness: Harness) -> None:
    every = harness.endpoints.add("http://a.test/hook")
    alerts_only = harness.endpoints.add("http://b.test/hook", events=["alert.triggered"])
    filled = harness.dispatcher.publish(harness.event(kind=EventType.ORDER_FILLED))
    alert = harness.dispatcher.publish(harness.event())
    assert [d.endpoint_id for d in filled.deliveries] == [every.id]
    assert [d.endpoint_id for d in alert.deliveries] == [every.id, alerts_only.id]
    eventually(lambda: harness.status(alert.event.id) is EventStatus.SUCCEEDED)
    eventually(lambda: harness.status(filled.event.id) is EventStatus.SUCCEEDED)
    assert harness.transport.ids("http://a.test/hook") == [filled.event.id, alert.event.id]
    assert harness.transport.ids("http://b.test/hook") == [alert.event.id]
    event_id, headers = next((i, h) for url, i, h in harness.transport.calls if url == "http://a.test/hook")
    assert headers["webhook-timestamp"] == str(int(START.timestamp()))
    assert headers["webhook-signature"] == signing.signature(every.secret, event_id, int(START.timestamp()),
                                                             filled.event.body)


def test_an_event_nobody_wants_is_recorded_as_skipped(harness: Harness) -> None:
    record = harness.dispatcher.publish(harness.event())
    assert record.status is EventStatus.SKIPPED
    assert harness.dispatcher.events(status=EventStatus.SKIPPED)[0].event.id == record.event.id


def test_retries_wait_on_the_clock_and_the_lane_waits_for_its_head(harness: Harness) -> None:
    harness.endpoints.add("http://a.test/hook")
    harness.transport.statuses["http://a.test/hook"] = [500, None]  # fail, time out, then succeed
    first = harness.dispatcher.publish(harness.event())
    later = harness.dispatcher.publish(harness.event())
    eventually(lambda: harness.dispatcher.event(first.event.id).deliveries[0].attempts)
    waiting = harness.dispatcher.event(first.event.id).deliveries[0]
    assert waiting.next_attempt_at == START + timedelta(seconds=10)
    assert harness.dispatcher.event(later.event.id).deliveries[0].attempts == ()  # blocked behind the head

    harness.clock.advance(timedelta(seconds=10))
    eventually(lambda: len(harness.dispatcher.event(first.event.id).deliveries[0].attempts) == 2)
    second = harness.dispatcher.event(first.event.id).deliveries[0]
    assert second.attempts[1].error == "timed out after 5 s"
    assert second.next_attempt_at == START + timedelta(seconds=30)

    harness.clock.advance(timedelta(seconds=20))
    eventually(lambda: harness.status(later.event.id) is EventStatus.SUCCEEDED)
    assert harness.transport.ids("http://a.test/hook") == [first.event.id] * 3 + [later.event.id]


def test_an_earlier_event_published_late_goes_first_unless_the_head_has_started(harness: Harness) -> None:
    harness.endpoints.add("http://a.test/hook")
    harness.transport.statuses["http://a.test/hook"] = [500]
    head = harness.dispatcher.publish(harness.event())
    eventually(lambda: harness.dispatcher.event(head.event.id).deliveries[0].attempts)  # head started, retrying
    late = harness.dispatcher.publish(harness.event(at=START + timedelta(seconds=5)))
    early = harness.dispatcher.publish(harness.event(at=START - timedelta(seconds=5)))
    harness.clock.advance(timedelta(seconds=10))
    eventually(lambda: harness.status(late.event.id) is EventStatus.SUCCEEDED)
    assert harness.transport.ids("http://a.test/hook") == [head.event.id, head.event.id, early.event.id,
                                                           late.event.id]


def test_exhausted_retries_fail_the_delivery_and_redelivery_starts_a_new_round(harness: Harness) -> None:
    endpoint = harness.endpoints.add("http://a.test/hook")
    harness.transport.statuses["http://a.test/hook"] = [500, 502, 503]
    record = harness.dispatcher.publish(harness.event())
    eventually(lambda: harness.dispatcher.event(record.event.id).deliveries[0].attempts)
    harness.clock.advance(timedelta(seconds=10))
    eventually(lambda: len(harness.dispatcher.event(record.event.id).deliveries[0].attempts) == 2)
    harness.clock.advance(timedelta(seconds=20))
    eventually(lambda: harness.status(record.event.id) is EventStatus.FAILED)
    failed = harness.dispatcher.event(record.event.id).deliveries[0]
    assert [a.status_code for a in failed.attempts] == [500, 502, 503]
    assert (failed.status, failed.next_attempt_at, failed.error) == (DeliveryStatus.FAILED, None,
                                                                     "gave up after 3 attempts")

    harness.dispatcher.redeliver(record.event.id)
    harness.dispatcher.redeliver(record.event.id)  # still pending: not sent twice
    eventually(lambda: harness.status(record.event.id) is EventStatus.SUCCEEDED)
    assert [a.number for a in harness.dispatcher.event(record.event.id).deliveries[0].attempts] == [1, 2, 3, 4]
    assert harness.transport.ids(endpoint.url).count(record.event.id) == 4


def test_jitter_is_seeded_and_bounded() -> None:
    policy = RetryPolicy((10.0, 20.0), 0.2, 5.0)
    delays = [policy.delay(1, random.Random(9)), policy.delay(2, random.Random(9))]
    assert delays == [policy.delay(1, random.Random(9)), policy.delay(2, random.Random(9))]
    assert timedelta(seconds=8) <= delays[0] <= timedelta(seconds=12)
    assert timedelta(seconds=16) <= delays[1] <= timedelta(seconds=24)
    assert policy.delay(3, random.Random(9)) is None


def test_removing_an_endpoint_fails_what_it_still_had_queued(harness: Harness) -> None:
    endpoint = harness.endpoints.add("http://a.test/hook")
    harness.transport.statuses["http://a.test/hook"] = [500]
    first = harness.dispatcher.publish(harness.event())
    second = harness.dispatcher.publish(harness.event())
    eventually(lambda: harness.dispatcher.event(first.event.id).deliveries[0].attempts)
    harness.endpoints.remove(endpoint.id)
    abandoned = harness.dispatcher.endpoint_removed(endpoint.id)
    assert [p.event_id for p in abandoned] == [first.event.id, second.event.id]
    assert harness.dispatcher.event(second.event.id).deliveries[0].error == "the endpoint was removed"
    assert harness.status(first.event.id) is EventStatus.FAILED


def test_stop_reports_pending_deliveries_and_refuses_to_lose_them_silently(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.endpoints.add("http://a.test/hook")
    harness.transport.statuses["http://a.test/hook"] = [500]
    record = harness.dispatcher.publish(harness.event())
    eventually(lambda: harness.dispatcher.event(record.event.id).deliveries[0].attempts)
    pending = harness.dispatcher.stop(60.0)  # frozen clock: the retry can never come due, so no waiting
    assert [(p.event_id, p.url, p.attempts) for p in pending] == [(record.event.id, "http://a.test/hook", 1)]
    assert record.event.id in caplog.text
    assert harness.dispatcher.stop(60.0) == pending
    late = harness.dispatcher.publish(harness.event())
    assert harness.status(late.event.id) is EventStatus.PENDING  # kept, and logged, never sent


def test_old_finished_events_are_forgotten_beyond_the_cap() -> None:
    h = Harness()
    h.dispatcher = Dispatcher(h.endpoints, h.clock, h.transport, RetryPolicy(), random.Random(1), max_events=3)
    records = [h.dispatcher.publish(h.event()) for _ in range(5)]
    assert [r.event.id for r in h.dispatcher.events()] == [r.event.id for r in reversed(records[2:])]
    h.dispatcher.stop(0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_filtered_listings_and_trimming_agree_with_a_scan_of_every_record(seed: int) -> None:
    """Events of every type; one endpoint takes fills and closed positions, another takes fills and fails some
    (their retry never comes due on the frozen clock: they and those queued behind them stay pending); alerts
    go nowhere. Each filtered listing is the unfiltered one, filtered; the cap forgets finished events first."""
    rng = random.Random(seed)
    h = Harness(schedule=(3600.0,))  # one retry, an hour away on a frozen clock: failures stay pending
    h.dispatcher = Dispatcher(h.endpoints, h.clock, h.transport, RetryPolicy((3600.0,), 0.0, 1.0), random.Random(1),
                              max_events=40)
    h.endpoints.add("http://ok.test/hook", events=["order.filled", "position.closed"])
    h.endpoints.add("http://down.test/hook", events=["order.filled"])
    h.transport.statuses["http://down.test/hook"] = [rng.choice([200, 500]) for _ in range(200)]
    try:
        for _ in range(90):
            h.dispatcher.publish(h.event(kind=rng.choice(list(EventType))))

        def settled() -> bool:
            """Every delivery to the good endpoint tried; the other one's lane stuck on a retry or done."""
            deliveries = [d for r in h.dispatcher.events(limit=1000) for d in r.deliveries]
            down = [d for d in deliveries if d.url == "http://down.test/hook"]
            return (all(d.attempts for d in deliveries if d.url == "http://ok.test/hook")
                    and (all(d.attempts for d in down)
                         or any(d.attempts and d.status is DeliveryStatus.PENDING for d in down)))

        eventually(settled)
        everything = h.dispatcher.events(limit=1000)
        assert len(everything) <= 40 + sum(r.status is EventStatus.PENDING for r in everything)
        assert [r.event.id for r in everything] == sorted((r.event.id for r in everything), reverse=True)
        for status in [None, *EventStatus]:
            for kind in [None, *EventType]:
                for limit in (1, 7, 1000):
                    expected = [r.event.id for r in everything if status in (None, r.status)
                                and kind in (None, r.event.type)][:limit]
                    found = h.dispatcher.events(status=status, event_type=kind, limit=limit)
                    assert [r.event.id for r in found] == expected, (status, kind, limit)
        assert {r.status for r in everything} >= {EventStatus.SUCCEEDED, EventStatus.PENDING}
    finally:
        h.dispatcher.stop(0)
