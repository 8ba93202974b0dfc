"""The suite's one way onto the wire: every request it sends — its own and schemathesis's — goes through
`TargetAdapter`, which is polite (it waits out `429` and `503`), guarded (a check may refuse to send a request)
and observed (what comes back is shown to the run: orders it created, tokens to mask, token-lifetime drift).

Politeness follows the integration guide and RFC 9110 §10.2.3: wait what `Retry-After` says (seconds or an HTTP
date); without it, exponential back-off with full jitter (a uniform draw below a doubling, capped ceiling), all
within one wait budget per run. Waiting is never drift. A `429` without `Retry-After` is (the spec promises one),
and a spent budget is reported as exactly that. A `503` is retried only when resending cannot act twice (an
idempotent method, or an `Idempotency-Key`); a `429` always, since the target refused it unprocessed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import websocket
from requests.adapters import HTTPAdapter

from contracts.checking import ContractViolation, request_path, violation

RETRY_STATUSES = (429, 503)
IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
DEFAULT_WAIT_BUDGET = 600.0


class WaitBudgetExhausted(AssertionError):
    """Not drift: the target kept refusing for longer than this run may wait (`--contract-wait-budget`)."""


@dataclass(frozen=True)
class Wait:
    """One wait before a resend: which request, what refused it, what it said, how long the suite waited."""

    what: str
    status: int
    retry_after: str | None
    seconds: float


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3); None if absent or
    unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


@dataclass
class Politeness:
    """How the run waits, and what it waited: every wait is drawn from one seeded generator and counted against
    one budget, so a run's waiting is reproducible and bounded."""

    budget: float = DEFAULT_WAIT_BUDGET
    seed: int = 0
    base: float = 0.5  # the first back-off ceiling, in seconds, when the target names no wait
    cap: float = 30.0  # the largest back-off ceiling
    max_retries: int = 10  # resends of one request before its last answer stands
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    waits: list[Wait] = field(default_factory=list)
    retried: int = 0  # requests resent at least once
    reserve: float = 0.0  # seconds allowed beyond the budget (the run's cleanup)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def waited(self) -> float:
        return sum(wait.seconds for wait in self.waits)

    def wait(self, what: str, status: int, retry_after: str | None, attempt: int) -> None:
        """Wait before resend number `attempt + 1` of a refused request, or raise if the budget cannot cover it."""
        seconds = parse_retry_after(retry_after, self.now())
        if seconds is None:
            seconds = self._random.uniform(0, min(self.cap, self.base * 2**attempt))
        if self.waited + seconds > self.budget + self.reserve:
            raise WaitBudgetExhausted(
                f"[{what}] wait budget exhausted: the target answered {status} (Retry-After: {retry_after or 'none'})"
                f" after {self.waited:.1f} s of waiting in this run; the budget is {self.budget:.0f} s "
                "(--contract-wait-budget). Not drift: the target was busier than the run may wait for.")
        if attempt == 0:
            self.retried += 1
        self.waits.append(Wait(what, status, retry_after, seconds))
        self.sleep(seconds)

    def summary(self) -> str:
        if not self.waits:
            return "no request was refused (429/503); nothing retried"
        statuses = sorted({wait.status for wait in self.waits})
        return (f"{self.retried} requests retried after {'/'.join(map(str, statuses))} ({len(self.waits)} waits), "
                f"waited {self.waited:.1f} s of the {self.budget:.0f} s budget")


def describe(request: requests.PreparedRequest) -> str:
    return f"{request.method} {request_path(request)}"


def resendable(request: requests.PreparedRequest, status: int) -> bool:
    if status == 429:
        return True
    return (request.method or "GET").upper() in IDEMPOTENT_METHODS or "Idempotency-Key" in request.headers


class TargetAdapter(HTTPAdapter):
    """A `requests` transport adapter that waits out refusals politely; `guard` sees each request before it is
    sent (and may raise to stop it), `observe` each final answer. Mount it on every session that talks to the
    target (`session.mount("https://", adapter)`), schemathesis's included."""

    def __init__(self, politeness: Politeness, *, guard: Callable[[requests.PreparedRequest], None] | None = None,
                 observe: Callable[[requests.Response], None] | None = None,
                 describe: Callable[[requests.PreparedRequest], str] = describe, patient: bool = True,
                 verify: str | bool | None = None) -> None:
        super().__init__()
        self.politeness = politeness
        self.patient = patient  # False: every refusal is handed back at once (for tests that provoke them)
        # The run's CA, whatever the session says: requests lets REQUESTS_CA_BUNDLE override a session's `verify`.
        self._verify = verify
        self._guard = guard
        self._observe = observe
        self._describe = describe

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self._guard is not None:
            self._guard(request)
        if self._verify is not None:
            kwargs["verify"] = self._verify
        attempt = 0
        while True:
            response = super().send(request, *args, **kwargs)
            status = response.status_code
            if not self.patient or status not in RETRY_STATUSES or attempt >= self.politeness.max_retries \
                    or not resendable(request, status):
                break
            _ = response.content  # read it all: the connection goes back to the pool, the text into any report
            retry_after = response.headers.get("Retry-After")
            if status == 429 and not retry_after:
                raise violation(self._describe(request), "429 carries Retry-After", response,
                                "a 429 must say when to retry (Retry-After), as the spec's TooManyRequests does")
            response.close()
            self.politeness.wait(self._describe(request), status, retry_after, attempt)
            attempt += 1
        if self._observe is not None:
            self._observe(response)
        return response


def connect_stream(url: str, politeness: Politeness, *, header: list[str] | None = None, timeout: float = 10,
                   sslopt: Mapping[str, Any] | None = None) -> websocket.WebSocket:
    """Open the market-data websocket, waiting out a handshake refused with 429/503 as HTTP requests do."""
    attempt = 0
    while True:
        try:
            return websocket.create_connection(url, timeout=timeout, header=header or [], sslopt=dict(sslopt or {}))
        except websocket.WebSocketBadStatusException as exc:
            status = exc.status_code
            if status not in RETRY_STATUSES or attempt >= politeness.max_retries:
                raise
            headers = {name.lower(): value for name, value in (exc.resp_headers or {}).items()}
            retry_after = headers.get("retry-after")
            if status == 429 and not retry_after:
                raise ContractViolation("market-data", "429 carries Retry-After",
                                        "a refused handshake must say when to retry (Retry-After)",
                                        f"{status} without Retry-After", f"websocat {url}") from None
            politeness.wait(f"GET {urlsplit(url).path}", status, retry_after, attempt)
            attempt += 1
