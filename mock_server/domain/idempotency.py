"""`Idempotency-Key` records: which keys an account has used, with which request, and what was answered.

The spec promises: kept 24 hours per account; the same key and body replay the stored response; the same key
with another body gets `4022`; a key whose first request is still running gets `4009`. Retention is measured on
the emulator's `Clock`, so a test can advance time past the 24 hours instead of waiting for them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode

_DEFAULT_SWEEP_AT = 1_000


@dataclass(frozen=True)
class StoredResponse:
    """The response exactly as first sent, so a replay is byte-for-byte the same (the web layer adds
    `Idempotent-Replayed: true`)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class IdempotencyRecords(Protocol):
    """Where completed records are written through with ``--state`` (before the response is sent). Claims still
    in flight are not: after a restart the key is free again, as if the first request had been abandoned."""

    def save_idempotent(self, scope: str, key: str, fingerprint: str, expires_at: datetime,
                        response: StoredResponse) -> None: ...

    def drop_idempotent(self, keys: Sequence[tuple[str, str]] | None) -> None: ...  # None: every record


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    expires_at: datetime
    response: StoredResponse | None  # None while the first request is in flight


class IdempotencyStore:
    """Thread-safe key records per scope (the account id).

    Protocol: ``begin`` before doing the work; if it returns ``None`` the caller owns the key and must end with
    ``complete`` (store the answer) or ``abandon`` (e.g. a 5xx: release the key so a retry runs again), in a
    ``finally`` so a crash cannot leave the key in flight. A completed record is kept for ``ttl`` after
    completion; an in-flight one that is never completed or abandoned expires ``ttl`` after ``begin``.
    Expired records are forgotten lazily: the key being asked about on each call, and a full sweep whenever the
    table doubles, so memory follows the live records.
    """

    def __init__(self, clock: Clock, ttl: timedelta = timedelta(hours=24), *,
                 sweep_at: int = _DEFAULT_SWEEP_AT) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._clock = clock
        self._ttl = ttl
        self._min_sweep_at = max(sweep_at, 1)
        self._sweep_at = self._min_sweep_at
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._store: IdempotencyRecords | None = None

    def persist_with(self, store: IdempotencyRecords) -> None:
        """Write every later completed record (and every forgotten one) through to ``store``."""
        with self._lock:
            self._store = store

    def restore(self, scope: str, key: str, fingerprint: str, expires_at: datetime, response: StoredResponse) -> None:
        """Put back a completed record read from a state file (expired ones are simply not restored)."""
        with self._lock:
            if expires_at > self._clock.now():
                self._entries[(scope, key)] = _Entry(fingerprint, expires_at, response)

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        """SHA-256 over method, path and the exact body bytes: reusing a key on another endpoint is a mismatch.

        Bodies are compared byte for byte, as the spec says "same body"; a caller wanting JSON-insensitive
        comparison can pass a canonical serialization instead.
        """
        digest = hashlib.sha256()
        for part in (method.upper().encode(), path.encode()):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        digest.update(body)
        return digest.hexdigest()

    def begin(self, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
        """Claim ``key`` (None: proceed) or get the stored response to replay; 4022 on another body, 4009 in flight.

        A different body wins over in-flight: it is the client's mistake and retrying would not fix it.
        """
        now = self._clock.now()
        with self._lock:
            entry = self._live(scope, key, now)
            if entry is None:
                if len(self._entries) >= self._sweep_at:
                    self._sweep(now)
                self._entries[(scope, key)] = _Entry(fingerprint, now + self._ttl, None)
                return None
            if entry.fingerprint != fingerprint:
                raise ApiError(ErrorCode.IDEMPOTENCY_MISMATCH,
                               f"Idempotency-Key {key!r} was already used with a different request",
                               field="Idempotency-Key")
            if entry.response is None:
                raise ApiError(ErrorCode.IDEMPOTENCY_IN_FLIGHT,
                               f"A request with Idempotency-Key {key!r} is still in progress",
                               field="Idempotency-Key")
            return entry.response

    def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        """Store the answer for replays; a no-op if the claim is gone (a reset or expiry during the request)."""
        now = self._clock.now()
        with self._lock:
            entry = self._live(scope, key, now)
            if entry is not None and entry.response is None:
                entry.response = response
                entry.expires_at = now + self._ttl
                if self._store is not None:
                    self._store.save_idempotent(scope, key, entry.fingerprint, entry.expires_at, response)

    def abandon(self, scope: str, key: str) -> None:
        """Release an in-flight claim without storing anything; a completed record is left alone."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.response is None:
                del self._entries[(scope, key)]

    def reset(self, scope: str | None = None) -> None:
        """Forget one account's keys, or every key (the emulator's reset endpoint)."""
        with self._lock:
            if scope is None:
                self._entries.clear()
                self._sweep_at = self._min_sweep_at
                if self._store is not None:
                    self._store.drop_idempotent(None)
            else:
                dropped = [k for k in self._entries if k[0] == scope]
                for entry_key in dropped:
                    del self._entries[entry_key]
                self._forget(dropped)

    def __len__(self) -> int:
        """Records held, expired ones included until swept; exposed so tests can check the memory bound."""
        with self._lock:
            return len(self._entries)

    def _live(self, scope: str, key: str, now: datetime) -> _Entry | None:
        """The record for (scope, key) unless it expired, in which case it is dropped; caller holds the lock."""
        entry = self._entries.get((scope, key))
        if entry is not None and entry.expires_at <= now:
            del self._entries[(scope, key)]
            if entry.response is not None:
                self._forget([(scope, key)])
            return None
        return entry

    def _sweep(self, now: datetime) -> None:
        expired = [k for k, entry in self._entries.items() if entry.expires_at <= now]
        for entry_key in expired:
            del self._entries[entry_key]
        self._forget(expired)
        self._sweep_at = max(self._min_sweep_at, 2 * len(self._entries))

    def _forget(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys and self._store is not None:
            self._store.drop_idempotent(keys)
