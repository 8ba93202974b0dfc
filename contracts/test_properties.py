"""Properties any correct Tradefence must hold, on data drawn from the spec's schemas.

An order read back equals what was placed; filled quantity never exceeds quantity and equals its fills;
a cancelled order stays cancelled; cash moves only by fills; a batch answers its operations one for one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.checking import CheckedSession, violation
from contracts.control import ControlPlane
from contracts.strategies import SYMBOLS, order_requests
from mock_server.spec.document import SpecDocument

IMMUTABLE = ("id", "client_order_id", "symbol", "type", "side", "quantity", "price", "stop_price", "time_in_force",
             "strategy", "created_at")


def run(tradefence_examples: int, test: Any) -> None:
    settings(max_examples=tradefence_examples, deadline=None, database=None,
             suppress_health_check=list(HealthCheck))(test)()


def check_quantities(order: dict[str, Any], response: Any, operation: str) -> None:
    filled = order["filled_quantity"]
    if filled > order["quantity"]:
        raise violation(operation, "filled <= quantity", response, f"filled {filled} > quantity {order['quantity']}")
    if sum(fill["quantity"] for fill in order["fills"]) != filled:
        raise violation(operation, "fills sum to filled_quantity", response, "fills disagree with filled_quantity")


def cancel_quietly(tradefence_api: CheckedSession, order_id: str) -> None:
    tradefence_api.delete(f"/orders/{order_id}")


def test_an_order_reads_back_as_placed(tradefence_api: CheckedSession, tradefence_spec_document: SpecDocument,
                                       tradefence_examples: int) -> None:
    @given(order_requests(tradefence_spec_document))
    def placed_then_read(body: dict[str, Any]) -> None:
        placed = tradefence_api.post("/orders", json=body)
        if placed.status_code != 201:
            raise violation("createOrder", "valid order accepted", placed, "expected 201")
        order = placed.json()
        try:
            for field in ("symbol", "type", "side", "quantity"):
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
            cancel_quietly(tradefence_api, order["id"])

    run(tradefence_examples, placed_then_read)


def test_a_cancelled_order_stays_cancelled(tradefence_api: CheckedSession, tradefence_spec_document: SpecDocument,
                                           tradefence_examples: int) -> None:
    @given(order_requests(tradefence_spec_document, types=("LIMIT",)))
    def cancel_sticks(body: dict[str, Any]) -> None:
        order = tradefence_api.post("/orders", json=body).json()
        cancelled = tradefence_api.delete(f"/orders/{order['id']}")
        if cancelled.status_code != 200 or cancelled.json()["status"] != "CANCELLED":
            raise violation("cancelOrder", "cancel an open order", cancelled, "expected 200 CANCELLED")
        again = tradefence_api.delete(f"/orders/{order['id']}")
        if again.status_code != 409 or again.json()["error"]["code"] != 1007:
            raise violation("cancelOrder", "second cancel refused", again, "expected 409 with code 1007")
        read = tradefence_api.get(f"/orders/{order['id']}")
        if read.json()["status"] != "CANCELLED" or read.json()["cancelled_at"] is None:
            raise violation("getOrder", "cancel sticks", read, "no longer CANCELLED")

    run(max(tradefence_examples // 3, 3), cancel_sticks)


def test_cash_moves_only_by_fills(tradefence_api: CheckedSession, tradefence_control: ControlPlane,
                                  tradefence_examples: int) -> None:
    """With the clock frozen nothing rests or fills on its own; each cash change is a fill's price times quantity."""
    tradefence_control.freeze()
    trades = st.lists(st.tuples(st.sampled_from(SYMBOLS[:4]), st.sampled_from(["BUY", "SELL"]), st.integers(1, 5)),
                      min_size=1, max_size=6)

    @given(trades)
    def ledger(sequence: list[tuple[str, str, int]]) -> None:
        before = Decimal(str(tradefence_api.get("/account").json()["cash"]))
        expected = before
        for symbol, side, quantity in sequence:
            response = tradefence_api.post("/orders", json={"symbol": symbol, "type": "MARKET", "side": side,
                                                 "quantity": quantity})
            if response.status_code == 422 and response.json()["error"]["code"] in (1002, 1006):
                continue
            if response.status_code != 201:
                raise violation("createOrder", "market order", response, "expected 201, 1002 or 1006")
            order = response.json()
            check_quantities(order, response, "createOrder")
            value = sum(Decimal(str(f["price"])) * f["quantity"] for f in order["fills"])
            expected += value if side == "SELL" else -value
        account = tradefence_api.get("/account")
        cash = Decimal(str(account.json()["cash"]))
        if cash != expected:
            raise violation("getAccount", "cash moves only by fills", account, f"cash {cash} != expected {expected}")
        body = account.json()
        equity = Decimal(str(body["equity"]))
        if equity != cash + Decimal(str(body["positions_value"])):
            raise violation("getAccount", "equity = cash + positions", account, "equity disagrees")

    run(max(tradefence_examples // 3, 3), ledger)


def test_a_batch_answers_each_operation_in_order(tradefence_api: CheckedSession, tradefence_spec_document: SpecDocument,
                                                 tradefence_examples: int) -> None:
    operation = st.one_of(
        order_requests(tradefence_spec_document, types=("LIMIT",)).map(
            lambda body: {"action": "CREATE_ORDER", "data": body}),
        st.sampled_from(SYMBOLS).map(lambda s: {"action": "UPDATE_POSITION",
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
            if result["action"] == "CREATE_ORDER" and "result" in result:
                cancel_quietly(tradefence_api, result["result"]["id"])

    run(max(tradefence_examples // 3, 3), one_for_one)
