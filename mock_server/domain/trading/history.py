"""Every order an account placed, by id, and the listing index: one page of a filtered listing, without a scan.

``GET /v1/orders`` lists newest first, filtered by status (one, or the ``open`` / ``closed`` / ``all`` groups), symbol
and side, and pages with a cursor (the id of the last order shown; ids sort by creation time). A sandbox that
never cleans up holds millions of orders, so a page must cost the same whatever the history: the index keeps the
ids of each (status, side) and each (status, side, symbol) sorted, and a page merges the newest ids below the
cursor of the few lists the filter names (at most six statuses times two sides), stopping after one page.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence

from sortedcontainers import SortedList

from mock_server.domain.trading.models import OrderSide, OrderStatus
from mock_server.domain.trading.state import OrderState

_Key = tuple[OrderStatus, OrderSide, str | None]  # symbol None: every symbol


class OrderHistory:
    """An account's orders in creation order, looked up by id and listed a page at a time.

    Not thread-safe (the account's lock guards it). An order's status may change only through ``changed``, which
    moves it between the lists of its old and new status.
    """

    __slots__ = ("_lists", "_orders")

    def __init__(self, orders: Iterable[OrderState] = ()) -> None:
        """``orders`` in creation (id) order, as a state file gives them back; indexed in one pass."""
        self._orders: dict[str, OrderState] = {}
        grouped: dict[_Key, list[str]] = {}
        for order in orders:
            self._orders[order.id] = order
            for key in _keys(order, order.status):
                grouped.setdefault(key, []).append(order.id)
        self._lists: dict[_Key, SortedList[str]] = {key: SortedList(ids) for key, ids in grouped.items()}

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[OrderState]:
        """Oldest first."""
        return iter(self._orders.values())

    def get(self, order_id: str) -> OrderState | None:
        return self._orders.get(order_id)

    def newest(self) -> OrderState | None:
        return next(reversed(self._orders.values()), None)

    def add(self, order: OrderState) -> None:
        """A new order; its id sorts after every id already here."""
        self._orders[order.id] = order
        self._index(order, order.status)

    def changed(self, order: OrderState, was: OrderStatus) -> None:
        """``order``'s status went from ``was`` to what it is now."""
        if order.status is not was:
            self._unindex(order, was)
            self._index(order, order.status)

    def discard(self, order: OrderState) -> None:
        """Forget an order (an atomic batch that placed it was undone)."""
        del self._orders[order.id]
        self._unindex(order, order.status)

    def page(self, statuses: Sequence[OrderStatus], symbol: str | None, side: OrderSide | None, before: str | None,
             count: int) -> list[OrderState]:
        """Up to ``count`` orders with one of ``statuses`` (and ``symbol``, ``side`` when given) whose ids sort
        before ``before`` (every one when None), newest first."""
        sides = (OrderSide.BUY, OrderSide.SELL) if side is None else (side,)
        streams = [ids.irange(maximum=before, inclusive=(True, False), reverse=True)
                   for status in statuses for each_side in sides
                   if (ids := self._lists.get((status, each_side, symbol))) is not None]
        newest = heapq.merge(*streams, reverse=True)
        return [self._orders[order_id] for order_id in itertools.islice(newest, count)]

    def _index(self, order: OrderState, status: OrderStatus) -> None:
        for key in _keys(order, status):
            ids = self._lists.get(key)
            if ids is None:
                ids = self._lists[key] = SortedList()
            ids.add(order.id)

    def _unindex(self, order: OrderState, status: OrderStatus) -> None:
        for key in _keys(order, status):
            ids = self._lists[key]
            ids.remove(order.id)
            if not ids:
                del self._lists[key]


def _keys(order: OrderState, status: OrderStatus) -> tuple[_Key, _Key]:
    return (status, order.side, None), (status, order.side, order.symbol)
