"""Properties any correct Tradefence must hold, on data drawn from the spec's schemas and the run's own objects.

An order read back equals what was placed; filled quantity never exceeds quantity and equals its fills;
a cancelled order stays cancelled; cash moves only by fills; a batch answers its operations one for one.
Every order is the run's (its client_order_id prefix, symbols the account's owner does not hold), and what an
example bought it sells back before the next. With the market closed, each test checks the documented
closed-market answer instead (its docstring says which).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.checking import CheckedSession, violation
from contracts.control import ControlPlane
from contracts.run import ContractRun
from contracts.strategies import order_requests
from mock_server.spec.document import SpecDocument

IMMUTABLE = ("id", "client_order_id", "symbol", "type", "side", "quantity", "price", "stop_price", "time_in_force",
             "strategy", "created_at")


def run(examples: int, test: Any) -> None:
    settings(max_examples=examples, deadline=None, database=None,
             suppress_health_check=list(HealthCheck))(test)()


def error_code(response: requests.Response) -> int | None:
    """The envelope's code of an error answer (the session has checked the envelope against the spec)."""
    body = response.json() if response.status_code >= 400 else None
    return body["error"]["code"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else None


def created(response: requests.Response, operation: str = "createOrder") -> dict[str, Any]:
    """The order a 201 answered; anything else is a violation (never a KeyError on a body that is not an order)."""
    if response.status_code != 201:
        raise violation(operation, "valid order accepted", response, "expected 201 for a valid order")
    return response.json()


def closed_market_refusal(response: requests.Response, operation: str = "createOrder") -> None:
    """While the market is closed every order gets 1003 (createOrder's description)."""
    if response.status_code != 422 or error_code(response) != 1003:
        raise violation(operation, "closed market refuses orders", response, "expected 422 with code 1003")


def check_quantities(order: dict[str, Any], response: Any, operation: str) -> None:
    filled = order["filled_quantity"]
    if filled > order["quantity"]:
        raise violation(operation, "filled <= quantity", response, f"filled {filled} > quantity {order['quantity']}")
    if sum(fill["quantity"] for fill in order["fills"]) != filled:
        raise violation(operation, "fills sum to filled_quantity", response, "fills disagree with filled_quantity")


def undo(api: CheckedSession, run: ContractRun, order: dict[str, Any]) -> None:
    """Leave the account as the example found it: cancel the order if it still works, sell back what it bought."""
    if order["status"] in ("OPEN", "PARTIALLY_FILLED"):
        cancelled = api.delete(f"/orders/{order['id']}")
        if cancelled.status_code == 200:
            order = cancelled.json()
    if order["side"] == "BUY" and order["filled_quantity"]:
        sold = api.post("/orders", json=run.ledger.tagged({"symbol": order["symbol"], "type": "MARKET",
                                                            "side": "SELL", "quantity": order["filled_quantity"]}))
        created(sold)


def test_an_order_reads_back_as_placed(tradefence_api: CheckedSession, tradefence_spec_document: SpecDocument,
                                       tradefence_examples: int, tradefence_run: ContractRun,
                                       tradefence_trading: tuple[str, ...], tradefence_market_open: bool) -> None:
    """Open market: a valid order is accepted (201), echoes the request and reads back as placed.
    Closed market: it gets 1003 and nothing is created."""
    @given(order_requests(tradefence_spec_document, symbols=tradefence_trading,
                          client_order_id=tradefence_run.ledger.next_client_order_id))
    def placed_then_read(body: dict[str, Any]) -> None:
        placed = tradefence_api.post("/orders", json=body)
        if not tradefence_market_open:
            closed_market_refusal(placed)
            return
        order = created(placed)
        try:
            for field in ("symbol", "type", "side", "quantity", "client_order_id"):
                if order[field] != body[field]:
                    raise violation("createOrder", "echoes the request", placed, f"{field} changed")
            if body.get("price") is not None and Decimal(str(order["price"])) != Decimal(str(body["price"])):
                raise violation("createOrder", "echoes the limit price", placed, "price changed")
            check_quantities(order, placed, "createOrder")
            read = tradefence_api.get(f"/orders/{order['id']}")
            if read.status_code != 200:
                raise violation("getOrder", "placed order readable", read, "expected 200")
            for field in IMMUTABLE:
                if read.json()[field] != order[field]:
                    raise violation("getOrder", "reads back as placed", read, f"{field} differs from the POST answer")
            check_quantities(read.json(), read, "getOrder")
        finally:
            undo(tradefence_api, tradefence_run, order)

    run(tradefence_examples, placed_then_read)


def test_a_cancelled_order_stays_cancelled(tradefence_api: CheckedSession, tradefence_spec_document: SpecDocument,
                                           tradefence_examples: int, tradefence_run: ContractRun,
                                           tradefence_trading: tuple[str, ...], tradefence_market_open: bool) -> None:
    """Open market: a resting limit order cancels (200 CANCELLED), a second cancel gets 409 with 1007, and it reads
    back CANCELLED. Closed market: the order is refused with 1003, so there is nothing to cancel."""
    @given(order_requests(tradefence_spec_document, types=("LIMIT",), symbols=tradefence_trading,
                          client_order_id=tradefence_run.ledger.next_client_order_id))
    def cancel_sticks(body: dict[str, Any]) -> None:
        placed = tradefence_api.post("/orders", json=body)
        if not tradefence_market_open:
            closed_market_refusal(placed)
            return
        order = created(placed)
        cancelled = tradefence_api.delete(f"/orders/{order['id']}")
        if cancelled.status_code != 200 or cancelled.json()["status"] != "CANCELLED":
            raise violation("cancelOrder", "cancel an open order", cancelled, "expected 200 CANCELLED")
        again = tradefence_api.delete(f"/orders/{order['id']}")
        if again.status_code != 409 or error_code(again) != 1007:
            raise violation("cancelOrder", "second cancel refused", again, "expected 409 with code 1007")
        read = tradefence_api.get(f"/orders/{order['id']}")
        if read.status_code != 200 or read.json()["status"] != "CANCELLED" or read.json()["cancelled_at"] is None:
            raise violation("getOrder", "cancel sticks", read, "expected 200, CANCELLED with cancelled_at")

    run(max(tradefence_examples // 3, 3), cancel_sticks)


def test_cash_moves_only_by_fills(tradefence_api: CheckedSession, tradefence_control: ControlPlane,
                                  tradefence_examples: int, tradefence_run: ContractRun,
                                  tradefence_trading: tuple[str, ...]) -> None:
    """With the clock frozen nothing rests or fills on its own; each cash change is a fill's price times quantity.
    Needs the control plane (to freeze the clock), so an open market: the control fixture opens it."""
    tradefence_control.market("open")
    tradefence_control.freeze()
    trades = st.lists(st.tuples(st.sampled_from(tradefence_trading[:4]), st.sampled_from(["BUY", "SELL"]),
                                st.integers(1, 5)), min_size=1, max_size=6)

    @given(trades)
    def ledger(sequence: list[tuple[str, str, int]]) -> None:
        before = tradefence_api.get("/account")
        if before.status_code != 200:
            raise violation("getAccount", "account readable", before, "expected 200")
        expected = Decimal(str(before.json()["cash"]))
        for symbol, side, quantity in sequence:
            response = tradefence_api.post("/orders", json=tradefence_run.ledger.tagged(
                {"symbol": symbol, "type": "MARKET", "side": side, "quantity": quantity}))
            if response.status_code == 422 and error_code(response) in (1002, 1006):
                continue
            order = created(response)
            check_quantities(order, response, "createOrder")
            value = sum(Decimal(str(f["price"])) * f["quantity"] for f in order["fills"])
            expected += value if side == "SELL" else -value
        account = tradefence_api.get("/account")
        if account.status_code != 200:
            raise violation("getAccount", "account readable", account, "expected 200")
        body = account.json()
        cash = Decimal(str(body["cash"]))
        if cash != expected:
            raise violation("getAccount", "cash moves only by fills", account, f"cash {cash} != expected {expected}")
        equity = Decimal(str(body["equity"]))
        if equity != cash + Decimal(str(body["positions_value"])):
            raise violation("getAccount", "equity = cash + positions", account, "equity disagrees")

    run(max(tradefence_examples // 3, 3), ledger)


def test_a_batch_answers_each_operation_in_order(tradefence_api: CheckedSession,
                                                 tradefence_spec_document: SpecDocument, tradefence_examples: int,
                                                 tradefence_run: ContractRun, tradefence_trading: tuple[str, ...],
                                                 tradefence_market_open: bool) -> None:
    """One result per operation, in order, with succeeded + failed adding up, whatever the market. Closed market:
    each CREATE_ORDER result is 422 with 1003 (the batch answers 200, each operation as it would alone)."""
    operation = st.one_of(
        order_requests(tradefence_spec_document, types=("LIMIT",), symbols=tradefence_trading,
                       client_order_id=tradefence_run.ledger.next_client_order_id).map(
            lambda body: {"action": "CREATE_ORDER", "data": body}),
        st.sampled_from(tradefence_trading).map(lambda s: {"action": "UPDATE_POSITION",
                                                           "data": {"symbol": s, "target_quantity": 0}}),
        st.just({"action": "CANCEL_ORDER", "data": {"order_id": "ord_00000000000000000000000000"}}),
    )

    @given(st.lists(operation, min_size=1, max_size=8))
    def one_for_one(operations: list[dict[str, Any]]) -> None:
        response = tradefence_api.post("/batch", json={"operations": operations})
        if response.status_code != 200:
            raise violation("batch", "batch accepted", response, "expected 200")
        body = response.json()
        results = body["results"]
        if [r["index"] for r in results] != list(range(len(operations))):
            raise violation("batch", "one result per operation, in order", response, "indexes do not match")
        if [r["action"] for r in results] != [op["action"] for op in operations]:
            raise violation("batch", "results match actions", response, "actions do not match")
        if body["succeeded"] + body["failed"] != len(operations):
            raise violation("batch", "succeeded + failed = operations", response, "counts do not add up")
        for result in results:
            if result["action"] != "CREATE_ORDER":
                continue
            if not tradefence_market_open and (result["status"] != 422 or result.get("error", {}).get("code") != 1003):
                raise violation("batch", "closed market refuses orders", response,
                                f"operation {result['index']}: expected 422 with code 1003")
            if "result" in result:
                undo(tradefence_api, tradefence_run, result["result"])

    run(max(tradefence_examples // 3, 3), one_for_one)
