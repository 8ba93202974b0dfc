"""What an account must look like, given the fills of the orders a run placed itself: plain Python, no HTTP.

The model never assumes an empty account. It starts from what the account held when the run began (a
`Baseline`) and moves it only by the fills the run's own orders report, so it works on a shared sandbox account
as well as on a fresh emulator. What it checks is what the spec states:

- cash moves only by fills, at the prices the fills report (a buy pays price x quantity, a sell receives it);
- `reserved_cash` is what open buys hold back: remaining quantity x limit price (`LIMIT`, `STOP_LIMIT`) or stop
  price (`STOP`); `buying_power` is cash less that, `equity` is cash plus `positions_value`;
- a position's quantity is the sum of its fills; `available_quantity` leaves out what open sells promise;
- realized P&L is, per sell, the proceeds less the average entry cost of the shares sold.

Cost is allocated in exact proportion here; the target rounds each allocation to the cent, so cost basis and
realized P&L may differ by up to a cent per partial sell (`tolerance`), never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

FINAL = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})
CENT = Decimal("0.01")
ZERO = Decimal(0)


def money(value: Any) -> Decimal:
    """A JSON number as the exact decimal it was written as."""
    return Decimal(str(value))


@dataclass
class Holding:
    """One symbol as the model expects it: shares, their cost, and the shares open sells of others promise."""

    quantity: int = 0
    cost: Decimal = ZERO
    others_reserved: int = 0  # promised to open sells the run did not place


@dataclass
class OwnOrder:
    """One order the run placed: what it asked for, what it was first told, and what it has seen since."""

    request: dict[str, Any]
    placed: dict[str, Any]  # the createOrder (or batch, or position update) answer
    latest: dict[str, Any]  # the latest read of it
    applied: int = 0  # how many of its fills the model has booked

    @property
    def id(self) -> str:
        return str(self.placed["id"])

    @property
    def symbol(self) -> str:
        return str(self.placed["symbol"])

    @property
    def side(self) -> str:
        return str(self.placed["side"])

    @property
    def final(self) -> bool:
        return self.latest["status"] in FINAL

    @property
    def remaining(self) -> int:
        return 0 if self.final else int(self.latest["quantity"]) - int(self.latest["filled_quantity"])

    def reserved_cash(self) -> Decimal:
        """What the spec says an open buy holds back."""
        if self.side != "BUY" or self.final:
            return ZERO
        kind = self.placed["type"]
        price = self.placed["price"] if kind in ("LIMIT", "STOP_LIMIT") else self.placed["stop_price"]
        return money(price) * self.remaining if price is not None else ZERO

    def reserved_shares(self) -> int:
        return self.remaining if self.side == "SELL" else 0


@dataclass(frozen=True)
class Fill:
    order_id: str
    symbol: str
    side: str
    quantity: int
    price: Decimal
    timestamp: str


def order_problems(request: Mapping[str, Any], order: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(check, detail) for each way one read of an order contradicts the request or itself."""
    problems: list[tuple[str, str]] = []
    for name in ("symbol", "type", "side", "quantity", "client_order_id"):
        if request.get(name) is not None and order.get(name) != request[name]:
            problems.append(("order echoes its request", f"{name} {order.get(name)!r} != {request[name]!r}"))
    for name in ("price", "stop_price"):
        asked = request.get(name)
        got = order.get(name)
        if (asked is None) != (got is None) or (asked is not None and money(asked) != money(got)):
            problems.append(("order echoes its request", f"{name} {got!r} != {asked!r}"))
    if order.get("time_in_force") != request.get("time_in_force", "DAY"):
        problems.append(("order echoes its request", f"time_in_force {order.get('time_in_force')!r}"))
    quantity, filled = int(order["quantity"]), int(order["filled_quantity"])
    fills = order["fills"]
    if not 0 <= filled <= quantity:
        problems.append(("filled <= quantity", f"filled {filled} of {quantity}"))
    if sum(int(f["quantity"]) for f in fills) != filled:
        problems.append(("fills sum to filled_quantity",
                         f"fills {[f['quantity'] for f in fills]} vs filled_quantity {filled}"))
    final = order["status"] in FINAL
    if order["remaining_quantity"] != (0 if final else quantity - filled):
        problems.append(("remaining_quantity", f"{order['remaining_quantity']} with {filled} of {quantity} filled, "
                                               f"status {order['status']}"))
    status = order["status"]
    expected_fill = {"OPEN": filled == 0, "PARTIALLY_FILLED": 0 < filled < quantity, "FILLED": filled == quantity}
    if not expected_fill.get(status, filled < quantity):
        problems.append(("status agrees with fills", f"{status} with {filled} of {quantity} filled"))
    if filled:
        average = sum((money(f["price"]) * int(f["quantity"]) for f in fills), ZERO) / filled
        shown = order["average_fill_price"]
        if shown is None or abs(money(shown) - average) > Decimal("0.0001"):
            problems.append(("average_fill_price", f"{shown} but the fills average {average:.6f}"))
    elif order["average_fill_price"] is not None:
        problems.append(("average_fill_price", "set on an order with no fills"))
    limit = order.get("price")
    if limit is not None and order["type"] in ("LIMIT", "STOP_LIMIT"):
        beyond = [f["price"] for f in fills
                  if (money(f["price"]) > money(limit) if order["side"] == "BUY" else money(f["price"]) < money(limit))]
        if beyond:
            problems.append(("fills respect the limit", f"{order['side']} limit {limit} filled at {beyond}"))
    tif = order["time_in_force"]
    if status == "EXPIRED" and tif != "DAY":
        problems.append(("only DAY orders expire", f"{tif} order EXPIRED"))
    if tif == "FOK" and filled not in (0, quantity):
        problems.append(("FOK fills whole or not at all", f"{filled} of {quantity} filled"))
    return problems


def change_problems(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(check, detail) for each way a later read of an order contradicts an earlier one."""
    problems: list[tuple[str, str]] = []
    if before["fills"] != after["fills"][:len(before["fills"])]:
        problems.append(("fills never change", f"fills were {before['fills']}, now {after['fills']}"))
    if before["status"] in FINAL and after["status"] != before["status"]:
        problems.append(("a final order stays final", f"{before['status']} became {after['status']}"))
    if int(after["filled_quantity"]) < int(before["filled_quantity"]):
        problems.append(("filled quantity never falls", f"{before['filled_quantity']} -> {after['filled_quantity']}"))
    return problems


@dataclass
class AccountModel:
    """Expected account figures: the baseline moved by every fill of the run's own orders, in time order."""

    cash: Decimal
    realized: Decimal
    others_reserved: Decimal  # cash held back by open buys the run did not place
    holdings: dict[str, Holding] = field(default_factory=dict)
    orders: dict[str, OwnOrder] = field(default_factory=dict)
    partial_sells: int = 0

    @classmethod
    def baseline(cls, account: Mapping[str, Any], positions: Iterable[Mapping[str, Any]],
                 orders: Mapping[str, OwnOrder] | None = None) -> AccountModel:
        """The model of an account as it reads now; `orders` (already booked) keep their part of it."""
        model = cls(cash=money(account["cash"]), realized=money(account["realized_pl"]),
                    others_reserved=money(account["reserved_cash"]), orders=dict(orders or {}))
        for position in positions:
            model.holdings[position["symbol"]] = Holding(
                int(position["quantity"]), money(position["cost_basis"]),
                int(position["quantity"]) - int(position["available_quantity"]))
        for order in model.orders.values():
            model.others_reserved -= order.reserved_cash()
            if order.remaining and order.side == "SELL":
                model.holding(order.symbol).others_reserved -= order.reserved_shares()
        return model

    def holding(self, symbol: str) -> Holding:
        return self.holdings.setdefault(symbol, Holding())

    def track(self, order: OwnOrder) -> None:
        self.orders[order.id] = order

    def book(self) -> None:
        """Book the fills the orders' latest reads show and the model has not booked yet, oldest first."""
        new: list[Fill] = []
        for order in self.orders.values():
            fills = order.latest["fills"]
            for fill in fills[order.applied:]:
                new.append(Fill(order.id, order.symbol, order.side, int(fill["quantity"]), money(fill["price"]),
                                str(fill["timestamp"])))
            order.applied = len(fills)
        for fill in sorted(new, key=lambda f: (f.timestamp, f.order_id)):
            holding = self.holding(fill.symbol)
            value = fill.price * fill.quantity
            if fill.side == "BUY":
                self.cash -= value
                holding.quantity += fill.quantity
                holding.cost += value
                continue
            self.cash += value
            held = holding.quantity
            removed = holding.cost if fill.quantity >= held else holding.cost * fill.quantity / held
            if fill.quantity < held:
                self.partial_sells += 1
            holding.quantity -= fill.quantity
            holding.cost -= removed
            self.realized += value - removed

    @property
    def tolerance(self) -> Decimal:
        return CENT * self.partial_sells

    def reserved_cash(self) -> Decimal:
        return self.others_reserved + sum((o.reserved_cash() for o in self.orders.values()), ZERO)

    def open_sells(self, symbol: str) -> int:
        return sum(o.reserved_shares() for o in self.orders.values() if o.symbol == symbol)

    def own_available(self, symbol: str) -> int:
        """Shares of `symbol` the run bought and has not sold or promised: all a run may ever sell."""
        net = 0
        for order in self.orders.values():
            if order.symbol == symbol:
                filled = int(order.latest["filled_quantity"])
                net += filled if order.side == "BUY" else -filled
        return max(net - self.open_sells(symbol), 0)

    def account_problems(self, account: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        cash, reserved = money(account["cash"]), money(account["reserved_cash"])
        if money(account["buying_power"]) != cash - reserved:
            problems.append(("buying_power = cash - reserved_cash",
                             f"buying_power {account['buying_power']}, cash {cash}, reserved_cash {reserved}"))
        if money(account["equity"]) != cash + money(account["positions_value"]):
            problems.append(("equity = cash + positions_value",
                             f"equity {account['equity']}, cash {cash}, positions_value {account['positions_value']}"))
        if cash != self.cash:
            problems.append(("cash moves only by fills", f"cash {cash}, but the fills leave {self.cash}"))
        if reserved != self.reserved_cash():
            problems.append(("reserved_cash is what open buys hold",
                             f"reserved_cash {reserved}, but open buys hold {self.reserved_cash()}"))
        realized = money(account["realized_pl"])
        if abs(realized - self.realized) > self.tolerance:
            problems.append(("realized P&L matches the fills",
                             f"realized_pl {realized}, but the sells realized {self.realized:.4f}"))
        return problems

    def position_problems(self, positions: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        shown = {p["symbol"]: p for p in positions}
        for symbol, holding in sorted(self.holdings.items()):
            position = shown.get(symbol)
            quantity = int(position["quantity"]) if position else 0
            if quantity != holding.quantity:
                problems.append(("positions are the sum of fills",
                                 f"{symbol}: {quantity} shares, but the fills leave {holding.quantity}"))
                continue
            if position is None:
                continue
            if abs(money(position["cost_basis"]) - holding.cost) > self.tolerance:
                problems.append(("cost basis is what the shares cost",
                                 f"{symbol}: cost_basis {position['cost_basis']}, fills say {holding.cost:.4f}"))
            available = quantity - holding.others_reserved - self.open_sells(symbol)
            if int(position["available_quantity"]) != available:
                problems.append(("available_quantity leaves out open sells",
                                 f"{symbol}: available {position['available_quantity']}, expected {available}"))
        return problems
