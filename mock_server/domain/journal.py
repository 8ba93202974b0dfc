"""The request journal: the last N requests the emulator answered, for tests to verify what a client sent.

WireMock's `verify` for this API: a test drives its client, then asks the journal whether the client sent the
right request (the header, the body, the retry after a 429). Secrets are masked in every entry the journal gives
out, so it can be shown or logged without leaking a token; bodies are cut at `MAX_BODY_CHARS` so one large upload
cannot crowd the memory the bound is meant to cap. Masking (which parses each body) happens when entries are read,
not on every request: the journal is written on every request and read now and then.

Plain Python: the web layer turns a Flask request into the raw pieces `record` takes.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from mock_server.domain.patterns import PathPattern

MASK = "***"
TOO_DEEP = "(a JSON body nested too deeply to show)"
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


class _Recorded(NamedTuple):
    """A request as it came (a body over `MAX_BODY_CHARS` bytes already shown and cut, so the bound holds).

    A named tuple: immutable as a frozen dataclass and much cheaper to build, and one is made per request."""

    request_id: str
    timestamp: datetime
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes | tuple[Any, bool]
    content_type: str
    status: int | None
    operation: str | None
    duration_ms: float

    def entry(self) -> JournalEntry:
        shown, truncated = self.body if isinstance(self.body, tuple) else _body(self.body, self.content_type)
        return JournalEntry(self.request_id, self.timestamp, self.method, self.path, _query(self.query),
                            _headers(self.headers), shown, truncated, self.status, self.operation, self.duration_ms)


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """Every given criterion must hold; `path` is a client's pattern searched in the path."""

    method: str | None = None
    path: PathPattern | None = None
    operation: str | None = None
    status: int | None = None
    limit: int = 100

    def accepts(self, entry: JournalEntry | _Recorded) -> bool:
        return ((self.method is None or entry.method == self.method.upper())
                and (self.path is None or self.path.search(entry.path) is not None)
                and (self.operation is None or entry.operation == self.operation)
                and (self.status is None or entry.status == self.status))


class Journal:
    """A bounded, thread-safe record of requests: the oldest entry goes when a new one would exceed `capacity`
    (0 turns the journal off).

    Reading costs a page, not the journal: entries are also kept per method, per operation and per status, so a
    filter on any of them walks only the entries that have it (the shortest such list, when it names several).
    A `path` pattern has to be tried on each entry it is to find, so it is tried on the newest
    `PATH_SEARCH_LIMIT` entries that pass the other filters at most (all of them, at the default journal size).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._entries: deque[_Recorded] = deque()
        self._by: dict[tuple[str, object], deque[_Recorded]] = {}  # ("method", "GET") -> those entries, in order
        self._lock = threading.Lock()

    def record(self, *, request_id: str, timestamp: datetime, method: str, path: str,
               query: Iterable[tuple[str, str]], headers: Iterable[tuple[str, str]], body: bytes,
               content_type: str, status: int | None, operation: str | None, duration_ms: float) -> None:
        """Store one request, to be masked when read (a no-op when the journal is off)."""
        if self.capacity == 0:
            return
        kept = body if len(body) <= MAX_BODY_CHARS else _body(body, content_type)
        recorded = _Recorded(request_id, timestamp, method.upper(), path, tuple(query), tuple(headers), kept,
                             content_type, status, operation, round(duration_ms, 3))
        with self._lock:
            if len(self._entries) == self.capacity:
                oldest = self._entries.popleft()
                for key in _keys(oldest):  # the oldest entry is also the oldest of each of its lists
                    alike = self._by[key]
                    alike.popleft()
                    if not alike:
                        del self._by[key]
            self._entries.append(recorded)
            for key in _keys(recorded):
                self._by.setdefault(key, deque()).append(recorded)

    def entries(self, wanted: JournalFilter | None = None) -> list[JournalEntry]:
        """Newest first, at most `wanted.limit`."""
        wanted = wanted or JournalFilter()
        named = [key for key in (("method", None if wanted.method is None else wanted.method.upper()),
                                 ("operation", wanted.operation), ("status", wanted.status)) if key[1] is not None]
        others = dataclasses.replace(wanted, path=None)
        found: list[_Recorded] = []
        searched = 0
        with self._lock:
            candidates: Sequence[_Recorded] = min((self._by.get(key, ()) for key in named), key=len,
                                                  default=self._entries)
            for recorded in reversed(candidates):
                if not others.accepts(recorded):
                    continue
                if wanted.path is not None:
                    searched += 1
                    if searched > PATH_SEARCH_LIMIT:
                        break
                    if wanted.path.search(recorded.path) is None:
                        continue
                found.append(recorded)
                if len(found) == wanted.limit:
                    break
        return [recorded.entry() for recorded in found]  # masking (parsing bodies) outside the lock

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._by.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


PATH_SEARCH_LIMIT = 10_000


def _keys(recorded: _Recorded) -> tuple[tuple[str, object], ...]:
    return ("method", recorded.method), ("operation", recorded.operation), ("status", recorded.status)


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
        except RecursionError:  # nested past what the parser (or masking) can walk: not shown, so nothing leaks
            shown = TOO_DEEP
    elif kind == "application/x-www-form-urlencoded":
        shown = masked(dict(parse_qsl(text, keep_blank_values=True)))
    else:
        shown = text
    size = len(shown) if isinstance(shown, str) else len(json.dumps(shown))
    if size <= MAX_BODY_CHARS:
        return shown, False
    serialized = shown if isinstance(shown, str) else json.dumps(shown)
    return serialized[:MAX_BODY_CHARS], True

