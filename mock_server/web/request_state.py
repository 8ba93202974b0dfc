"""The typed state of the request in hand: one `RequestState` per request, on Flask's `g`.

`web/lifecycle.py` makes it when the request begins and reads it when it finishes; in between the pipeline
(`web/routing.py`, `web/faults.py`) notes the caller and its rate-limit bucket in it, and an error's envelope
(`web/errors.py`) takes the request id from it. Nothing else about a request is kept on `g`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import g

from mock_server.domain.ratelimit import RateDecision

_KEY = "tradefence"


@dataclass(slots=True)
class RequestState:
    request_id: str  # the answer's X-Request-Id, the log line's and the journal entry's
    arrived: datetime  # on the emulator's clock: the journal entry's time
    started: float  # time.perf_counter() when it began: the log line's and the journal entry's duration
    client_id: str | None = None  # the OAuth client, once a bearer token verified (faults or authentication)
    rate: RateDecision | None = None  # that client's bucket after this request, for X-RateLimit-*
    dropped: bool = False  # an injected drop_connection fault: no answer goes out


def start_request(state: RequestState) -> None:
    setattr(g, _KEY, state)


def current_state() -> RequestState:
    """This request's state (made before any view or error handler runs)."""
    state: RequestState = getattr(g, _KEY)
    return state


def current_request_id() -> str:
    """For an error's envelope, which a request that failed before it began (none does) would still get."""
    state: RequestState | None = g.get(_KEY)
    return state.request_id if state is not None else ""
