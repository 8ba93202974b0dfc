"""Registered webhook endpoints: a URL, its ``whsec_`` secret and an optional filter of event types."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.ids import IdGenerator
from mock_server.domain.webhooks.events import EventType
from mock_server.domain.webhooks.signing import check_secret, new_secret

# Registered through the control plane at once: every event is sent to each (a delivery lane, with a thread, per
# endpoint), so what a client registers stays bounded. Configured endpoints do not count.
MAX_REGISTERED = 100


class EndpointSource(StrEnum):
    CONFIG = "config"  # from the config file or TRADEFENCE_WEBHOOK_URL: survives a reset
    CONTROL = "control"  # registered through /_mock/webhooks: a reset removes it


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    events: frozenset[EventType] | None  # None: every event type
    created_at: datetime
    source: EndpointSource

    def wants(self, event_type: EventType) -> bool:
        return self.events is None or event_type in self.events


def check_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("a webhook URL is an absolute http:// or https:// URL with a host")
    return url


def check_events(events: Iterable[str]) -> frozenset[EventType]:
    """The filter as event types; raise ValueError naming an unknown one or an empty list."""
    chosen = set()
    for name in events:
        try:
            chosen.add(EventType(name))
        except ValueError:
            raise ValueError(f"unknown event type {name!r} (known: {', '.join(EventType)})") from None
    if not chosen:
        raise ValueError("an event filter names at least one event type (leave it out for all of them)")
    return frozenset(chosen)


class EndpointStore(Protocol):
    """Where endpoints are written through with ``--state`` (under the registry's lock)."""

    def save_endpoint(self, endpoint: Endpoint) -> None: ...

    def drop_endpoint(self, endpoint_id: str) -> None: ...


class EndpointRegistry:
    """Thread-safe set of endpoints in registration order; secrets it makes come from the seeded ``rng``."""

    def __init__(self, ids: IdGenerator, clock: Clock, rng: random.Random) -> None:
        self._ids = ids
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._store: EndpointStore | None = None

    def persist_with(self, store: EndpointStore) -> None:
        """Write every later registration and removal through to ``store`` (once, after ``restore``)."""
        with self._lock:
            self._store = store

    def restore(self, saved: Sequence[Endpoint]) -> None:
        """Take back the endpoints a state file kept, in registration order.

        Control-plane endpoints come back as they were. A configured endpoint comes back with its saved id (so
        its delivery history still links up) when the configuration still has it with the same url, secret and
        filter; the configuration decides which configured endpoints exist, and a saved one it no longer lists
        is dropped.
        """
        with self._lock:
            unused = [e for e in saved if e.source is EndpointSource.CONFIG]
            restored: dict[str, Endpoint] = {}
            for current in self._endpoints.values():
                match = next((e for e in unused if (e.url, e.secret, e.events) ==
                              (current.url, current.secret, current.events)), None)
                if match is not None:
                    unused.remove(match)
                chosen = match or current
                restored[chosen.id] = chosen
            for endpoint in saved:
                if endpoint.source is EndpointSource.CONTROL:
                    restored[endpoint.id] = endpoint
            self._endpoints = restored

    def add(self, url: str, *, secret: str | None = None, events: Iterable[str] | None = None,
            source: EndpointSource = EndpointSource.CONTROL) -> Endpoint:
        """Register an endpoint; a bad url, secret or filter is ``4000`` naming the field."""
        checked_events: frozenset[EventType] | None = None
        try:
            check_url(url)
        except ValueError as exc:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"url: {exc}", field="url") from None
        if secret is not None:
            try:
                check_secret(secret)
            except ValueError as exc:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"secret: {exc}", field="secret") from None
        if events is not None:
            try:
                checked_events = check_events(events)
            except ValueError as exc:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"events: {exc}", field="events") from None
        with self._lock:
            registered = sum(1 for e in self._endpoints.values() if e.source is EndpointSource.CONTROL)
            if source is EndpointSource.CONTROL and registered >= MAX_REGISTERED:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"At most {MAX_REGISTERED} webhook endpoints can be "
                               "registered at once: delete some first (DELETE /_mock/webhooks/{endpointId})")
            endpoint = Endpoint(id=self._ids.new("we"), url=url, secret=secret or new_secret(self._rng),
                                events=checked_events, created_at=self._clock.now(), source=source)
            self._endpoints[endpoint.id] = endpoint
            if self._store is not None:
                self._store.save_endpoint(endpoint)
        return endpoint

    def remove(self, endpoint_id: str) -> Endpoint:
        with self._lock:
            endpoint = self._endpoints.pop(endpoint_id, None)
            if endpoint is not None and self._store is not None:
                self._store.drop_endpoint(endpoint_id)
        if endpoint is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No webhook endpoint {endpoint_id}")
        return endpoint

    def get(self, endpoint_id: str) -> Endpoint | None:
        with self._lock:
            return self._endpoints.get(endpoint_id)

    def all(self) -> list[Endpoint]:
        with self._lock:
            return list(self._endpoints.values())

    def reset(self) -> list[Endpoint]:
        """Drop the endpoints registered through the control plane; return them."""
        with self._lock:
            dropped = [e for e in self._endpoints.values() if e.source is EndpointSource.CONTROL]
            for endpoint in dropped:
                del self._endpoints[endpoint.id]
                if self._store is not None:
                    self._store.drop_endpoint(endpoint.id)
        return dropped
