"""Rate-limit headers that mean what they say: `Remaining` falls as requests use the bucket up.

That `X-RateLimit-*` come on every `/v1` answer (the spec marks them required) is checked on every response the
run gets, and by the tour of every operation (`test_tour.py`); that every `429` carries `Retry-After`, by the
run's polite transport on every one it meets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from contracts.checking import CheckedSession, violation
from contracts.control import ControlPlane
from contracts.targets import Target

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
UNKNOWN_ORDER = "ord_00000000000000000000000000"
BURST = 60  # requests at most: enough to outrun a 20/s refill from 8 threads, few on a real account
FALL = 3  # Remaining must fall at least this much during the burst


def rate_headers(response: requests.Response, operation: str) -> tuple[int, int, int]:
    values = []
    for name in RATE_HEADERS:
        value = response.headers.get(name)
        if value is None or not value.isdigit():
            raise violation(operation, f"{name} on every /v1 answer", response, f"{name} is {value!r}")
        values.append(int(value))
    limit, remaining, reset = values
    if remaining > limit:
        raise violation(operation, "X-RateLimit-Remaining within the limit", response, f"{remaining} > {limit}")
    return limit, remaining, reset


@pytest.fixture
def bucket(tradefence_target: Target) -> Iterator[None]:
    """A bucket that can be seen to empty: the in-process emulator's is lifted out of the suite's way, so narrow it
    for the test where a control plane can (and restore it); elsewhere the target's own limit is used."""
    plane: ControlPlane | None = tradefence_target.control_plane()
    if plane is None:
        yield
        return
    previous = plane.rate_limit(100, 5.0)
    try:
        yield
    finally:
        plane.rate_limit(previous["capacity"], previous["refill_per_second"])
        plane.close()


def burst(api: CheckedSession) -> tuple[list[int], requests.Response]:
    """GET /market/clock from 8 threads until Remaining has fallen by `FALL`, a 429 comes, or `BURST` were sent:
    what Remaining said, and the last answer."""
    remaining: list[int] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(BURST // 8):
            for response in pool.map(lambda _: api.get("/market/clock"), range(8)):
                if response.status_code == 429:
                    return remaining, response
                limit, left, _ = rate_headers(response, "getMarketClock")
                if left > limit - 1:
                    raise violation("getMarketClock", "Remaining falls with use", response,
                                    f"{left} of {limit} remain after a request that counts")
                remaining.append(left)
            if remaining[0] - min(remaining) >= FALL:
                break
    return remaining, response


@pytest.mark.usefixtures("bucket")
def test_remaining_falls_with_use(tradefence_impatient_api: CheckedSession) -> None:
    """A request that counts leaves at most `Limit - 1`, and a burst faster than the refill makes `Remaining`
    fall (or ends in a 429, the bucket empty). At most `BURST` requests."""
    started = time.monotonic()
    remaining, last = burst(tradefence_impatient_api)
    if last.status_code != 429 and remaining[0] - min(remaining) < FALL:
        raise violation("getMarketClock", "Remaining falls with use", last,
                        f"X-RateLimit-Remaining over {len(remaining)} requests in {time.monotonic() - started:.2f} s: "
                        f"{remaining[:12]}")
