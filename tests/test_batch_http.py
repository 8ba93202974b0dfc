"""POST /v1/batch over real HTTP: results in request order, partial failure, atomic rollback, error fields, limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.live import CheckedSession


def create(symbol: str = "AAPL", **fields: Any) -> dict[str, Any]:
    return {"action": "CREATE_ORDER", "data": {"symbol": symbol, "type": "MARKET", "side": "BUY", "quantity": 1,
                                               **fields}}


def update(symbol: str, target: int) -> dict[str, Any]:
    return {"action": "UPDATE_POSITION", "data": {"symbol": symbol, "target_quantity": target}}


def cancel(order_id: str) -> dict[str, Any]:
    return {"action": "CANCEL_ORDER", "data": {"order_id": order_id}}


def run(session: CheckedSession, operations: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = session.post("/v1/batch", json={"operations": operations, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(operations)))
    assert [r["action"] for r in body["results"]] == [op["action"] for op in operations]
    assert body["succeeded"] + body["failed"] == len(operations)
    assert body["failed"] == sum(1 for r in body["results"] if "error" in r)
    return body


def snapshot(session: CheckedSession) -> tuple[Any, ...]:
    return (session.get("/v1/account").json(), session.get("/v1/positions").json(),
            session.get("/v1/orders", params={"limit": 500}).json())


def test_results_come_back_in_request_order(http: CheckedSession, trader: CheckedSession) -> None:
    http.post("/_mock/clock", json={"action": "freeze"})
    resting = trader.post("/v1/orders", json={"symbol": "MSFT", "type": "LIMIT", "side": "BUY", "quantity": 2,
                                              "price": 1.00}).json()
    body = run(trader, [create("AAPL", quantity=5), update("AAPL", 2), cancel(resting["id"]),
                        create("MSFT", type="LIMIT", price=1.00, client_order_id="b-4"), update("MSFT", 0)])
    assert body == {**body, "atomic": False, "succeeded": 5, "failed": 0}
    results = body["results"]
    assert [r["status"] for r in results] == [201, 200, 200, 201, 200]
    assert results[0]["result"]["status"] == "FILLED" and results[0]["result"]["quantity"] == 5
    assert (results[1]["result"]["previous_quantity"], results[1]["result"]["quantity"]) == (5, 2)
    assert results[1]["result"]["order"]["side"] == "SELL"  # it saw the buy before it
    assert results[2]["result"]["id"] == resting["id"] and results[2]["result"]["status"] == "CANCELLED"
    assert results[3]["result"]["client_order_id"] == "b-4" and results[3]["result"]["status"] == "OPEN"
    assert results[4]["result"] == {"symbol": "MSFT", "previous_quantity": 0, "quantity": 0, "order": None}
    listed = [o["id"] for o in trader.get("/v1/orders").json()["data"]]
    assert listed == [results[3]["result"]["id"], results[1]["result"]["order"]["id"], results[0]["result"]["id"],
                      resting["id"]]


def test_non_atomic_batches_fail_operation_by_operation(trader: CheckedSession) -> None:
    body = run(trader, [
        create("AAPL", quantity=4),
        create("ZZZZ"),
        create("AAPL", side="SELL", quantity=10),
        create("AAPL", client_order_id="nsf-batch"),
        cancel("ord_01JD6Q9S1T4ZV7K2X8B3N5M0PA"),
        update("AAPL", 1),
        update("AAPL", 1_000_000),
        update("MSFT", 0),
    ])
    assert (body["atomic"], body["succeeded"], body["failed"]) == (False, 3, 5)
    results = body["results"]
    errors = {r["index"]: (r["status"], r["error"]["code"], r["error"].get("field")) for r in results if "error" in r}
    assert errors == {
        1: (422, 1004, "operations.1.data.symbol"),
        2: (422, 1006, "operations.2.data.quantity"),
        3: (422, 1002, None),
        4: (404, 4004, None),
        6: (422, 1002, None),
    }
    for r in results:
        assert ("error" in r) != ("result" in r)
        if "error" in r:
            assert r["error"]["type"] and r["error"]["message"]
    assert results[5]["result"]["quantity"] == 1
    assert trader.get("/v1/positions/AAPL").json()["quantity"] == 1
    assert len(trader.get("/v1/orders").json()["data"]) == 2  # what failed left no order behind


def test_sell_beyond_holdings_in_update_position_names_target_quantity(trader: CheckedSession) -> None:
    trader.post("/v1/orders", json={"symbol": "KO", "type": "MARKET", "side": "BUY", "quantity": 5})
    trader.post("/v1/orders", json={"symbol": "KO", "type": "LIMIT", "side": "SELL", "quantity": 5, "price": 10_000})
    body = run(trader, [update("KO", 0)])
    assert body["results"][0]["error"]["code"] == 1006
    assert body["results"][0]["error"]["field"] == "operations.0.data.target_quantity"


def test_an_atomic_batch_that_fails_changes_nothing(http: CheckedSession, trader: CheckedSession) -> None:
    # Frozen: positions are valued at the current step's price, which a busy machine may see move mid-test.
    http.post("/_mock/clock", json={"action": "freeze"})
    trader.post("/v1/orders", json={"symbol": "KO", "type": "MARKET", "side": "BUY", "quantity": 10})
    resting = trader.post("/v1/orders", json={"symbol": "MSFT", "type": "LIMIT", "side": "BUY", "quantity": 3,
                                              "price": 2.00}).json()
    before = snapshot(trader)
    operations = [create("AAPL", quantity=20), update("KO", 0), cancel(resting["id"]),
                  create("MSFT", type="LIMIT", price=1.00, quantity=100), create("AAPL", side="SELL", quantity=21),
                  create("AAPL")]
    body = run(trader, operations, atomic=True)
    assert (body["atomic"], body["succeeded"], body["failed"]) == (True, 0, 6)
    failed = body["results"][4]
    assert (failed["status"], failed["error"]["code"], failed["error"]["field"]) == (
        422, 1006, "operations.4.data.quantity")
    for r in body["results"][:4] + body["results"][5:]:
        assert (r["status"], r["error"]["code"], r["error"]["type"]) == (424, 4024, "rolled_back")
        assert "operation 4" in r["error"]["message"]
    assert snapshot(trader) == before  # cash, positions, reservations and orders exactly as they were
    assert trader.get(f"/v1/orders/{resting['id']}").json()["status"] == "OPEN"


def test_an_atomic_batch_that_succeeds_applies_everything(trader: CheckedSession) -> None:
    start = Decimal(str(trader.get("/v1/account").json()["cash"]))
    body = run(trader, [create("AAPL", quantity=3), create("MSFT", quantity=2), update("AAPL", 1)], atomic=True)
    assert (body["succeeded"], body["failed"]) == (3, 0)
    fills = [f for r in body["results"] for f in (r["result"].get("fills") or r["result"]["order"]["fills"])]
    sides = ["BUY", "BUY", "SELL"]
    paid = sum((Decimal(str(f["price"])) * f["quantity"] * (1 if side == "BUY" else -1)
                for f, side in zip(fills, sides, strict=True)), Decimal("0"))
    assert Decimal(str(trader.get("/v1/account").json()["cash"])) == start - paid
    positions = {p["symbol"]: p["quantity"] for p in trader.get("/v1/positions").json()["data"]}
    assert positions == {"AAPL": 1, "MSFT": 2}


def test_batch_size_and_shape_limits(trader: CheckedSession) -> None:
    hundred = run(trader, [create("AAPL")] * 100)
    assert hundred["succeeded"] == 100
    over = trader.post("/v1/batch", json={"operations": [create("AAPL")] * 101})
    assert over.status_code == 400
    error = over.json()["error"]
    assert (error["code"], error["field"]) == (4000, "operations")
    empty = trader.post("/v1/batch", json={"operations": []})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "operations"
    invalid = trader.post("/v1/batch", json={"operations": [create("AAPL"), create("AAPL", quantity=0)]})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["field"] == "operations.1.data.quantity"  # schema errors name the same path
    unknown = trader.post("/v1/batch", json={"operations": [{"action": "DELETE_ACCOUNT", "data": {}}]})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"].startswith("operations.0")
    assert len(trader.get("/v1/orders", params={"limit": 500}).json()["data"]) == 100
