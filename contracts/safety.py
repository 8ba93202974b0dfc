"""A guest on someone's account: the run touches only what it created, spends within its budget, and undoes what
it did at the end.

- The **holdings** (read once, before the first trade) are the user's: their positions and resting orders. The
  run never trades a symbol the user holds or has an order on, so a portfolio's quantities and costs stay exactly
  as they were, and never cancels an order it did not place.
- The **ledger** records every order the target created for the run (from the answers the transport observes,
  whatever sent them: the suite's tests or schemathesis), tagged with a per-run `client_order_id` prefix, so
  orders whose answer was lost are found again by listing.
- The **guard** sees each request before it is sent. A valid order without the run's prefix, a trade in the
  user's symbols, a cancel of the user's order, or a buy that would take what the run commits past its budget
  is not sent: inside a Hypothesis example the example is rejected (schemathesis and the properties draw
  another), elsewhere the test fails saying why. Invalid requests pass: the target must refuse them, and
  refusing costs nothing.
- The **cleanup** (at the end of the run, also after failures and Ctrl-C) cancels the run's open orders and sells
  back exactly what it bought.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

import hypothesis
import requests

from contracts.checking import request_path
from mock_server.spec.document import Operation, SpecDocument
from mock_server.spec.validation import SchemaValidator

DEFAULT_BUDGET = Decimal(5000)
FINAL = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})
MUTATING = frozenset({"createOrder", "cancelOrder", "updatePosition", "batch"})
SMALL_QUANTITY = 5  # the most shares a shaped order trades on a guest's account
MARKET_MARGIN = Decimal("1.05")  # a market buy is priced at the ask plus this margin: prices move while it fills


class UnsafeRequest(AssertionError):
    """The suite was about to send something that is not its to send; it did not. A bug in the suite."""


@dataclass(frozen=True)
class Holdings:
    """The user's account before the run traded: what it must find unchanged afterwards."""

    buying_power: Decimal
    positions: dict[str, int]
    open_orders: dict[str, str]  # order id → symbol

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.positions) | frozenset(self.open_orders.values())


def run_prefix(now: datetime) -> str:
    """`tfc-<UTC time>-<random>-`: unique per run, sortable, and within the spec's client_order_id pattern."""
    return f"tfc-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}-"


@dataclass
class Ledger:
    """The orders the run created, as last seen (id → the order's JSON)."""

    prefix: str
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: int = 0

    def next_client_order_id(self) -> str:
        self.issued += 1
        return f"{self.prefix}{self.issued:04d}"

    def tagged(self, body: dict[str, Any]) -> dict[str, Any]:
        """An order body carrying the run's next client_order_id."""
        return {**body, "client_order_id": self.next_client_order_id()}

    def owns(self, client_order_id: object) -> bool:
        return isinstance(client_order_id, str) and client_order_id.startswith(self.prefix)

    def observe(self, operation: str, status: int, body: Any) -> None:
        """An answer the run got: orders it created are recorded, later views of them kept up to date."""
        if not isinstance(body, dict):
            return
        created: list[Any] = []
        seen: list[Any] = []
        if operation == "createOrder" and status == 201:
            created.append(body)
        elif operation == "updatePosition" and status == 200:
            created.append(body.get("order"))
        elif operation == "batch" and status == 200:
            for result in body.get("results") or []:
                if isinstance(result, dict) and isinstance(result.get("result"), dict):
                    inner = result["result"]
                    if result.get("action") == "CREATE_ORDER":
                        created.append(inner)
                    elif result.get("action") == "UPDATE_POSITION":
                        created.append(inner.get("order"))
                    else:
                        seen.append(inner)
        elif operation in ("getOrder", "cancelOrder") and status == 200:
            seen.append(body)
        elif operation == "listOrders" and status == 200:
            seen.extend(body.get("data") or [])
        for order in created:
            if isinstance(order, dict) and isinstance(order.get("id"), str):
                self.orders[order["id"]] = order
        for order in seen:
            if isinstance(order, dict) and order.get("id") in self.orders:
                self.orders[order["id"]] = order

    def open_ids(self, ids: Iterable[str] | None = None) -> list[str]:
        chosen = self.orders if ids is None else {i: self.orders[i] for i in ids if i in self.orders}
        return [order_id for order_id, order in chosen.items() if order.get("status") not in FINAL]

    def bought(self, ids: Iterable[str] | None = None) -> dict[str, int]:
        """Shares the run (or those of its orders) bought less those it sold, per symbol, by the fills reported."""
        net: dict[str, int] = {}
        chosen = self.orders.values() if ids is None else [self.orders[i] for i in ids if i in self.orders]
        for order in chosen:
            filled = sum(int(fill.get("quantity", 0)) for fill in order.get("fills") or [] if isinstance(fill, dict))
            sign = 1 if order.get("side") == "BUY" else -1
            if filled and isinstance(order.get("symbol"), str):
                net[order["symbol"]] = net.get(order["symbol"], 0) + sign * filled
        return net

    def committed(self) -> Decimal:
        """What the run's orders hold of the account: reservations of its open buys and the cost of its shares."""
        total = Decimal(0)
        for order in self.orders.values():
            for fill in order.get("fills") or []:
                cost = _decimal(fill.get("price")) * int(fill.get("quantity", 0))
                total += cost if order.get("side") == "BUY" else -cost
            if order.get("side") == "BUY" and order.get("status") not in FINAL:
                remaining = int(order.get("remaining_quantity") or 0)
                total += remaining * max(_decimal(order.get("price")), _decimal(order.get("stop_price")))
        return max(total, Decimal(0))

    def client_order_ids(self) -> list[str]:
        return sorted(str(order.get("client_order_id")) for order in self.orders.values())


Refusal = Callable[[str], None]


class Guard:
    """Checks each mutating request against the holdings, the ledger and the budget before it is sent."""

    def __init__(self, document: SpecDocument, ledger: Ledger, *, holdings: Callable[[], Holdings],
                 ask: Callable[[str], Decimal | None], budget: Decimal | None) -> None:
        self._ledger = ledger
        self._holdings = holdings
        self._ask = ask
        self.budget = budget  # None: no limit (an emulator's own account, or --contract-destructive)
        self._order = SchemaValidator(document, document.schema_ref("OrderRequest"))
        self._position = SchemaValidator(document, document.schema_ref("PositionUpdateRequest"))
        self._batch = SchemaValidator(document, document.schema_ref("BatchRequest"))
        self.held_back: list[str] = []
        self._refusal_expected = False
        self._replayable: set[tuple[str, bytes]] = set()  # (Idempotency-Key, body) already sent: a replay costs nothing

    @contextlib.contextmanager
    def expecting_refusal(self) -> Iterator[None]:
        """For a check that sends an order the target must refuse for its size (1002): the budget does not stop
        it. The order must rest far from the market, and the check cancels it at once should it be accepted."""
        self._refusal_expected = True
        try:
            yield
        finally:
            self._refusal_expected = False

    def check(self, operation: Operation, request: requests.PreparedRequest) -> None:
        if operation.operation_id not in MUTATING:
            return
        path = request_path(request)
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        key = request.headers.get("Idempotency-Key")
        if key is not None and (key, body) in self._replayable:
            return  # the same request again: the target answers what it answered (checking that is another test)
        problem = self._problem(operation.operation_id, path, _json(request.body))
        if problem is None and key is not None:
            self._replayable.add((key, body))
        if problem is not None:
            what = f"{request.method} {path}"
            self.held_back.append(f"{what}: {problem}")
            if hypothesis.currently_in_test_context():
                hypothesis.reject()  # this example is not the run's to send: draw another
            raise UnsafeRequest(f"[{what}] not sent: {problem}")

    def _problem(self, operation: str, path: str, body: Any) -> str | None:
        if operation == "createOrder":
            return self._order_problem(body, extra=Decimal(0)) if self._valid(self._order, body) else None
        if operation == "cancelOrder":
            return self._cancel_problem(unquote(path.rstrip("/").rsplit("/", 1)[-1]))
        if operation == "updatePosition":
            if not self._valid(self._position, body):
                return None
            return self._position_problem(unquote(path.rstrip("/").rsplit("/", 1)[-1]), body, extra=Decimal(0))
        if not self._valid(self._batch, body):
            return None
        extra = Decimal(0)
        for op in body["operations"]:
            data = op["data"]
            if op["action"] == "CREATE_ORDER":
                problem = self._order_problem(data, extra)
                extra += self._cost(data)
            elif op["action"] == "UPDATE_POSITION":
                problem = self._position_problem(data["symbol"], data, extra)
                extra += self._position_cost(data["symbol"], data)
            else:
                problem = self._cancel_problem(data["order_id"])
            if problem is not None:
                return problem
        return None

    def _order_problem(self, body: dict[str, Any], extra: Decimal) -> str | None:
        if not self._ledger.owns(body.get("client_order_id")):
            return (f"an order without the run's client_order_id prefix {self._ledger.prefix!r} "
                    f"(client_order_id {body.get('client_order_id')!r})")
        if body["symbol"] in self._holdings().symbols:
            return f"{body['symbol']} is held or traded by the account's owner; the run trades other symbols only"
        return self._over_budget(self._cost(body), extra) if body["side"] == "BUY" else None

    def _position_problem(self, symbol: str, body: dict[str, Any], extra: Decimal) -> str | None:
        if symbol in self._holdings().symbols:
            return f"the position in {symbol} is the account owner's, not the run's"
        return self._over_budget(self._position_cost(symbol, body), extra)

    def _cancel_problem(self, order_id: str) -> str | None:
        if order_id in self._holdings().open_orders:
            return f"{order_id} is the account owner's order"
        return None

    def _over_budget(self, cost: Decimal, extra: Decimal) -> str | None:
        if self.budget is None or cost == 0 or self._refusal_expected:
            return None
        committed = self._ledger.committed() + extra
        if committed + cost > self.budget:
            return (f"a buy of about ${cost:,.2f} would take what the run commits (${committed:,.2f}) past its "
                    f"budget of ${self.budget:,.2f} (--contract-budget)")
        return None

    def _cost(self, body: dict[str, Any]) -> Decimal:
        """The most a buy can hold of the account: its limit or stop price, or the ask with a margin."""
        if body.get("side") != "BUY":
            return Decimal(0)
        price = max(_decimal(body.get("price")), _decimal(body.get("stop_price")))
        if price == 0:
            ask = self._ask(body["symbol"])
            if ask is None:  # no quote: an unknown symbol, which the target refuses
                return Decimal(0)
            price = ask * MARKET_MARGIN
        return price * int(body["quantity"])

    def _position_cost(self, symbol: str, body: dict[str, Any]) -> Decimal:
        more = int(body["target_quantity"]) - max(self._ledger.bought().get(symbol, 0), 0)
        if more <= 0:
            return Decimal(0)
        ask = self._ask(symbol)
        return Decimal(0) if ask is None else ask * MARKET_MARGIN * more

    @staticmethod
    def _valid(validator: SchemaValidator, body: Any) -> bool:
        return body is not None and not validator.errors(body)


def read_holdings(api: requests.Session, api_url: str) -> Holdings:
    """The account as its owner left it: buying power, positions, and every open order (all pages)."""
    account = _ok(api.get(f"{api_url}/account", timeout=15), "getAccount")
    positions = _ok(api.get(f"{api_url}/positions", timeout=15), "listPositions")
    open_orders: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"status": "open", "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = _ok(api.get(f"{api_url}/orders", params=params, timeout=15), "listOrders")
        open_orders.update({order["id"]: order["symbol"] for order in page.get("data") or []})
        cursor = page.get("next_cursor") if page.get("has_more") else None
        if not cursor:
            break
    return Holdings(_decimal(account.get("buying_power")),
                    {p["symbol"]: int(p["quantity"]) for p in positions.get("data") or []}, open_orders)


@dataclass
class Cleanup:
    """What the cleanup did, and what it could not undo."""

    cancelled: int = 0
    sold: dict[str, int] = field(default_factory=dict)
    left: list[str] = field(default_factory=list)


def clean_up(api: requests.Session, api_url: str, ledger: Ledger, *, since: datetime, market_open: bool) -> Cleanup:
    """Cancel the run's open orders and sell back exactly the shares it bought: the orders it knows, and those
    listed under its prefix whose answer it never got (a timeout, an interrupted run). Orders come newest first,
    so the listing stops at the first one older than the run."""
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"{api_url}/orders", params=params, timeout=15)
        body = page.json() if page.status_code == 200 else {}
        orders = [order for order in body.get("data") or [] if isinstance(order, dict)]
        for order in orders:
            if ledger.owns(order.get("client_order_id")):
                ledger.orders[order["id"]] = order
        older = any(_moment(order.get("created_at")) < since for order in orders)
        cursor = body.get("next_cursor") if body.get("has_more") and not older else None
        if not cursor:
            break
    return undo(api, api_url, ledger, list(ledger.orders), market_open=market_open)


def undo(api: requests.Session, api_url: str, ledger: Ledger, ids: list[str], *, market_open: bool) -> Cleanup:
    """Cancel those of the run's orders that still work, then sell back the shares they bought (never more than
    the account holds)."""
    done = Cleanup()
    for order_id in ledger.open_ids(ids):
        cancelled = api.delete(f"{api_url}/orders/{order_id}", timeout=15)
        if cancelled.status_code == 200:
            done.cancelled += 1
            continue
        read = api.get(f"{api_url}/orders/{order_id}", timeout=15)  # filled meanwhile, or gone (an emulator reset)
        if read.status_code == 200 and read.json().get("status") not in FINAL:
            done.left.append(f"order {order_id} could not be cancelled ({cancelled.status_code})")
    for symbol, quantity in sorted(ledger.bought(ids).items()):
        held = api.get(f"{api_url}/positions/{symbol}", timeout=15) if quantity > 0 else None
        quantity = min(quantity, int(held.json().get("quantity", 0))) if held and held.status_code == 200 else 0
        if quantity <= 0:
            continue
        if not market_open:
            done.left.append(f"{quantity} {symbol} bought by the run could not be sold back: the market is closed")
            continue
        sold = api.post(f"{api_url}/orders", timeout=15, json=ledger.tagged(
            {"symbol": symbol, "type": "MARKET", "side": "SELL", "quantity": quantity}))
        if sold.status_code == 201 and sold.json().get("status") == "FILLED":
            done.sold[symbol] = quantity
        else:
            done.left.append(f"selling back {quantity} {symbol} answered {sold.status_code}: {sold.text[:200]}")
    return done


def _moment(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _ok(response: requests.Response, operation: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise AssertionError(f"pre-flight: {operation} answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    if not isinstance(body, dict):
        raise AssertionError(f"pre-flight: {operation} answered no JSON object")
    return body


def _json(body: bytes | str | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _decimal(value: object) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def compact(ids: Iterable[str], prefix: str) -> str:
    """The run's client_order_ids as `prefix` + runs of numbers: `tfc-…-{0001..0040, 0042, 0044..0137}`."""
    numbers = sorted({int(i.removeprefix(prefix)) for i in ids if i.startswith(prefix) and
                      i.removeprefix(prefix).isdigit()})
    runs: list[tuple[int, int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    shown = [f"{first:04d}" if first == last else f"{first:04d}..{last:04d}" for first, last in runs]
    return f"{prefix}{{{', '.join(shown)}}}"


class Shaper:
    """Makes schemathesis's valid cases the run's to send (map_case and before_add_examples hooks on the suite's
    schema only): orders carry the run's client_order_id and trade the run's symbols instead of the account
    owner's. On a guest's account (`small`) every order and position update trades one of the run's symbols in a
    few shares, so valid ones get placed within the budget rather than refused. What a negative case got wrong
    stays wrong: its body is shaped only when the body is valid (the case breaks a header or a parameter)."""

    def __init__(self, document: SpecDocument, ledger: Ledger, holdings: Callable[[], Holdings],
                 symbols: Callable[[], tuple[str, ...]], *, small: bool) -> None:
        self._ledger = ledger
        self._holdings = holdings
        self._symbols = symbols
        self._small = small
        self._bodies = {operation: SchemaValidator(document, document.schema_ref(name)) for operation, name in
                        (("createOrder", "OrderRequest"), ("updatePosition", "PositionUpdateRequest"),
                         ("batch", "BatchRequest"))}

    def shape(self, operation_id: str | None, case: Any) -> Any:
        if operation_id not in MUTATING or operation_id == "cancelOrder" or case.meta is None:
            return case
        positive = case.meta.generation.mode.name == "POSITIVE"
        if not positive and (not isinstance(case.body, dict) or self._bodies[operation_id].errors(case.body)):
            return case  # the body is what this negative case got wrong
        if operation_id == "createOrder" and isinstance(case.body, dict):
            case.body = self._order(case.body)
        elif operation_id == "updatePosition":
            if positive and isinstance(case.path_parameters, dict):
                case.path_parameters = {**case.path_parameters,
                                        "symbol": self._symbol(str(case.path_parameters.get("symbol", "")))}
            if isinstance(case.body, dict):
                case.body = self._position(case.body)
        elif operation_id == "batch" and isinstance(case.body, dict) and isinstance(case.body.get("operations"), list):
            case.body = {**case.body, "operations": [self._batch_operation(op) for op in case.body["operations"]]}
        return case

    def _position(self, body: dict[str, Any]) -> dict[str, Any]:
        target = body.get("target_quantity")
        if self._small and isinstance(target, int) and target > SMALL_QUANTITY:
            return {**body, "target_quantity": target % (SMALL_QUANTITY + 1)}
        return body

    def _batch_operation(self, operation: Any) -> Any:
        if not isinstance(operation, dict) or not isinstance(operation.get("data"), dict):
            return operation
        if operation.get("action") == "CREATE_ORDER":
            return {**operation, "data": self._order(operation["data"])}
        if operation.get("action") == "UPDATE_POSITION" and isinstance(operation["data"].get("symbol"), str):
            data = self._position(operation["data"])
            return {**operation, "data": {**data, "symbol": self._symbol(data["symbol"])}}
        return operation

    def _order(self, body: dict[str, Any]) -> dict[str, Any]:
        shaped = self._ledger.tagged(body)
        if isinstance(body.get("symbol"), str):
            shaped["symbol"] = self._symbol(body["symbol"])
        if self._small and isinstance(body.get("quantity"), int) and body["quantity"] > SMALL_QUANTITY:
            shaped["quantity"] = 1 + body["quantity"] % SMALL_QUANTITY
        return shaped

    def _symbol(self, symbol: str) -> str:
        """The owner's symbols (on a guest's account: all) become one of the run's, picked by the drawn one, so it
        repeats with the draw. Shaping runs while schemathesis builds its tests: when the holdings cannot be read
        the case stays as drawn, and the guard stops it when it would be sent."""
        try:
            taken, mine = self._holdings().symbols, self._symbols()
        except (AssertionError, requests.RequestException):
            return symbol
        if not mine or (symbol not in taken and not self._small):
            return symbol
        return mine[sum(map(ord, symbol)) % len(mine)]
