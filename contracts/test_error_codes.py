"""Every documented error code, provoked on purpose, with its envelope and headers checked.

1001 bad or expired token · 1002 oversized buy · 1003 closed market · 1004 unknown symbol · 2001 burst.
"""

from __future__ import annotations

import time

import pytest
import requests

from contracts.checking import CheckedSession, violation
from contracts.control import ControlPlane
from contracts.credentials import code_flow
from contracts.plugin import SUITE_SUBJECT
from contracts.targets import Target

BUY_ONE = {"symbol": "AAPL", "type": "MARKET", "side": "BUY", "quantity": 1}


def expect_error(response: requests.Response, operation: str, status: int, code: int) -> dict:
    if response.status_code != status:
        raise violation(operation, f"error {code} status", response, f"expected HTTP {status}")
    error = response.json().get("error", {})
    if error.get("code") != code:
        raise violation(operation, f"error {code} code", response, f"expected code {code}, got {error.get('code')}")
    if not error.get("message"):
        raise violation(operation, f"error {code} message", response, "empty message")
    return error


@pytest.mark.parametrize("token", ["", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_1001_bad_token(tradefence_anonymous_api: CheckedSession, token: str) -> None:
    response = tradefence_anonymous_api.get("/account", headers={"Authorization": f"Bearer {token}".strip()})
    expect_error(response, "getAccount", 401, 1001)
    if not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
        raise violation("getAccount", "1001 WWW-Authenticate", response, "no Bearer challenge (RFC 6750)")


def test_1001_missing_token(tradefence_anonymous_api: CheckedSession) -> None:
    expect_error(tradefence_anonymous_api.get("/orders"), "listOrders", 401, 1001)


def test_1001_expired_token(tradefence_anonymous_api: CheckedSession, tradefence_control: ControlPlane) -> None:
    token = tradefence_control.mint("contract-expiry", expires_in=60)
    headers = {"Authorization": f"Bearer {token}"}
    assert tradefence_anonymous_api.get("/account", headers=headers).status_code == 200
    tradefence_control.freeze()
    tradefence_control.advance(61)
    response = tradefence_anonymous_api.get("/account", headers=headers)
    expect_error(response, "getAccount", 401, 1001)
    if 'error="invalid_token"' not in response.headers.get("WWW-Authenticate", ""):
        raise violation("getAccount", "1001 WWW-Authenticate", response, 'no error="invalid_token"')


def test_1002_oversized_buy(tradefence_api: CheckedSession) -> None:
    response = tradefence_api.post("/orders", json={**BUY_ONE, "quantity": 1_000_000})
    expect_error(response, "createOrder", 422, 1002)


def test_1003_closed_market(tradefence_api: CheckedSession, tradefence_target: Target) -> None:
    clock = tradefence_api.get("/market/clock").json()
    if clock["is_open"]:
        plane = tradefence_target.control_plane()
        if plane is None:
            pytest.skip("the market is open now and this target cannot close it; runs when the market is closed")
        plane.market("closed")
    try:
        expect_error(tradefence_api.post("/orders", json=BUY_ONE), "createOrder", 422, 1003)
    finally:
        if clock["is_open"]:
            plane.market("open")


@pytest.mark.parametrize(("method", "path", "body", "operation"), [
    ("POST", "/orders", {**BUY_ONE, "symbol": "ZZZZZZ"}, "createOrder"),
    ("GET", "/market/quotes/ZZZZZZ", None, "getQuote"),
    ("POST", "/ai/recommendations", {"portfolio": ["ZZZZZZ"], "risk_tolerance": "MODERATE",
                                     "time_horizon": "30_DAYS"}, "getAIRecommendations"),
])
def test_1004_unknown_symbol(tradefence_api: CheckedSession, method: str, path: str, body: dict | None,
                             operation: str) -> None:
    expect_error(tradefence_api.request(method, path, json=body), operation, 422, 1004)


def test_1004_in_a_batch_is_that_operation_s_error(tradefence_api: CheckedSession) -> None:
    response = tradefence_api.post("/batch", json={"operations": [{"action": "CREATE_ORDER",
                                                        "data": {**BUY_ONE, "symbol": "ZZZZZZ"}}]})
    result = response.json()["results"][0]
    if result.get("status") != 422 or result.get("error", {}).get("code") != 1004:
        raise violation("batch", "1004 per operation", response, "expected status 422 with code 1004")


@pytest.mark.usefixtures("tradefence_destructive")
def test_2001_burst_then_backoff_recovers(tradefence_api: CheckedSession, tradefence_target: Target) -> None:
    plane = tradefence_target.control_plane()
    previous = plane.rate_limit(5, 20.0) if plane else None
    try:
        refused = None
        for _ in range(500 if plane is None else 20):
            response = tradefence_api.get("/account")
            if response.status_code == 429:
                refused = response
                break
            for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                if header not in response.headers:
                    raise violation("getAccount", f"{header} header", response, "missing on a /v1 response")
        if refused is None:
            pytest.fail("[getAccount] 2001: no 429 after a burst")
        error = expect_error(refused, "getAccount", 429, 2001)
        retry_after = refused.headers.get("Retry-After", "")
        if not retry_after.isdigit() or int(retry_after) < 1:
            raise violation("getAccount", "2001 Retry-After", refused, "missing or not a positive integer")
        if error.get("retry_after") != int(retry_after):
            raise violation("getAccount", "2001 retry_after", refused, "body and header disagree")
        for attempt in range(6):  # exponential backoff, as the docs advise
            time.sleep(min(int(retry_after) * 2**attempt, 8) if attempt else int(retry_after))
            if tradefence_api.get("/account").status_code == 200:
                return
        pytest.fail("[getAccount] 2001: a client backing off exponentially never recovered")
    finally:
        if plane and previous:
            plane.rate_limit(previous["capacity"], previous["refill_per_second"])


def test_1005_missing_scope(tradefence_anonymous_api: CheckedSession, tradefence_target: Target) -> None:
    if not tradefence_target.is_emulator:
        pytest.skip("needs a second, read-only token: the emulator issues one through the code flow")
    read_only = code_flow(tradefence_target, login_hint=SUITE_SUBJECT, scope="trading:read")
    response = tradefence_anonymous_api.post("/orders", json=BUY_ONE, headers=read_only.headers)
    expect_error(response, "createOrder", 403, 1005)
    if 'error="insufficient_scope"' not in response.headers.get("WWW-Authenticate", ""):
        raise violation("createOrder", "1005 WWW-Authenticate", response, 'no error="insufficient_scope"')
