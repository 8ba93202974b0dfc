"""The HTTP side of the model-based account test: one example's trading, on the run's own orders only.

A `Trader` turns what Hypothesis drew (plans, handles) into requests priced from fresh quotes, checks each answer
against the rules the spec gives (placed, or refused with the documented code), and keeps `AccountModel` up to
date with what the run's orders report. It sells only shares the run bought, cancels only orders it placed,
and stays within a budget; `clean_up` leaves the account as the example found it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from hypothesis import note

from contracts import pricing
from contracts.account_model import AccountModel, OwnOrder, change_problems, money, order_problems
from contracts.checking import CheckedSession, ContractViolation, violation
from contracts.pricing import Plan

SYMBOLS = ("AAPL", "KO", "MSFT")  # few, so sells find shares the run bought
ORDER_BUDGET = Decimal(2500)  # the most one buy may commit, in dollars
EXAMPLE_BUDGET = Decimal(10000)  # the most one example may have committed at once
SETTLE_READS = 3  # snapshots retried while the run's own orders keep moving between reads


@dataclass(frozen=True)
class Handle:
    """What the bundle holds for one placement: the order's id, or None when it was refused or not sent."""

    order_id: str | None
    note: str = ""


@dataclass
class Planned:
    """What one step has already planned: shares it will sell per symbol, and what its buys may cost."""

    sells: dict[str, int] = field(default_factory=dict)
    buys: set[str] = field(default_factory=set)
    cost: Decimal = Decimal(0)


def error_code(response: requests.Response) -> int | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Trader:
    """One example's session with the target, and the model of the account it keeps."""

    def __init__(self, api: CheckedSession, run_id: str, own_id: Callable[[], str],
                 budget: Decimal | None = None) -> None:
        self.api = api
        self.run_id = run_id
        self._own_id = own_id  # the contract run's client_order_ids: its per-run prefix, its cleanup's to find
        # Within the run's budget on a guest's account (the guard would not send more), else the example's own.
        self.example_budget = min(EXAMPLE_BUDGET, budget) if budget is not None else EXAMPLE_BUDGET
        self.order_budget = min(ORDER_BUDGET, self.example_budget / 2)
        self.model: AccountModel | None = None
        self.market_open = True
        self.buying_power = Decimal(0)
        self.others_open: dict[str, int] = {}  # open orders the run did not place: id -> filled quantity
        self.newest_before: str | None = None  # the newest order id on the account when the example began
        self.confirmed: set[str] = set()  # final orders read back with getOrder since they became final


    def own_id(self) -> str:
        return self._own_id()

    def quote(self, symbol: str) -> dict[str, Any]:
        response = self.api.get(f"/market/quotes/{symbol}")
        if response.status_code != 200:
            raise violation("getQuote", "a listed symbol has a quote", response, "expected 200")
        return response.json()

    def market_is_open(self) -> bool:
        response = self.api.get("/market/clock")
        if response.status_code != 200:
            raise violation("getMarketClock", "the clock is readable", response, "expected 200")
        self.market_open = bool(response.json()["is_open"])
        return self.market_open

    def walk(self, status: str, stop_at: str | None = None, pages: int = 10) -> list[dict[str, Any]]:
        """Orders of the whole account, newest first, down to `stop_at` (exclusive) or `pages` pages."""
        found: list[dict[str, Any]] = []
        cursor = None
        for _ in range(pages):
            params: dict[str, Any] = {"status": status, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            response = self.api.get("/orders", params=params)
            if response.status_code != 200:
                raise violation("listOrders", "orders are listable", response, "expected 200")
            page = response.json()
            for order in page["data"]:
                if stop_at is not None and order["id"] <= stop_at:
                    return found
                found.append(order)
            cursor = page["next_cursor"]
            if not page["has_more"] or not cursor:
                break
        return found

    def others_now(self) -> tuple[dict[str, int], str | None]:
        assert self.model is not None
        mine = self.model.orders
        opened = {o["id"]: o["filled_quantity"] for o in self.walk("open") if o["id"] not in mine}
        newest = self.walk("all", pages=1)
        return opened, (newest[0]["id"] if newest else None)

    def others_moved(self) -> bool:
        """Whether orders the run did not place traded or appeared since the model's baseline."""
        assert self.model is not None
        opened, _ = self.others_now()
        if opened != self.others_open:
            return True
        newer = self.walk("all", stop_at=self.newest_before)
        return any(order["id"] not in self.model.orders for order in newer)

    def commitment(self) -> Decimal:
        """What the run's buys have spent or hold back now (the budget's measure)."""
        assert self.model is not None
        spent = Decimal(0)
        for order in self.model.orders.values():
            if order.side == "BUY":
                spent += sum(money(f["price"]) * f["quantity"] for f in order.latest["fills"])
                spent += order.reserved_cash()
        return spent

    def track(self, request: dict[str, Any], placed: dict[str, Any], response: requests.Response,
              operation: str) -> Handle:
        assert self.model is not None
        for check, detail in order_problems(request, placed):
            raise violation(operation, check, response, detail)
        if request["type"] == "MARKET" and placed["status"] not in ("FILLED", "REJECTED"):
            raise violation(operation, "market orders fill at once", response, f"status {placed['status']}")
        if request.get("time_in_force") in ("IOC", "FOK") and placed["status"] not in (
                "FILLED", "CANCELLED", "REJECTED"):
            raise violation(operation, "IOC and FOK orders end at once", response, f"status {placed['status']}")
        self.model.track(OwnOrder(request=request, placed=placed, latest=placed))
        return Handle(placed["id"])

    def sellable(self, symbol: str) -> int:
        assert self.model is not None
        return self.model.own_available(symbol)

    def affordable(self, cost: Decimal, planned: Planned) -> bool:
        """Within the run's budget and the account's buying power, counting what this step already plans."""
        return (self.commitment() + planned.cost + cost <= self.example_budget
                and planned.cost + cost <= self.buying_power)

    def prepare(self, plan: Plan, planned: Planned) -> tuple[dict[str, Any] | None, str, str]:
        """The body to send for `plan` and what it must get ("placed" or an error code), or why it is not sent."""
        quote = self.quote(plan.symbol)
        if plan.side == "SELL":
            quantity = min(plan.quantity, self.sellable(plan.symbol) - planned.sells.get(plan.symbol, 0))
            if quantity > 0:
                planned.sells[plan.symbol] = planned.sells.get(plan.symbol, 0) + quantity
                return pricing.body(plan, quote, quantity, self.own_id()), "placed", ""
            if planned.sells.get(plan.symbol) or plan.symbol in planned.buys or self.account_holds(plan.symbol):
                return None, "", "not sent: it might sell shares the run does not own"
            return pricing.body(plan, quote, plan.quantity, self.own_id()), "1006", ""
        unit = pricing.buy_commitment(pricing.body(plan, quote, 1, "x"), quote)
        quantity = min(plan.quantity, int(self.order_budget // unit))
        if quantity < 1 or not self.affordable(unit * quantity, planned):
            return None, "", "not sent: over the run's budget or buying power"
        planned.cost += unit * quantity
        planned.buys.add(plan.symbol)
        return pricing.body(plan, quote, quantity, self.own_id()), "placed", ""

    def account_holds(self, symbol: str) -> bool:
        response = self.api.get(f"/positions/{symbol}")
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise violation("getPosition", "a position is readable", response, "expected 200 or 404")
        return True

    def refused(self, expect: str, response: requests.Response, operation: str, status: int,
                code: int | None) -> Handle:
        """An order that was not placed: the refusal must be the one the rules give."""
        if code == 1003:
            if self.market_is_open():
                raise violation(operation, "1003 only while the market is closed", response,
                                "the market clock says it is open")
            return Handle(None, "refused: market closed")
        if expect == "placed":
            raise violation(operation, "an order within buying power and the run's shares is placed", response,
                            f"got {status} with code {code}")
        if (status, code) != (422, int(expect)):
            raise violation(operation, f"a sell beyond the shares available gets {expect}", response,
                            f"got {status} with code {code}")
        return Handle(None, f"refused with {code}")

    def accepted(self, expect: str, request: dict[str, Any], placed: dict[str, Any],
                 response: requests.Response, operation: str) -> Handle:
        """An order that was placed: it must have been placeable, and it joins the model."""
        if not self.market_open and not self.market_is_open():
            raise violation(operation, "orders get 1003 while the market is closed", response,
                            "an order was accepted while the clock says closed")
        handle = self.track(request, placed, response, operation)
        if expect != "placed":
            raise violation(operation, f"a sell beyond the shares available gets {expect}", response,
                            "the order was accepted")
        return handle

    def cancelled(self, order: OwnOrder, was_final: bool, status: int, body: dict[str, Any],
                  response: requests.Response, operation: str) -> None:
        """The answer to cancelling one of the run's orders, alone or in a batch."""
        code = body.get("error", {}).get("code") if status != 200 else None
        if was_final:
            if (status, code) != (409, 1007):
                raise violation(operation, "a final order cannot be cancelled", response,
                                f"{order.id} was {order.latest['status']}: expected 409 with code 1007, "
                                f"got {status}")
            return
        if (status, code) == (409, 1007):  # it became final since the model last read it: it must say so
            self.read_back(order, self.api.get(f"/orders/{order.id}"))
            if not order.final:
                raise violation(operation, "an open order can be cancelled", response,
                                f"refused while getOrder says {order.latest['status']}")
            return
        if status != 200 or body.get("status") != "CANCELLED":
            raise violation(operation, "an open order can be cancelled", response,
                            f"expected 200 CANCELLED, got {status}")
        self.update(order, body, response, operation)
        self.confirmed.discard(order.id)

    # -- the steps: each places, cancels, moves or reads, and checks what it was told --------------------

    def start(self) -> None:
        """The model's baseline: the account as it is, whatever it already holds."""
        self.market_is_open()
        account = self.api.get("/account")
        positions = self.api.get("/positions")
        if account.status_code != 200 or positions.status_code != 200:
            raise violation("getAccount", "the account is readable", account, "expected 200")
        self.model = AccountModel.baseline(account.json(), positions.json()["data"])
        self.buying_power = money(account.json()["buying_power"])
        self.others_open, self.newest_before = self.others_now()

    def place(self, plan: Plan) -> Handle:
        order, expect, why = self.prepare(plan, Planned())
        if order is None:
            return Handle(None, why)
        headers = {"Idempotency-Key": f"ct-{self.run_id}-{uuid.uuid4().hex}"} if plan.idempotent else {}
        response = self.api.post("/orders", json=order, headers=headers)
        if response.status_code != 201:
            return self.refused(expect, response, "createOrder", response.status_code, error_code(response))
        handle = self.accepted(expect, order, response.json(), response, "createOrder")
        if plan.idempotent:
            self.replay(order, headers, response)
        return handle

    def replay(self, order: dict[str, Any], headers: dict[str, str], first: requests.Response) -> None:
        if first.headers.get("Idempotent-Replayed") == "true":
            raise violation("createOrder", "Idempotency-Key replay", first, "a first request marked as a replay")
        again = self.api.post("/orders", json=order, headers=headers)
        if again.status_code != 201 or again.json() != first.json():
            raise violation("createOrder", "Idempotency-Key replay", again,
                            f"not the first answer (order {first.json()['id']}) replayed")
        if again.headers.get("Idempotent-Replayed") != "true":
            raise violation("createOrder", "Idempotency-Key replay", again, "Idempotent-Replayed is not true")

    def cancel(self, handle: Handle) -> None:
        assert self.model is not None
        if handle.order_id is None:
            return
        order = self.model.orders[handle.order_id]
        was_final = order.final
        response = self.api.delete(f"/orders/{handle.order_id}")
        self.cancelled(order, was_final, response.status_code, response.json(), response, "cancelOrder")

    def batch(self, batch: list[Plan], cancel: Handle | None) -> list[Handle]:
        assert self.model is not None
        planned = Planned()
        prepared = [self.prepare(plan, planned) for plan in batch]
        operations = [{"action": "CREATE_ORDER", "data": body} for body, _, _ in prepared if body is not None]
        target = self.model.orders[cancel.order_id] if cancel is not None and cancel.order_id else None
        if target is not None:
            operations.append({"action": "CANCEL_ORDER", "data": {"order_id": target.id}})
        if not operations:
            return [Handle(None, why) for _, _, why in prepared]
        was_final = target is not None and target.final
        response = self.api.post("/batch", json={"operations": operations})
        if response.status_code != 200:
            raise violation("batch", "a batch is answered", response, "expected 200")
        results = response.json()["results"]
        if len(results) != len(operations):
            raise violation("batch", "one result per operation", response, f"{len(results)} results")
        outcomes = iter(results)
        handles: list[Handle] = []
        for body, expect, why in prepared:
            if body is None:
                handles.append(Handle(None, why))
                continue
            result = next(outcomes)
            if result["status"] == 201:
                handles.append(self.accepted(expect, body, result["result"], response, "batch"))
            else:
                handles.append(self.refused(expect, response, "batch", result["status"],
                                            result.get("error", {}).get("code")))
        if target is not None:
            result = next(outcomes)
            self.cancelled(target, was_final, result["status"], result.get("result") or result, response, "batch")
        return handles

    def move_position(self, symbol: str, change: int) -> Handle:
        assert self.model is not None
        read = self.api.get(f"/positions/{symbol}")
        held = read.json()["quantity"] if read.status_code == 200 else 0
        if change < 0:
            change = -min(-change, self.sellable(symbol))
            if change == 0:
                return Handle(None, "not sent: the run holds no shares of it")
        else:
            unit = money(self.quote(symbol)["ask"]) * (1 + pricing.CROSS)
            if not self.affordable(unit * change, Planned()):
                return Handle(None, "not sent: over the run's budget or buying power")
        target = held + change
        response = self.api.patch(f"/positions/{symbol}", json={"target_quantity": target})
        if response.status_code != 200:
            if error_code(response) == 1003 and not self.market_is_open():
                return Handle(None, "refused: market closed")
            raise violation("updatePosition", "a position the run holds can be moved", response, "expected 200")
        update = response.json()
        order = update["order"]
        if order is None:
            raise violation("updatePosition", "a move places an order", response, f"{held} -> {target}: none")
        moved = order["filled_quantity"] if order["side"] == "BUY" else -order["filled_quantity"]
        if update["quantity"] != update["previous_quantity"] + moved:
            raise violation("updatePosition", "the position moves by the order's fills", response,
                            f"{update['previous_quantity']} + {moved} != {update['quantity']}")
        request = {"symbol": symbol, "type": "MARKET", "side": order["side"], "quantity": order["quantity"],
                   "time_in_force": order["time_in_force"]}
        return self.accepted("placed", request, order, response, "updatePosition")

    # -- reading back -------------------------------------------------------------------------------------

    def update(self, order: OwnOrder, body: dict[str, Any], response: requests.Response, operation: str) -> bool:
        """Take a new read of one of the run's orders; whether it moved (fills or status). A read that contradicts
        itself is reported as such before how it differs from earlier reads."""
        for check, detail in order_problems(order.request, body) + change_problems(order.latest, body):
            raise violation(operation, check, response, f"{order.id}: {detail}")
        moved = (body["status"], len(body["fills"])) != (order.latest["status"], len(order.latest["fills"]))
        order.latest = body
        return moved

    def read_back(self, order: OwnOrder, response: requests.Response) -> bool:
        if response.status_code != 200:
            raise violation("getOrder", "the run's orders are readable", response, "expected 200")
        moved = self.update(order, response.json(), response, "getOrder")
        if order.final:
            self.confirmed.add(order.id)
        return moved

    def refresh(self) -> bool:
        """Read back every order of the run not yet confirmed final; whether any moved."""
        assert self.model is not None
        moved = False
        for order in list(self.model.orders.values()):
            if order.id not in self.confirmed:
                moved |= self.read_back(order, self.api.get(f"/orders/{order.id}"))
        return moved

    def check(self) -> None:
        """The account and its positions, as the public reads give them, agree with the model."""
        assert self.model is not None
        self.refresh()
        for _ in range(SETTLE_READS):
            self.model.book()
            account = self.api.get("/account")
            positions = self.api.get("/positions")
            if account.status_code != 200 or positions.status_code != 200:
                raise violation("getAccount", "the account is readable", account, "expected 200")
            self.buying_power = money(account.json()["buying_power"])
            problems = [(account, "getAccount", check, detail)
                        for check, detail in self.model.account_problems(account.json())]
            problems += [(positions, "listPositions", check, detail)
                         for check, detail in self.model.position_problems(positions.json()["data"])]
            if not problems:
                return
            if self.refresh():  # one of the run's orders traded between the reads: read it all again
                continue
            if self.others_moved():
                note("orders the run did not place traded meanwhile: the model starts again from the account")
                self.model = AccountModel.baseline(account.json(), positions.json()["data"], self.model.orders)
                self.others_open, self.newest_before = self.others_now()
                return
            response, operation, check, detail = problems[0]
            raise violation(operation, check, response, detail)
        raise ContractViolation("getAccount", "the account settles", "the run's orders kept trading between reads")

    def clean_up(self) -> None:
        """Leave the account as the example found it: cancel what rests, sell back what was bought."""
        if self.model is None:
            return
        for order in self.model.orders.values():
            if not order.final:
                self.api.delete(f"/orders/{order.id}")
        self.refresh()
        if not self.market_is_open():
            return
        for symbol in SYMBOLS:
            shares = self.sellable(symbol)
            if shares:
                self.api.post("/orders", json={"symbol": symbol, "type": "MARKET", "side": "SELL",
                                          "quantity": shares, "client_order_id": self.own_id()})

