"""The order book: one account's resting orders, indexed by what would make each of them trade.

Catching an account up to the clock replays simulator steps (``timeline.py``). At one step a resting order can
change only if the step's quote crosses it or the step reaches its expiry; every other order would be looked at
for nothing. The book answers "which orders can this step change?" by visiting only those:

- per symbol and side, untriggered stops sorted by stop price, limit-like orders (LIMIT, a triggered STOP_LIMIT)
  by limit price, and market-like ones (which only the PARTL test symbol leaves resting, and which it pins) apart:
  a buy stop triggers when the ask reaches it and a buy limit crosses when the ask falls to it, so the crossed
  orders of a side are one end of each sorted list (sells mirror this on the bid);
- expiries by time, apart, so a step past the session close finds the DAY orders it ends without a scan.

Steps are replayed per order from the step after the last one it was evaluated at (a rewound clock never
evaluates a step twice, and an order placed then starts from its own step). Orders last evaluated at the same
step form a **cohort**, indexed on its own. A step ``s`` evaluates every cohort older than ``s`` together, after
which they are one cohort at ``s``; so there are as many cohorts as distinct steps the account's orders stand at:
one, usually, and one more for each order placed at a step the rest have not reached (a rewind, a tick between
catching up and placing). Merging moves the smaller cohort into the larger, which keeps the cost logarithmic.

The rule for callers: an order in the book is indexed by its fields, so ``remove`` it before changing it and
``add`` it again if it is still working. ``remove`` writes the order's cohort step back to ``last_step``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

from sortedcontainers import SortedDict, SortedKeyList

from mock_server.domain.market.simulator import Quote
from mock_server.domain.trading.models import OrderSide
from mock_server.domain.trading.state import OrderState

_AFTER_EVERY_ID = chr(0x10FFFF)  # sorts after every order id: (price, _AFTER_EVERY_ID) ends the ties at price


def _by_stop(order: OrderState) -> tuple[Decimal, str]:
    assert order.stop_price is not None
    return order.stop_price, order.id


def _by_limit(order: OrderState) -> tuple[Decimal, str]:
    assert order.limit_price is not None
    return order.limit_price, order.id


def _by_expiry(order: OrderState) -> tuple[datetime, str]:
    assert order.expires_at is not None
    return order.expires_at, order.id


class _Side:
    """The resting orders of one symbol and side in one cohort."""

    __slots__ = ("limits", "market", "stops")

    def __init__(self) -> None:
        self.stops: SortedKeyList[OrderState, tuple[Decimal, str]] = SortedKeyList(key=_by_stop)
        self.limits: SortedKeyList[OrderState, tuple[Decimal, str]] = SortedKeyList(key=_by_limit)
        self.market: dict[str, OrderState] = {}

    def __len__(self) -> int:
        return len(self.stops) + len(self.limits) + len(self.market)

    def __iter__(self) -> Iterator[OrderState]:
        yield from self.stops
        yield from self.limits
        yield from self.market.values()

    def add(self, order: OrderState) -> None:
        if order.is_stop and not order.triggered:
            self.stops.add(order)
        elif order.acts_as_market:
            self.market[order.id] = order
        else:
            self.limits.add(order)

    def remove(self, order: OrderState) -> None:
        if order.is_stop and not order.triggered:
            self.stops.remove(order)
        elif order.acts_as_market:
            del self.market[order.id]
        else:
            self.limits.remove(order)

    def crossed(self, side: OrderSide, quote: Quote) -> Iterator[OrderState]:
        """The orders ``quote`` triggers (stops) or crosses (limits), and every market-like one."""
        if side is OrderSide.BUY:  # stops at or below the ask trigger; limits at or above it cross
            yield from self.stops.irange_key(max_key=(quote.ask, _AFTER_EVERY_ID))
            yield from self.limits.irange_key(min_key=(quote.ask, ""))
        else:  # stops at or above the bid trigger; limits at or below it cross
            yield from self.stops.irange_key(min_key=(quote.bid, ""))
            yield from self.limits.irange_key(max_key=(quote.bid, _AFTER_EVERY_ID))
        yield from self.market.values()


class _Cohort:
    """The resting orders last evaluated at ``step``."""

    __slots__ = ("expiring", "sides", "size", "step")

    def __init__(self, step: int) -> None:
        self.step = step
        self.sides: dict[tuple[str, OrderSide], _Side] = {}
        self.expiring: SortedKeyList[OrderState, tuple[datetime, str]] = SortedKeyList(key=_by_expiry)
        self.size = 0

    def __iter__(self) -> Iterator[OrderState]:
        for side in self.sides.values():
            yield from side

    def add(self, order: OrderState) -> None:
        key = (order.symbol, order.side)
        side = self.sides.get(key)
        if side is None:
            side = self.sides[key] = _Side()
        side.add(order)
        if order.expires_at is not None:
            self.expiring.add(order)
        self.size += 1

    def remove(self, order: OrderState) -> None:
        key = (order.symbol, order.side)
        side = self.sides[key]
        side.remove(order)
        if not side:
            del self.sides[key]
        if order.expires_at is not None:
            self.expiring.remove(order)
        self.size -= 1

    def expired(self, at: datetime) -> Iterator[OrderState]:
        """The orders whose expiry is at or before ``at``."""
        return self.expiring.irange_key(max_key=(at, _AFTER_EVERY_ID))

    def due(self, at: datetime, quote: Callable[[str], Quote]) -> dict[str, OrderState]:
        """The orders a step at instant ``at`` can change: expired by then, or crossed by its quotes."""
        found = {order.id: order for order in self.expired(at)}
        quotes: dict[str, Quote] = {}
        for (symbol, side_name), side in self.sides.items():
            known = quotes.get(symbol)
            if known is None:
                known = quotes[symbol] = quote(symbol)
            for order in side.crossed(side_name, known):
                found[order.id] = order
        return found


class OrderBook:
    """The resting (working, not pinned) orders of one account. Not thread-safe: the account's lock guards it."""

    __slots__ = ("_cohort_of", "_cohorts")

    def __init__(self) -> None:
        self._cohorts: SortedDict[int, _Cohort] = SortedDict()
        self._cohort_of: dict[str, _Cohort] = {}

    def __len__(self) -> int:
        return len(self._cohort_of)

    def __contains__(self, order: OrderState) -> bool:
        return order.id in self._cohort_of

    def __iter__(self) -> Iterator[OrderState]:
        """Every order, in no particular order (change none while iterating: take a list first)."""
        for cohort in self._cohorts.values():
            yield from cohort

    def add(self, order: OrderState) -> None:
        """Index a working order as last evaluated at ``order.last_step``."""
        assert not order.status.is_final and order.id not in self._cohort_of
        cohort = self._cohorts.get(order.last_step)
        if cohort is None:
            cohort = self._cohorts[order.last_step] = _Cohort(order.last_step)
        cohort.add(order)
        self._cohort_of[order.id] = cohort

    def remove(self, order: OrderState) -> None:
        """Take an order out (to change it, or because it ended), noting in ``last_step`` how far it was evaluated."""
        cohort = self._cohort_of.pop(order.id)
        cohort.remove(order)
        order.last_step = cohort.step
        if not cohort.size:
            del self._cohorts[cohort.step]

    def last_step(self, order: OrderState) -> int:
        """The last step ``order`` (in the book) was evaluated at."""
        return self._cohort_of[order.id].step

    def oldest_step(self) -> int | None:
        """The last step the least advanced order was evaluated at; None when the book is empty."""
        return self._cohorts.keys()[0] if self._cohorts else None

    def due(self, step: int, at: datetime, quote: Callable[[str], Quote]) -> list[OrderState]:
        """The orders that step ``step`` (at instant ``at``, quoted by ``quote(symbol)``) can change, oldest order
        first: of the orders last evaluated before ``step``, those it crosses and those expired by ``at``.

        Every order last evaluated before ``step`` counts as evaluated at ``step`` from now on: the caller is to
        evaluate the returned ones (removing and adding each), and the others would have stayed as they are.
        """
        eligible = self._detach_below(step)
        if eligible is None:
            return []
        due = eligible.due(at, quote)
        self._attach(eligible, step)
        return [due[order_id] for order_id in sorted(due)]

    def advance(self, step: int) -> None:
        """Count every order last evaluated before ``step`` as evaluated at ``step`` (it was, or a gap in the
        market's hours means there was nothing to evaluate)."""
        below = self._detach_below(step)
        if below is not None:
            self._attach(below, step)

    def expired(self, at: datetime) -> list[OrderState]:
        """Every order whose expiry is at or before ``at``, oldest first, whatever step it was evaluated at."""
        found = [order for cohort in self._cohorts.values() for order in cohort.expired(at)]
        return sorted(found, key=lambda order: order.id)

    # -- cohorts ------------------------------------------------------------------------------------------------

    def _detach_below(self, step: int) -> _Cohort | None:
        """The cohorts last evaluated before ``step``, taken out of ``_cohorts`` and merged into one."""
        if not self._cohorts or self._cohorts.keys()[0] >= step:  # the usual case: every order is there already
            return None
        keys = list(self._cohorts.irange(maximum=step, inclusive=(True, False)))
        if not keys:
            return None
        merged = self._cohorts.pop(keys[0])
        for key in keys[1:]:
            merged = self._absorb(merged, self._cohorts.pop(key))
        return merged

    def _attach(self, cohort: _Cohort, step: int) -> None:
        """Put a detached cohort back as evaluated at ``step``, merged with the cohort already there, if any."""
        existing = self._cohorts.get(step)
        if existing is not None:
            cohort = self._absorb(existing, cohort)
        cohort.step = step
        self._cohorts[step] = cohort

    def _absorb(self, first: _Cohort, second: _Cohort) -> _Cohort:
        """Move the smaller cohort's orders into the larger one and return it (its step is the caller's to set)."""
        keep, absorbed = (first, second) if first.size >= second.size else (second, first)
        for order in list(absorbed):
            keep.add(order)
            self._cohort_of[order.id] = keep
        return keep
