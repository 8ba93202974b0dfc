"""A tour of the API: one harmless request to every `/v1` operation of the spec, so no operation's answers go
unchecked, whatever else the run happens to send.

Every answer is checked against the spec as it comes (status, headers, body; the required `X-RateLimit-*` and
`X-Request-Id` included). The requests change nothing that matters should a target accept them: an order that
rests far from the market (cancelled at once), a position "moved" to where it is, a batch that cancels an order
that does not exist. A method the spec does not list for a path gets `405` with code `4005` and an `Allow` header
naming the methods it does list (RFC 9110 section 15.5.6).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import requests

from contracts import pricing
from contracts.checking import CheckedSession, violation
from contracts.plugin import API_TAGS
from contracts.run import ContractRun
from contracts.test_headers import rate_headers
from mock_server.spec.document import SpecDocument

UNKNOWN_ORDER = "ord_00000000000000000000000000"
METHODS = ("PUT", "PATCH", "POST", "DELETE", "GET")


def tour(api: CheckedSession, run: ContractRun, symbol: str) -> dict[str, Callable[[], requests.Response]]:
    """One harmless request per /v1 operation, by operationId; what trades is the run's (its ids, its symbol)."""

    def create_order() -> requests.Response:
        quote = api.get(f"/market/quotes/{symbol}").json()
        plan = pricing.Plan(symbol, "BUY", "LIMIT", "DAY", 1, False, Decimal("0.5"), False)
        response = api.post("/orders", json=pricing.body(plan, quote, 1, run.ledger.next_client_order_id()))
        if response.status_code == 201:
            api.delete(f"/orders/{response.json()['id']}")
        return response

    def update_position() -> requests.Response:
        held = api.get(f"/positions/{symbol}")
        quantity = held.json()["quantity"] if held.status_code == 200 else 0
        return api.patch(f"/positions/{symbol}", json={"target_quantity": quantity})  # where it is: no order

    return {
        "createOrder": create_order,
        "listOrders": lambda: api.get("/orders", params={"limit": 1}),
        "getOrder": lambda: api.get(f"/orders/{UNKNOWN_ORDER}"),
        "cancelOrder": lambda: api.delete(f"/orders/{UNKNOWN_ORDER}"),
        "listPositions": lambda: api.get("/positions"),
        "getPosition": lambda: api.get(f"/positions/{symbol}"),
        "updatePosition": update_position,
        "getAccount": lambda: api.get("/account"),
        "getMarketClock": lambda: api.get("/market/clock"),
        "getQuote": lambda: api.get(f"/market/quotes/{symbol}"),
        "getAIRecommendations": lambda: api.post("/ai/recommendations", json={
            "portfolio": [symbol], "risk_tolerance": "MODERATE", "time_horizon": "30_DAYS"}),
        "batch": lambda: api.post("/batch", json={"operations": [
            {"action": "CANCEL_ORDER", "data": {"order_id": UNKNOWN_ORDER}}]}),
    }


def test_every_v1_operation_answers_as_the_spec_says(tradefence_api: CheckedSession,
                                                      tradefence_spec_document: SpecDocument,
                                                      tradefence_run: ContractRun,
                                                      tradefence_trading: tuple[str, ...]) -> None:
    requests_for = tour(tradefence_api, tradefence_run, tradefence_trading[0])
    operations = {op.operation_id for op in tradefence_spec_document.operations if op.tag in API_TAGS}
    assert operations == set(requests_for), f"the tour must visit every /v1 operation: {operations ^ set(requests_for)}"
    for operation, send in sorted(requests_for.items()):
        response = send()  # the session checks it against the spec
        if response.status_code == 401:
            raise violation(operation, "the session's token is accepted", response, "401 with a valid token")
        rate_headers(response, operation)


def test_unlisted_methods_get_405_with_allow(tradefence_api: CheckedSession,
                                             tradefence_spec_document: SpecDocument) -> None:
    listed: dict[str, set[str]] = {}
    for op in tradefence_spec_document.operations:
        if op.tag in API_TAGS:
            listed.setdefault(op.path, set()).add(op.method.upper())
    for path, methods in sorted(listed.items()):
        method = next(m for m in METHODS if m not in methods)
        url = path.replace("{orderId}", UNKNOWN_ORDER).replace("{symbol}", "KO")
        response = tradefence_api.request(method, url)
        code = response.json().get("error", {}).get("code") if response.status_code == 405 else None
        if (response.status_code, code) != (405, 4005):
            raise violation(path, "unlisted methods get 405", response, f"{method}: expected 405 with code 4005")
        allowed = {m.strip().upper() for m in response.headers.get("Allow", "").split(",")}
        if not methods <= allowed:
            raise violation(path, "unlisted methods get 405", response,
                            f"Allow {response.headers.get('Allow')!r} does not name {sorted(methods)}")
