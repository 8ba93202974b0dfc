"""The request journal: the last N requests the emulator answered, for tests to verify what a client sent.

WireMock's `verify` for this API: a test drives its client, then asks the journal whether the client sent the
right request (the header, the body, the retry after a 429). Secrets are masked before an entry is stored, so the
journal can be shown or logged without leaking a token; bodies are cut at `MAX_BODY_CHARS` so one large upload
cannot crowd the memory the bound is meant to cap.

Plain Python: the web layer turns a Flask request into the raw pieces `record` takes.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

MASK = "***"
MAX_BODY_CHARS = 64 * 1024
SECRET_FIELDS = frozenset({"client_secret", "code", "refresh_token", "access_token", "code_verifier", "secret",
                           "password", "token"})
SECRET_HEADERS = frozenset({"cookie", "set-cookie", "proxy-authorization", "x-api-key"})


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request and the status it got (None: the connection was dropped without an answer)."""

    request_id: str
    timestamp: datetime
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    body_truncated: bool
    status: int | None
    operation: str | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """Every given criterion must hold; `path` is a regular expression searched in the path."""

    method: str | None = None
    path: re.Pattern[str] | None = None
    operation: str | None = None
    status: int | None = None
    limit: int = 100

    def accepts(self, entry: JournalEntry) -> bool:
        return ((self.method is None or entry.method == self.method.upper())
                and (self.path is None or self.path.search(entry.path) is not None)
                and (self.operation is None or entry.operation == self.operation)
                and (self.status is None or entry.status == self.status))


class Journal:
    """A bounded, thread-safe record of requests: the oldest entry goes when a new one would exceed `capacity`
    (0 turns the journal off)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def record(self, *, request_id: str, timestamp: datetime, method: str, path: str,
               query: Iterable[tuple[str, str]], headers: Iterable[tuple[str, str]], body: bytes,
               content_type: str, status: int | None, operation: str | None, duration_ms: float) -> None:
        """Mask and store one request (a no-op when the journal is off)."""
        if self.capacity == 0:
            return
        shown, truncated = _body(body, content_type)
        entry = JournalEntry(request_id, timestamp, method.upper(), path, _query(query), _headers(headers), shown,
                             truncated, status, operation, round(duration_ms, 3))
        with self._lock:
            self._entries.append(entry)

    def entries(self, wanted: JournalFilter | None = None) -> list[JournalEntry]:
        """Newest first, at most `wanted.limit`."""
        wanted = wanted or JournalFilter()
        with self._lock:
            snapshot = list(self._entries)
        found = []
        for entry in reversed(snapshot):
            if wanted.accepts(entry):
                found.append(entry)
                if len(found) == wanted.limit:
                    break
        return found

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def mask_value(name: str, value: Any) -> Any:
    """A secret field's value becomes `***`; objects and lists are masked all the way down."""
    if name.lower() in SECRET_FIELDS and value not in (None, ""):
        return MASK
    return masked(value)


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: mask_value(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def _query(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name, value in pairs:
        query.setdefault(name, []).append(mask_value(name, value))
    return query


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        lowered = name.lower()
        if lowered == "authorization":
            scheme, _, credentials = value.partition(" ")
            value = f"{scheme} {MASK}" if credentials else MASK
        elif lowered in SECRET_HEADERS:
            value = MASK
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _body(raw: bytes, content_type: str) -> tuple[Any, bool]:
    """JSON as JSON, a form as an object of strings, anything else as text; masked, then cut to size."""
    if not raw:
        return None, False
    kind = content_type.split(";")[0].strip().lower()
    shown: Any
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
    if kind == "application/json" or kind.endswith("+json"):
        try:
            shown = masked(json.loads(text))
        except ValueError:
            shown = text
    elif kind == "application/x-www-form-urlencoded":
        shown = masked(dict(parse_qsl(text, keep_blank_values=True)))
    else:
        shown = text
    size = len(shown) if isinstance(shown, str) else len(json.dumps(shown))
    if size <= MAX_BODY_CHARS:
        return shown, False
    serialized = shown if isinstance(shown, str) else json.dumps(shown)
    return serialized[:MAX_BODY_CHARS], True

