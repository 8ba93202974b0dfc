"""Injected faults: latency, forced errors, 5xx, dropped connections and stream disconnects, on demand.

A client's retry, timeout and back-off code is only as good as the failures it was tested against; these let a
test provoke each failure on exactly the operation it cares about (WireMock's fault injection, Toxiproxy's
toxics), instead of hoping a real sandbox misbehaves.

Plain Python: the web layer asks `take` what to do with each API request and applies the answer (sleeps, renders
the error, closes the socket); the market-data stream asks `stream_disconnect_after` once per connection.

Choices:

- A fault is scoped by operation id, by a regular expression (RE2 syntax) searched in the request path, by
  both, or by neither (every API operation). Stream faults (`stream_disconnect_after`) apply to market-data
  connections only.
- Faults are evaluated in creation order. Every matching fault with latency adds it; the first matching fault
  that forces an outcome (an error code, a 5xx or a dropped connection) decides the outcome, and later ones are
  not evaluated for that request (they neither draw nor use up their count).
- A fault "fires" when it matches and its probability draw succeeds; only then does its `count` go down. At zero
  it expires and disappears.
- Each fault draws from its own generator, seeded with the emulator's seed and the fault's ordinal (the n-th
  fault created since start), so the same seed, the same faults and the same requests give the same outcomes,
  whatever other faults see.
- An outcome is only ever forced on an operation whose documented responses include its status (the caller says
  which via `forcible`), so a forced response is always one the spec describes. A fault naming an operation
  that cannot answer with its status is refused when created; a path or global fault skips such operations.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from mock_server.domain.clock import Clock
from mock_server.domain.errors import ApiError, ErrorCode
from mock_server.domain.patterns import PathPattern, PatternCompiler

FORCIBLE_STATUSES = (500, 502, 503)
MAX_LATENCY_MS = 60_000
MAX_FAULTS = 100  # active at once: every API request is matched against each, so a client's faults stay few


class FaultError(ApiError):
    """A fault that cannot be created; `field` names the offending input."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(ErrorCode.INVALID_REQUEST, message, field=field)


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """What to inject, where, how often. At least one effect: latency, one outcome, or a stream disconnect."""

    operation: str | None = None
    path: str | None = None
    latency_ms: int = 0
    error_code: ErrorCode | None = None
    status: int | None = None
    drop_connection: bool = False
    stream_disconnect_after: int | None = None
    message: str | None = None
    retry_after: int | None = None
    count: int | None = None
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Fault:
    """An active fault as the control plane shows it: the request, plus how often it fired and what is left."""

    id: str
    request: FaultRequest
    created_at: datetime
    applied: int = 0
    remaining: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A forced answer: an error envelope with `code` at `status` (`status` differs from the code's own for 502),
    or no answer at all (`drop_connection`)."""

    fault_id: str
    drop_connection: bool = False
    code: ErrorCode | None = None
    status: int | None = None
    message: str = ""
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Injection:
    """What to do to one request: wait `latency_ms` real milliseconds, then answer `outcome` (None: carry on)."""

    latency_ms: int = 0
    outcome: Outcome | None = None
    fault_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.fault_ids


NO_INJECTION = Injection()


@dataclass(slots=True)
class _Active:
    fault: Fault
    pattern: PathPattern | None
    random: random.Random = field(repr=False)


class Faults:
    """The active faults of one emulator; thread-safe."""

    def __init__(self, seed: int, clock: Clock, new_id: Callable[[str], str], compile_pattern: PatternCompiler) -> None:
        """`compile_pattern` compiles each fault's `path` (RE2 in the emulator: a client's pattern must not be
        able to make a search backtrack)."""
        self._seed = seed
        self._clock = clock
        self._new_id = new_id
        self._compile_pattern = compile_pattern
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._created = 0

    # -- control plane ------------------------------------------------------------------------------------------

    def add(self, request: FaultRequest, forcible: Mapping[str, frozenset[int]]) -> Fault:
        """Create a fault. `forcible` maps every API operation id to the statuses it documents an error envelope
        for; an `operation` outside it, or one that cannot answer with the fault's status, is refused."""
        pattern = _check(request, forcible, self._compile_pattern)
        with self._lock:
            if len(self._active) >= MAX_FAULTS:
                raise ApiError(ErrorCode.INVALID_REQUEST, f"At most {MAX_FAULTS} faults can be active at once: "
                               "delete some first (DELETE /_mock/faults/{faultId}, or DELETE /_mock/faults)")
            self._created += 1
            fault = Fault(self._new_id("flt"), request, self._clock.now(), remaining=request.count)
            generator = random.Random(f"faults:{self._seed}:{self._created}")
            self._active[fault.id] = _Active(fault, pattern, generator)
        return fault

    def all(self) -> list[Fault]:
        with self._lock:
            return [active.fault for active in self._active.values()]

    def remove(self, fault_id: str) -> Fault:
        with self._lock:
            active = self._active.pop(fault_id, None)
        if active is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"No fault {fault_id} (it may have expired)")
        return active.fault

    def clear(self) -> int:
        with self._lock:
            count = len(self._active)
            self._active.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._active)

    # -- the request path ---------------------------------------------------------------------------------------

    def take(self, operation_id: str, path: str, forcible: frozenset[int]) -> Injection:
        """What to inject into one request for `operation_id` at `path` (fires, counts down and expires faults).

        `forcible` is the statuses at which this operation documents the error envelope."""
        latency = 0
        outcome: Outcome | None = None
        fired: list[str] = []
        with self._lock:
            if not self._active:
                return NO_INJECTION
            for active in list(self._active.values()):
                request = active.fault.request
                if request.stream_disconnect_after is not None or not _matches(active, operation_id, path):
                    continue
                forces = _forced_status(request)
                decides = forces is not None or request.drop_connection
                if (decides and outcome is not None) or (forces is not None and forces not in forcible):
                    continue  # the outcome is decided already, or this operation cannot answer with it
                if not self._fire(active):
                    continue
                fired.append(active.fault.id)
                latency += request.latency_ms
                if decides:
                    outcome = _outcome(active.fault.id, request)
        return Injection(min(latency, MAX_LATENCY_MS), outcome, tuple(fired))

    def stream_disconnect_after(self) -> int | None:
        """For a new market-data connection: after how many messages to cut it (None: never).

        Call once per connection; a firing fault counts down like any other."""
        with self._lock:
            for active in list(self._active.values()):
                after = active.fault.request.stream_disconnect_after
                if after is not None and self._fire(active):
                    return after
        return None

    def _fire(self, active: _Active) -> bool:
        """Draw the fault's probability; on success count it down (expiring it at zero). Under the lock."""
        request = active.fault.request
        if request.probability < 1 and active.random.random() >= request.probability:
            return False
        fault = active.fault
        remaining = None if fault.remaining is None else fault.remaining - 1
        active.fault = replace(fault, applied=fault.applied + 1, remaining=remaining)
        if remaining == 0:
            del self._active[fault.id]
        return True


def _matches(active: _Active, operation_id: str, path: str) -> bool:
    request = active.fault.request
    if request.operation is not None and request.operation != operation_id:
        return False
    return active.pattern is None or active.pattern.search(path) is not None


def _forced_status(request: FaultRequest) -> int | None:
    if request.error_code is not None:
        return request.error_code.status
    return request.status


def _outcome(fault_id: str, request: FaultRequest) -> Outcome:
    if request.drop_connection:
        return Outcome(fault_id, drop_connection=True)
    if request.error_code is not None:
        code, status = request.error_code, request.error_code.status
    else:
        status = request.status or 500
        code = ErrorCode.SERVICE_UNAVAILABLE if status == 503 else ErrorCode.INTERNAL_ERROR
    retry_after = request.retry_after
    if code is ErrorCode.RATE_LIMIT_EXCEEDED and retry_after is None:
        retry_after = 1  # 2001 always says when to come back
    return Outcome(fault_id, code=code, status=status, message=request.message or _MESSAGES.get(status, _DEFAULT),
                   retry_after=retry_after)


_DEFAULT = "Injected fault"
_MESSAGES = {
    429: "Rate limit exceeded (injected fault)",
    500: "Internal error (injected fault)",
    502: "Bad gateway: the upstream did not answer (injected fault)",
    503: "Service unavailable (injected fault)",
}


def _check(request: FaultRequest, forcible: Mapping[str, frozenset[int]],
           compile_pattern: PatternCompiler) -> PathPattern | None:
    """Refuse what could never be applied or would break the spec; return the compiled path pattern."""
    outcomes = [name for name, present in (("error_code", request.error_code is not None),
                                           ("status", request.status is not None),
                                           ("drop_connection", request.drop_connection)) if present]
    if len(outcomes) > 1:
        raise FaultError(f"A fault forces one outcome; {outcomes[0]} and {outcomes[1]} were both given", outcomes[1])
    if request.stream_disconnect_after is not None:
        for name in ("operation", "path", "latency_ms", "retry_after", "message", *outcomes):
            if getattr(request, name) not in (None, 0, False):
                raise FaultError(f"stream_disconnect_after applies to market-data connections; {name} cannot go "
                                 "with it", name)
        return None
    if not outcomes and not request.latency_ms:
        raise FaultError("A fault needs an effect: latency_ms, error_code, status, drop_connection or "
                         "stream_disconnect_after", "latency_ms")
    if request.status is not None and request.status not in FORCIBLE_STATUSES:
        raise FaultError(f"status must be one of {', '.join(map(str, FORCIBLE_STATUSES))}", "status")
    if request.latency_ms < 0 or request.latency_ms > MAX_LATENCY_MS:
        raise FaultError(f"latency_ms must be between 0 and {MAX_LATENCY_MS}", "latency_ms")
    if not 0 < request.probability <= 1:
        raise FaultError("probability must be above 0 and at most 1", "probability")
    if request.count is not None and request.count < 1:
        raise FaultError("count must be at least 1", "count")
    if request.retry_after is not None and _forced_status(request) not in (429, 503):
        raise FaultError("retry_after goes with error_code 2001 or status 503", "retry_after")
    if request.message is not None and not (request.error_code is not None or request.status is not None):
        raise FaultError("message goes with error_code or status", "message")
    if request.operation is not None:
        statuses = forcible.get(request.operation)
        if statuses is None:
            raise FaultError(f"Unknown API operation {request.operation!r} (faults never apply to /_mock)",
                             "operation")
        status = _forced_status(request)
        if status is not None and status not in statuses:
            name = "error_code" if request.error_code is not None else "status"
            raise FaultError(f"{request.operation} documents no {status} response, so it cannot be forced there "
                             f"(it documents {', '.join(map(str, sorted(statuses))) or 'none'})", name)
    if request.path is None:
        return None
    try:
        return compile_pattern(request.path)
    except ValueError as exc:
        raise FaultError(f"path is {exc}", "path") from None
