"""Every documented error code, provoked on purpose, with its envelope and headers checked.

1001 bad or expired token · 1002 oversized buy · 1003 closed market · 1004 unknown symbol · 2001 burst.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
import requests

from contracts import pricing
from contracts.checking import CheckedSession, ContractViolation, violation
from contracts.control import ControlPlane
from contracts.credentials import code_flow
from contracts.plugin import API_TAGS, SUITE_SUBJECT
from contracts.run import ContractRun
from contracts.targets import Target
from mock_server.spec.document import Operation, SpecDocument

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


SECURED = [op for op in SpecDocument.load().operations if op.secured and op.tag in API_TAGS]
PLACEHOLDERS = {"symbol": "AAPL", "orderId": "ord_00000000000000000000000000"}


@pytest.mark.parametrize("operation", SECURED, ids=[op.operation_id for op in SECURED])
@pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["no token", "bad token"])
def test_1001_every_secured_operation_refuses_a_missing_or_bad_token(tradefence_anonymous_api: CheckedSession,
                                                                    operation: Operation, token: str | None) -> None:
    """schemathesis's `ignored_auth` check, sent through the run's polite transport: one request per operation and
    kind of token, never an order (nothing passes authentication)."""
    path = re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS.get(m.group(1), "x"), operation.path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, object] | None = {} if operation.body_schema is not None else None
    response = tradefence_anonymous_api.request(operation.method, path, json=body, headers=headers)
    expect_error(response, operation.operation_id, 401, 1001)
    if not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
        raise violation(operation.operation_id, "1001 WWW-Authenticate", response, "no Bearer challenge (RFC 6750)")


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


@pytest.mark.usefixtures("tradefence_destructive")
def test_1002_oversized_buy(tradefence_api: CheckedSession, tradefence_run: ContractRun,
                            tradefence_market_open: bool) -> None:
    """Open market: a buy far beyond buying power gets 1002. Closed market: 1003, as every order does."""
    response = tradefence_api.post("/orders", json=tradefence_run.ledger.tagged({**BUY_ONE, "quantity": 1_000_000}))
    expect_error(response, "createOrder", 422, 1002 if tradefence_market_open else 1003)


def test_1003_closed_market(tradefence_api: CheckedSession, tradefence_target: Target, tradefence_run: ContractRun,
                            tradefence_market_open: bool) -> None:
    """Closed market (now, or closed through the control plane): an order gets 1003."""
    plane = tradefence_target.control_plane() if tradefence_market_open else None
    if tradefence_market_open and plane is None:
        pytest.skip("the market is open now and this target cannot close it; runs when the market is closed")
    setting = plane.setting() if plane is not None else None
    try:
        if plane is not None:
            plane.market("closed")
        expect_error(tradefence_api.post("/orders", json=tradefence_run.ledger.tagged(BUY_ONE)), "createOrder",
                     422, 1003)
    finally:
        if plane is not None and setting is not None:
            plane.restore(setting)
            plane.close()


@pytest.mark.parametrize(("method", "path", "body", "operation"), [
    ("POST", "/orders", {**BUY_ONE, "symbol": "ZZZZZZ"}, "createOrder"),
    ("GET", "/market/quotes/ZZZZZZ", None, "getQuote"),
    ("POST", "/ai/recommendations", {"portfolio": ["ZZZZZZ"], "risk_tolerance": "MODERATE",
                                     "time_horizon": "30_DAYS"}, "getAIRecommendations"),
])
def test_1004_unknown_symbol(tradefence_api: CheckedSession, tradefence_run: ContractRun, method: str, path: str,
                             body: dict | None, operation: str) -> None:
    if operation == "createOrder":
        body = tradefence_run.ledger.tagged(body or {})
    expect_error(tradefence_api.request(method, path, json=body), operation, 422, 1004)


def test_1004_in_a_batch_is_that_operation_s_error(tradefence_api: CheckedSession,
                                                   tradefence_run: ContractRun) -> None:
    response = tradefence_api.post("/batch", json={"operations": [{"action": "CREATE_ORDER", "data": (
        tradefence_run.ledger.tagged({**BUY_ONE, "symbol": "ZZZZZZ"}))}]})
    if response.status_code != 200:
        raise violation("batch", "batch accepted", response, "expected 200 with one result per operation")
    result = response.json()["results"][0]
    if result.get("status") != 422 or result.get("error", {}).get("code") != 1004:
        raise violation("batch", "1004 per operation", response, "expected status 422 with code 1004")


@pytest.mark.usefixtures("tradefence_destructive")
def test_2001_burst_then_backoff_recovers(tradefence_impatient_api: CheckedSession, tradefence_api: CheckedSession,
                                          tradefence_target: Target) -> None:
    """A burst meets 2001 with Retry-After; the run's polite client, which waits as it says, then gets through."""
    plane = tradefence_target.control_plane()
    previous = plane.rate_limit(5, 20.0) if plane else None
    try:
        refused = None
        for _ in range(500 if plane is None else 20):
            response = tradefence_impatient_api.get("/account")
            if response.status_code == 429:
                refused = response
                break
            for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                if header not in response.headers:
                    raise violation("getAccount", f"{header} header", response, "missing on a /v1 response")
        if refused is None:
            raise ContractViolation("getAccount", "2001 after a burst", "a 429 once the burst passes the limit",
                                    "no 429", "")
        error = expect_error(refused, "getAccount", 429, 2001)
        retry_after = refused.headers.get("Retry-After", "")
        if not retry_after.isdigit() or int(retry_after) < 1:
            raise violation("getAccount", "2001 Retry-After", refused, "missing or not a positive integer")
        if error.get("retry_after") != int(retry_after):
            raise violation("getAccount", "2001 retry_after", refused, "body and header disagree")
        recovered = tradefence_api.get("/account")
        if recovered.status_code != 200:
            raise violation("getAccount", "2001 recovery", recovered, "a client waiting as Retry-After says got no 200")
    finally:
        if plane and previous:
            plane.rate_limit(previous["capacity"], previous["refill_per_second"])


def test_1005_missing_scope(tradefence_anonymous_api: CheckedSession, tradefence_target: Target,
                            tradefence_http: requests.Session, tradefence_run: ContractRun) -> None:
    if not tradefence_target.is_emulator:
        pytest.skip("needs a second, read-only token: the emulator issues one through the code flow")
    read_only = code_flow(tradefence_target, tradefence_http, login_hint=SUITE_SUBJECT, scope="trading:read")
    response = tradefence_anonymous_api.post("/orders", json=tradefence_run.ledger.tagged(BUY_ONE),
                                             headers=read_only.headers)
    expect_error(response, "createOrder", 403, 1005)
    if 'error="insufficient_scope"' not in response.headers.get("WWW-Authenticate", ""):
        raise violation("createOrder", "1005 WWW-Authenticate", response, 'no error="insufficient_scope"')


def far_from_the_market(api: CheckedSession, run: ContractRun, symbol: str, side: str, quantity: int) -> dict:
    """A LIMIT order of the run's, priced from the symbol's quote so far from the market that it cannot fill during
    a run."""
    quote = api.get(f"/market/quotes/{symbol}")
    if quote.status_code != 200:
        raise violation("getQuote", "a listed symbol has a quote", quote, "expected 200")
    plan = pricing.Plan(symbol, side, "LIMIT", "DAY", quantity, False, Decimal("0.5"), False)
    return pricing.body(plan, quote.json(), quantity, run.ledger.next_client_order_id())


def refused_never_filled(api: CheckedSession, order: dict, operation: str, code: int) -> None:
    """Place `order`, which the rules refuse with `code`; should the target accept it, cancel it at once (it rests
    far from the market, so nothing fills) and report the drift."""
    response = api.post("/orders", json=order)
    if response.status_code == 201:
        api.delete(f"/orders/{response.json()['id']}")
    expect_error(response, operation, 422, code)


def test_1002_beyond_buying_power(tradefence_api: CheckedSession, tradefence_run: ContractRun,
                                  tradefence_trading: tuple[str, ...]) -> None:
    """Open market: a LIMIT buy priced from the quote, resting far below the market, for one share more than
    buying power pays for, gets 1002. Closed market: every order gets 1003 first (test_1003_closed_market).
    Past the run's budget by design: the target must refuse it, and it could not fill if accepted (then it is
    cancelled at once)."""
    if not tradefence_api.get("/market/clock").json()["is_open"]:
        pytest.skip("the market is closed: every order gets 1003 before its cost is weighed")
    power = Decimal(str(tradefence_api.get("/account").json()["buying_power"]))
    order = far_from_the_market(tradefence_api, tradefence_run, tradefence_trading[0], "BUY", 1)
    quantity = int(power / Decimal(str(order["price"]))) + 1
    if quantity > 1_000_000:
        pytest.skip(f"buying power {power} is beyond what one order of at most 1,000,000 shares can exceed")
    with tradefence_run.guard.expecting_refusal():
        refused_never_filled(tradefence_api, {**order, "quantity": quantity}, "createOrder", 1002)


def test_1006_sell_beyond_shares(tradefence_api: CheckedSession, tradefence_run: ContractRun,
                                 tradefence_trading: tuple[str, ...]) -> None:
    """Open market: a LIMIT sell, resting far above the market, of a symbol the account holds none of gets 1006
    (short selling is not supported). Closed market: 1003 first, as above."""
    if not tradefence_api.get("/market/clock").json()["is_open"]:
        pytest.skip("the market is closed: every order gets 1003 before the position is weighed")
    held = {p["symbol"] for p in tradefence_api.get("/positions").json()["data"]}
    symbol = next((s for s in tradefence_trading if s not in held), None)
    if symbol is None:
        pytest.skip("the account holds every symbol the run may trade")
    refused_never_filled(tradefence_api, far_from_the_market(tradefence_api, tradefence_run, symbol, "SELL", 1),
                         "createOrder", 1006)


@pytest.mark.parametrize(("body", "field"), [
    ({"symbol": "KO", "type": "LIMIT", "quantity": 1, "price": 1.0}, "side"),
    ({"symbol": "KO", "side": "BUY", "quantity": 1}, "type"),
    ({"symbol": "KO", "type": "LIMIT", "side": "BUY", "quantity": 0, "price": 1.0}, "quantity"),
    ({"symbol": "KO", "type": "STOP", "side": "BUY", "quantity": 1}, "stop_price"),
])
def test_4000_an_invalid_order_names_its_field(tradefence_api: CheckedSession, body: dict, field: str) -> None:
    """Bodies the schema refuses (nothing in them could ever be placed): 400, code 4000, the field named."""
    error = expect_error(tradefence_api.post("/orders", json=body), "createOrder", 400, 4000)
    if field not in str(error.get("field", "")) + error.get("message", ""):
        raise violation("createOrder", "error 4000 names the field", tradefence_api.post("/orders", json=body),
                        f"expected {field} named")
